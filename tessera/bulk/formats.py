"""The result formats `tessera submit --format` writes, and where each lands.

Layout: a document's results mirror its input path under the output folder, with the format's
suffix appended to the whole file name: `scans/a/report.pdf` gives `out/a/report.pdf.json` and
`out/a/report.pdf.md` (the input root `scans/` is left out). Two inputs never share an output:
their relative paths differ, and every output of one input ends with its format's suffix.
A new server format is one line in FORMATS.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResultFormat:
    name: str  # what --format accepts
    query: str  # GET /v1/jobs/{id}/result?format=
    suffix: str  # appended to the input's file name


FORMATS = {f.name: f for f in (
    ResultFormat("json", "json", ".json"),
    ResultFormat("markdown", "markdown", ".md"),
    ResultFormat("csv", "csv", ".csv"),
)}
DEFAULT_FORMATS = "json,markdown"


def parse_formats(value: str) -> list[ResultFormat]:
    """`json,markdown` -> the formats, in order, once each; ValueError names the known ones."""
    names = list(dict.fromkeys(name.strip().lower() for name in value.split(",") if name.strip()))
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown format {unknown[0] if unknown else value!r}; "
                         f"choose from {', '.join(FORMATS)}")
    return [FORMATS[name] for name in names]


def output_path(out: Path, key: str, fmt: ResultFormat) -> Path:
    """Where `fmt` of the input at relative path `key` is written."""
    return out / f"{key}{fmt.suffix}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a run stopped mid-write leaves no half file
    where a result is expected (the manifest says done only once every format is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
