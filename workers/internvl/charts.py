"""Parsing InternVL's chart-to-table answers (the boxes they are asked about: grounding.py).

The model's answers are free text. A parser here never raises: whatever it
cannot read becomes a warning string on the page, and the page keeps the rest.
"""

from __future__ import annotations

import re

_TITLE = re.compile(r"^(?:#+\s*)?(?:\*\*)?title(?:\*\*)?\s*[:：|]\s*(.*)$", re.IGNORECASE)
_SEPARATOR_CELL = re.compile(r"^:?-{1,}:?$")


def parse_chart_table(text: str) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(title, columns, rows, warnings) from a chart-to-table answer (Markdown or pipe lines)."""
    lines = _lines(text)
    title = ""
    rows: list[list[str]] = []
    for line in lines:
        match = _TITLE.match(line)
        if match and not title and not rows:
            title = _clean_cell(match.group(1).strip().strip("|"))
        elif "|" in line:
            cells = _split_row(line)
            if not _is_separator(cells):
                rows.append(cells)
    if not rows:
        return title, [], [], ["chart table: no table in the model's answer"]
    return (title, *_rectangular(rows[0], rows[1:]))


def _lines(text: str) -> list[str]:
    text = text.replace("<0x0A>", "\n")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("```")
    ]


def _split_row(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    line = line.removesuffix("|")
    return [_clean_cell(cell) for cell in re.split(r"(?<!\\)\|", line)]


def _is_separator(cells: list[str]) -> bool:
    """A Markdown header rule such as |---|:--:|."""
    return any(cells) and all(_SEPARATOR_CELL.match(c) for c in cells if c)


def _clean_cell(cell: str) -> str:
    cell = cell.strip().replace("\\|", "|")
    return (
        cell[2:-2].strip()
        if len(cell) >= 4 and cell.startswith("**") and cell.endswith("**")
        else cell
    )


def _rectangular(
    header: list[str], body: list[list[str]]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Pad or cut rows to the header's width, saying so."""
    warnings = []
    ragged = sum(len(row) != len(header) for row in body)
    if ragged:
        warnings.append(
            f"chart table: {ragged} row(s) did not have {len(header)} cells; padded or cut"
        )
    if not body:
        warnings.append("chart table: header but no data rows")
    rows = [(row + [""] * len(header))[: len(header)] for row in body]
    return header, rows, warnings
