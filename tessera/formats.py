"""The result formats a job can be fetched in: one list that the API, `tessera run` and
`tessera submit` share, so a format's name, file suffix and media type are spelled once.

`GET /v1/jobs/{id}/result?format=<name>` serves each; a client that saves them writes
`result<suffix>` (e.g. `result.pdf`). `stored_as` is the suffix of the blob the assemble stage
writes (`{tenant}/{job}/result.<stored_as>`); csv is made on request from the JSON result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResultFormat:
    name: str  # the `format` query value
    suffix: str  # file suffix a client saves it under, with the dot
    media_type: str
    stored_as: str  # suffix of the blob the assemble stage stores


HOCR_MEDIA_TYPE = "text/vnd.hocr+html; charset=utf-8"  # hOCR is (X)HTML; not rendered inline
RESULT_FORMATS: dict[str, ResultFormat] = {f.name: f for f in (
    ResultFormat("json", ".json", "application/json", "json"),
    ResultFormat("markdown", ".md", "text/markdown; charset=utf-8", "md"),
    ResultFormat("csv", ".csv", "text/csv; charset=utf-8", "json"),
    ResultFormat("txt", ".txt", "text/plain; charset=utf-8", "txt"),
    ResultFormat("hocr", ".hocr", HOCR_MEDIA_TYPE, "hocr"),
    ResultFormat("pdf", ".pdf", "application/pdf", "pdf"),
)}
# Formats the assemble stage builds from the page results (workers/outputs/).
ARCHIVE_FORMATS = ("txt", "hocr", "pdf")
# Formats one page can be fetched in (`GET /v1/jobs/{id}/pages/{n}?format=`).
PAGE_FORMATS = ("json", "txt", "hocr")
DEFAULT_FORMATS = "json,markdown"  # what `tessera run` writes unless told


def parse_formats(names: str) -> list[ResultFormat]:
    """"pdf,hocr,txt" -> those formats, in order, once each.

    Raises ValueError naming the unknown format and the known ones."""
    wanted = [name.strip().lower() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in RESULT_FORMATS]
    if unknown or not wanted:
        problem = f"unknown format {unknown[0]!r}" if unknown else "no format given"
        raise ValueError(f"{problem}; choose from {', '.join(RESULT_FORMATS)}")
    return [RESULT_FORMATS[name] for name in dict.fromkeys(wanted)]
