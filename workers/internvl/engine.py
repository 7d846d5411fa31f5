"""The InternVL 1.5 engine: pages in, Markdown and chart tables out, in device-sized batches.

Pass 1 asks, for every page at once, for its transcription (task "ocr") and the
boxes of its charts (task "charts"); pass 2 asks, for every chart found on any
page, for its data table. Each pass is one `GenerationRunner.run`: requests of
all pages and documents flow through the same decode slots, each slot refilled
as its answer ends, so the GPU sees full batches whatever documents they came
from and however long their answers are. Build once per worker process
with `InternVLEngine.from_settings(settings)`.
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
        """(index, result) for each page as soon as it is complete: its transcription (and
        chart grounding) answered and, when it has charts, their tables read."""
        jobs = [prepare(i, page) for i, page in enumerate(pages)]
        first = {job.index: self._first_requests(job) if job.ok else [] for job in jobs}
        for job in jobs:
            if not first[job.index]:  # unreadable, or nothing asked
                self._take_first(job, {})
                yield job.index, job.result()
        charted: dict[int, list[list[float]]] = {}
        for index, answers in self._by_page([r for rs in first.values() for r in rs]):
            boxes = self._take_first(jobs[index], answers)
            if boxes:
                charted[index] = boxes
            else:
                yield index, jobs[index].result()
        for job in self.iter_tables([jobs[i] for i in charted], charted):
            yield job.index, job.result()

    def _by_page(self, requests: list[Request]) -> Iterator[tuple[int, dict[tuple, Generation]]]:
        """(page index, its answers) as soon as the last answer of that page is in."""
        missing = Counter(r.key[0] for r in requests)
        answers: dict[int, dict[tuple, Generation]] = defaultdict(dict)
        for key, answer in self.runner.iter_run(requests):
            answers[key[0]][key] = answer
            missing[key[0]] -= 1
            if not missing[key[0]]:
                yield key[0], answers.pop(key[0])

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

    def _take_first(self, job: PageJob, answers: dict[tuple, Generation]) -> list[list[float]]:
        """Store the transcription; return the chart boxes (page pixels) the model pointed at."""
        limit = self.options.max_new_tokens
        job.text = job.take("ocr", answers.get((job.index, "ocr")), limit) or ""
        grounding = job.take(
            "chart grounding", answers.get((job.index, "grounding")), self.grounding_limit
        )
        if grounding is None:
            return []
        image = job.page.image
        boxes, warnings = parse_grounding(
            grounding, image.width, image.height, self.options.max_charts_per_page
        )
        job.warnings += warnings
        return boxes

    def read_tables(self, jobs: list[PageJob], boxes: dict[int, list[list[float]]]) -> None:
        for _ in self.iter_tables(jobs, boxes):
            pass

    def iter_tables(
        self, jobs: list[PageJob], boxes: dict[int, list[list[float]]]
    ) -> Iterator[PageJob]:
        """Pass 2: one chart-to-table request per box (page pixels), all pages together;
        each page as soon as its tables are read."""
        requests = {job.index: self._table_requests(job, boxes[job.index]) for job in jobs}
        by_index = {job.index: job for job in jobs}
        for job in jobs:
            if not requests[job.index]:
                yield job
        for index, answers in self._by_page([r for rs in requests.values() for r in rs]):
            for k, box in enumerate(boxes[index]):
                self._take_table(by_index[index], box, answers.get((index, "table", k)))
            yield by_index[index]

    def _table_requests(self, job: PageJob, boxes: list[list[float]]) -> list[Request]:
        requests = []
        max_tiles = min(self.options.chart_max_tiles, job.max_tiles)
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

    def _take_table(self, job: PageJob, box: list[float], answer: Generation | None) -> None:
        text = job.take("chart table", answer, self.options.max_new_tokens, stage="charts")
        if text is None:
            job.charts.append(ChartTable(bbox=box, title="", columns=[], rows=[]))
            return
        title, columns, rows, warnings = parse_chart_table(text)
        job.warnings += warnings
        job.charts.append(ChartTable(bbox=box, title=title, columns=columns, rows=rows))
