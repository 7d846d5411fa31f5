"""Where the results `tessera submit` and `tessera run` write land (the formats themselves are
tessera/formats.py's, shared with the API).

Layout: a document's results mirror its input path under the output folder, with the format's
suffix appended to the whole file name: `scans/a/report.pdf` gives `out/a/report.pdf.json` and
`out/a/report.pdf.md` (the input root `scans/` is left out). Two inputs never share an output:
their relative paths differ, and every output of one input ends with its format's suffix. A
document that could not be processed leaves `out/a/report.pdf.error.json` instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tessera.formats import ResultFormat

ERROR_SUFFIX = ".error.json"


def output_path(out: Path, key: str, fmt: ResultFormat) -> Path:
    """Where `fmt` of the input at relative path `key` is written."""
    return out / f"{key}{fmt.suffix}"


def error_path(out: Path, key: str) -> Path:
    """Where the reason the input at `key` has no results is written."""
    return out / f"{key}{ERROR_SUFFIX}"


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
