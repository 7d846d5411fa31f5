"""Every chart table of a document result as one CSV file (`GET /v1/jobs/{id}/result?format=csv`).

Layout: RFC 4180 (comma, double quotes, CRLF), UTF-8, one header line, then one
line per table row:

    page,chart,title,row,col_1,col_2,...,col_N

- `page`: the page number (from 1); `chart`: the chart's index on its page (from 1);
- `title`: the chart's title (empty when it has none);
- `row`: 0 on the line that holds the table's column names, then 1, 2, ... for its data rows;
- `col_1`..`col_N`: the cells; N is the widest table of the document, narrower rows end
  with empty cells.

A document without charts is the header line alone: `page,chart,title,row`.
A cell that a spreadsheet would run as a formula (it starts with = + - @ tab or CR and
is not a number) is written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from typing import Any

FIXED_COLUMNS = ["page", "chart", "title", "row"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def document_tables(document: dict[str, Any]) -> list[tuple[int, int, str, list[list[str]]]]:
    """(page, chart index, title, [column names, *rows]) for every chart of the document."""
    tables = []
    for page in document.get("pages") or []:
        for index, chart in enumerate(page.get("charts") or [], start=1):
            table = chart.get("table") or {}
            lines = [[_cell(c) for c in table.get("columns") or []]]
            rows = [row for row in table.get("rows") or [] if isinstance(row, list)]
            lines += [[_cell(c) for c in row] for row in rows]
            tables.append((int(page.get("page", 0)), index, _cell(chart.get("title")), lines))
    return tables


def to_csv(document: dict[str, Any]) -> str:
    tables = document_tables(document)
    width = max((len(line) for *_, lines in tables for line in lines), default=0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIXED_COLUMNS + [f"col_{n}" for n in range(1, width + 1)])
    for page_no, index, title, lines in tables:
        for row_no, line in enumerate(lines):
            writer.writerow([page_no, index, _safe(title), row_no]
                            + [_safe(cell) for cell in line] + [""] * (width - len(line)))
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _safe(cell: str) -> str:
    if cell.startswith(_FORMULA_START) and not _is_number(cell):
        return "'" + cell
    return cell


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True
