"""The InternVL 1.5 engine: pages in, Markdown and chart tables out, in device-sized batches.

Every page is asked for its transcription (task "ocr") and the boxes of its
charts (task "charts"); as soon as a page's grounding answer is in, one
chart-to-table request per box joins the same decode stream. All requests of
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
from dataclasses import dataclass
from functools import lru_cache

from workers.engines.base import TASK_CHARTS, TASK_OCR, ChartTable, PageInput, PageResult
from workers.internvl.batching import Generation, Request
from workers.internvl.charts import parse_chart_table, parse_grounding
from workers.internvl.pages import ENGINE_NAME, PageJob, prepare
from workers.internvl.prompt import GROUNDING_QUESTION, OCR_QUESTION, TABLE_QUESTION, build_prompt
from workers.internvl.runner import GenerationRunner, RunOptions
from workers.internvl.tiling import tile_uint8

DEFAULT_SYSTEM_MESSAGE = "You are an AI assistant whose name is InternLM (书生·浦语)."


@dataclass
class EngineOptions:
    max_new_tokens: int = 1024
    min_new_tokens: int = 0
    system_message: str = DEFAULT_SYSTEM_MESSAGE
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
            system_message=settings.internvl_system_message,
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
        return cls(
            model, load_tokenizer(settings.model_path), EngineOptions.from_settings(settings)
        )

    @property
    def stats(self):
        return self.runner.stats

    def process(self, pages: list[PageInput]) -> list[PageResult]:
        results = dict(self.process_iter(pages))
        return [results[i] for i in range(len(pages))]

    def process_iter(self, pages: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
        """(index, result) for each page as soon as its last answer is in: its transcription,
        its chart grounding and a table per chart found. A page's table requests join the
        running stream as soon as its grounding answer is in."""
        jobs = [prepare(i, page) for i, page in enumerate(pages)]
        first = {job.index: self._first_requests(job) if job.ok else [] for job in jobs}
        for job in jobs:
            if not first[job.index]:  # unreadable, or nothing asked
                self._finish(job, {}, [])
                yield job.index, job.result()
        missing = Counter({index: len(requests) for index, requests in first.items()})
        answers: dict[int, dict[tuple, Generation]] = defaultdict(dict)
        boxes: dict[int, list[list[float]]] = {}

        def tables_for(key: tuple, answer: Generation) -> list[Request]:
            if key[1] != "grounding":
                return []
            job = jobs[key[0]]
            boxes[job.index] = self._chart_boxes(job, answer)
            tables = self._table_requests(job, boxes[job.index])
            missing[job.index] += len(tables)
            return tables

        requests = [r for rs in first.values() for r in rs]
        room = max((self._table_prompt_room(job) for job in jobs if job.ok), default=0)
        for key, answer in self.runner.iter_run(requests, tables_for, room):
            index = key[0]
            answers[index][key] = answer
            missing[index] -= 1
            if not missing[index]:
                self._finish(jobs[index], answers.pop(index), boxes.get(index, []))
                yield index, jobs[index].result()

    def _encode_prompt(self, question: str, tiles: int) -> tuple[int, ...]:
        prompt = build_prompt(question, tiles, self.options.system_message, self.tokens_per_tile)
        return tuple(self.tokenizer(prompt).input_ids)

    def _request(
        self, key: tuple, image_key: tuple, pixels, tiles: int, question: str, limit: int
    ) -> Request:
        return Request(key, image_key, pixels, list(self._prompt_ids(question, tiles)), limit)

    @property
    def grounding_limit(self) -> int:
        return min(self.options.grounding_max_new_tokens, self.options.max_new_tokens)

    def _first_requests(self, job: PageJob) -> list[Request]:
        ask = []
        if job.wants(TASK_OCR):
            ask.append(("ocr", OCR_QUESTION, self.options.max_new_tokens))
        if job.wants(TASK_CHARTS):
            ask.append(("grounding", GROUNDING_QUESTION, self.grounding_limit))
        return [
            self._request((job.index, kind), (job.index,), job.pixels, job.plan.tiles, q, limit)
            for kind, q, limit in ask
        ]

    def _table_prompt_room(self, job: PageJob) -> int:
        """Tokens of the longest table prompt a page's chart crop can have (0: no charts)."""
        if not job.wants(TASK_CHARTS):
            return 0
        tiles = self._chart_tiles(job)
        return len(self._prompt_ids(TABLE_QUESTION, tiles + 1 if tiles > 1 else 1))

    def _chart_tiles(self, job: PageJob) -> int:
        return min(self.options.chart_max_tiles, job.max_tiles)

    def _chart_boxes(self, job: PageJob, answer: Generation) -> list[list[float]]:
        """The chart boxes (page pixels) a grounding answer points at."""
        grounding = job.take("chart grounding", answer, self.grounding_limit)
        if grounding is None:
            return []
        image = job.page.image
        boxes, warnings = parse_grounding(
            grounding, image.width, image.height, self.options.max_charts_per_page
        )
        job.warnings += warnings
        return boxes

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
                    TABLE_QUESTION,
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
