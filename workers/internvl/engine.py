"""The InternVL 1.5 engine: pages in, Markdown and chart tables out, in device-sized batches.

Every page is asked for its transcription (task "ocr") and the boxes of its
charts (task "charts": one grounding request per phrase, "chart" and "graph" by
default); as soon as a page's grounding answers are in, one chart-to-table
request per box they found joins the same decode stream. All requests of
all pages and documents flow through the same decode slots, each slot refilled
as its answer ends, so the GPU sees full batches whatever documents they came
from and however long their answers are; each page is handed over as soon as
its last answer is in. Build once per worker process with
`InternVLEngine.from_settings(settings)`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import structlog

from workers.engines.base import TASK_CHARTS, TASK_OCR, ChartTable, PageInput, PageResult
from workers.internvl.batching import Generation, Request
from workers.internvl.charts import parse_chart_table
from workers.internvl.grounding import merge_boxes, parse_grounding
from workers.internvl.pages import ENGINE_NAME, PageJob, prepare
from workers.internvl.prompt import Prompts, build_prompt
from workers.internvl.runner import GenerationRunner, RunOptions
from workers.internvl.tiling import tile_uint8

log = structlog.get_logger(__name__)


@dataclass
class EngineOptions:
    max_new_tokens: int = 1024
    min_new_tokens: int = 0
    prompts: Prompts = field(default_factory=Prompts)
    chat_cleanup: bool = False  # decode like the original chat() (runner.GenerationRunner.decode)
    vision_chunk_tiles: int = 128
    max_batch_rows: int = 4
    max_batch_tokens: int | None = None
    # a grounding answer is a few boxes (about 25 tokens each); a longer one is runaway output
    grounding_max_new_tokens: int = 256
    chart_max_tiles: int = 12  # tiles for one chart crop (capped by the page's max_tiles)
    max_charts_per_page: int = 8

    @classmethod
    def from_settings(cls, settings) -> EngineOptions:
        return cls(
            max_new_tokens=settings.internvl_max_new_tokens,
            prompts=Prompts.from_settings(settings),
            chat_cleanup=settings.internvl_chat_cleanup,
            vision_chunk_tiles=settings.internvl_vision_chunk_tiles,
            max_batch_rows=settings.internvl_decode_slots or settings.engine_batch_size,
            max_batch_tokens=settings.internvl_max_batch_tokens,
        )

    def run_options(self) -> RunOptions:
        return RunOptions(
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens,
            max_batch_rows=self.max_batch_rows,
            max_batch_tokens=self.max_batch_tokens,
            vision_chunk_tiles=self.vision_chunk_tiles,
            chat_cleanup=self.chat_cleanup,
        )


class InternVLEngine:
    """Implements workers.engines.base.Engine for InternVL 1.5."""

    name = ENGINE_NAME

    def __init__(self, model, tokenizer, options: EngineOptions | None = None):
        self.options = options or EngineOptions()
        self.tokenizer = tokenizer
        self.runner = GenerationRunner(model, tokenizer, self.options.run_options())
        self.tokens_per_tile = int(model.config.image_seq_length)
        self._prompt_ids = lru_cache(maxsize=512)(self._encode_prompt)

    @classmethod
    def from_settings(cls, settings) -> InternVLEngine:
        """Load the converted checkpoint at settings.model_path (once per worker process)."""
        from workers.internvl.loader import (
            load_model,
            load_tokenizer,
            resolve_device,
            resolve_dtype,
        )

        device = resolve_device(settings.internvl_device)
        model = load_model(
            settings.model_path, device, resolve_dtype(settings.internvl_dtype, device)
        )
        tokenizer = load_tokenizer(settings.model_path, model.config)
        return cls(model, tokenizer, EngineOptions.from_settings(settings))

    @property
    def stats(self):
        return self.runner.stats

    def process(self, pages: list[PageInput]) -> list[PageResult]:
        results = dict(self.process_iter(pages))
        return [results[i] for i in range(len(pages))]

    def process_iter(self, pages: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
        """(index, result) for each page as soon as its last answer is in: its transcription,
        its chart grounding and a table per chart found. A page's table requests join the
        running stream as soon as its grounding answers are in."""
        jobs = [prepare(i, page) for i, page in enumerate(pages)]
        first = {job.index: self._first_requests(job) if job.ok else [] for job in jobs}
        for job in jobs:
            if not first[job.index]:  # unreadable, or nothing asked
                self._finish(job, {}, [])
                yield job.index, job.result()
        missing = Counter({index: len(requests) for index, requests in first.items()})
        answers: dict[int, dict[tuple, Generation]] = defaultdict(dict)
        grounding: dict[int, dict[int, Generation]] = defaultdict(dict)
        boxes: dict[int, list[list[float]]] = {}

        def tables_for(key: tuple, answer: Generation) -> list[Request]:
            """After a page's last grounding answer: a table request per box found."""
            if key[1] != "grounding":
                return []
            job = jobs[key[0]]
            grounding[job.index][key[2]] = answer
            if len(grounding[job.index]) < len(self.options.prompts.grounding_phrases):
                return []
            boxes[job.index] = self._chart_boxes(job, grounding.pop(job.index))
            tables = self._table_requests(job, boxes[job.index])
            missing[job.index] += len(tables)
            return tables

        requests = [r for rs in first.values() for r in rs]
        room = max((self._table_prompt_room(job) for job in jobs if job.ok), default=0)
        for key, answer in self.runner.iter_run(requests, tables_for, room):
            index = key[0]
            log.debug(
                "internvl.answer",
                page=jobs[index].page.ref,
                request=list(key[1:]),
                tokens=answer.tokens,
                truncated=answer.truncated,
            )
            answers[index][key] = answer
            missing[index] -= 1
            if not missing[index]:
                self._finish(jobs[index], answers.pop(index), boxes.get(index, []))
                yield index, jobs[index].result()

    def _encode_prompt(self, question: str, tiles: int) -> tuple[int, ...]:
        prompt = build_prompt(question, tiles, self.options.prompts.system, self.tokens_per_tile)
        return tuple(self.tokenizer(prompt).input_ids)

    def _request(
        self,
        key: tuple,
        image_key: tuple,
        pixels,
        tiles: int,
        question: str,
        limit: int,
        markup: bool = False,
    ) -> Request:
        ids = list(self._prompt_ids(question, tiles))
        return Request(key, image_key, pixels, ids, limit, keep_special_tokens=markup)

    @property
    def grounding_limit(self) -> int:
        return min(self.options.grounding_max_new_tokens, self.options.max_new_tokens)

    def _first_requests(self, job: PageJob) -> list[Request]:
        """The transcription request and one grounding request per phrase (kept markup)."""
        prompts = self.options.prompts
        ask = []
        if job.wants(TASK_OCR):
            ask.append(((job.index, "ocr"), prompts.ocr, self.options.max_new_tokens, False))
        if job.wants(TASK_CHARTS):
            limit = self.grounding_limit
            ask += [
                ((job.index, "grounding", k), prompts.grounding_question(phrase), limit, True)
                for k, phrase in enumerate(prompts.grounding_phrases)
            ]
        return [
            self._request(key, (job.index,), job.pixels, job.plan.tiles, q, limit, markup)
            for key, q, limit, markup in ask
        ]

    def _table_prompt_room(self, job: PageJob) -> int:
        """Tokens of the longest table prompt a page's chart crop can have (0: no charts)."""
        if not job.wants(TASK_CHARTS):
            return 0
        tiles = self._chart_tiles(job)
        return len(self._prompt_ids(self.options.prompts.table, tiles + 1 if tiles > 1 else 1))

    def _chart_tiles(self, job: PageJob) -> int:
        return min(self.options.chart_max_tiles, job.max_tiles)

    def _chart_boxes(self, job: PageJob, answers: dict[int, Generation]) -> list[list[float]]:
        """The chart boxes (page pixels) a page's grounding answers (by phrase index) point
        at, the same region found by two phrases once, at most `max_charts_per_page`."""
        image = job.page.image
        phrases = self.options.prompts.grounding_phrases
        boxes: list[list[float]] = []
        for k, answer in sorted(answers.items()):
            text = job.take(f"chart grounding ({phrases[k]})", answer, self.grounding_limit)
            if text is not None:
                found, warnings = parse_grounding(text, image.width, image.height)
                boxes += found
                job.warnings += warnings
        boxes = merge_boxes(boxes)
        cap = self.options.max_charts_per_page
        if len(boxes) > cap:
            job.warnings.append(f"chart grounding: {len(boxes)} boxes, kept the first {cap}")
        return boxes[:cap]

    def _finish(
        self, job: PageJob, answers: dict[tuple, Generation], boxes: list[list[float]]
    ) -> None:
        """The page's transcription and chart tables from its answers."""
        ocr = job.take("ocr", answers.get((job.index, "ocr")), self.options.max_new_tokens)
        job.text = ocr or ""
        self._take_tables(job, boxes, answers)

    def read_tables(self, jobs: list[PageJob], boxes: dict[int, list[list[float]]]) -> None:
        """Tables for boxes found elsewhere (the tests give boxes: random weights find none)."""
        requests = [r for job in jobs for r in self._table_requests(job, boxes[job.index])]
        answers = self.runner.run(requests)
        for job in jobs:
            self._take_tables(job, boxes[job.index], answers)

    def _table_requests(self, job: PageJob, boxes: list[list[float]]) -> list[Request]:
        requests = []
        max_tiles = self._chart_tiles(job)
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            start = time.perf_counter()
            crop = job.page.image.crop(
                (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
            )
            plan, pixels = tile_uint8(crop, max_tiles)
            job.add_time("tiling", time.perf_counter() - start)
            requests.append(
                self._request(
                    (job.index, "table", k),
                    (job.index, "chart", k),
                    pixels,
                    plan.tiles,
                    self.options.prompts.table,
                    self.options.max_new_tokens,
                )
            )
        return requests

    def _take_tables(
        self, job: PageJob, boxes: list[list[float]], answers: dict[tuple, Generation]
    ) -> None:
        for k, box in enumerate(boxes):
            self._take_table(job, box, answers.get((job.index, "table", k)))

    def _take_table(self, job: PageJob, box: list[float], answer: Generation | None) -> None:
        text = job.take("chart table", answer, self.options.max_new_tokens, stage="charts")
        if text is None:
            job.charts.append(ChartTable(bbox=box, title="", columns=[], rows=[]))
            return
        title, columns, rows, warnings = parse_chart_table(text)
        job.warnings += warnings
        job.charts.append(ChartTable(bbox=box, title=title, columns=columns, rows=rows))
