"""Unit tests of the API's pure parts: the charts CSV writer and the cursor codec."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from api import pagination
from api.charts_csv import to_csv
from api.routes.events import Resume, parse_last_event_id

DOCUMENT = {
    "job_id": "j", "page_count": 3, "pages": [
        {"page": 1, "status": "done", "text": "no charts here", "charts": []},
        {"page": 2, "status": "done", "charts": [
            {"bbox": [0, 0, 10, 10], "title": "Revenue, 2024",
             "table": {"columns": ["Year", "Revenue"], "rows": [["2023", "10"], ["2024", "-12.5"]]}},
            {"bbox": [0, 20, 10, 30], "title": None,
             "table": {"columns": ["区域", "Q1", "Q2"], "rows": [["华东", "=1+1", "3"], ["north \"x\""]]}},
        ]},
        {"page": 3, "status": "failed", "error": {"code": "engine_error", "message": ""}},
    ],
}


def test_csv_has_one_line_per_table_row_padded_to_the_widest_table() -> None:
    text = to_csv(DOCUMENT)
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["page", "chart", "title", "row", "col_1", "col_2", "col_3"],
        ["2", "1", "Revenue, 2024", "0", "Year", "Revenue", ""],
        ["2", "1", "Revenue, 2024", "1", "2023", "10", ""],
        ["2", "1", "Revenue, 2024", "2", "2024", "-12.5", ""],
        ["2", "2", "", "0", "区域", "Q1", "Q2"],
        ["2", "2", "", "1", "华东", "'=1+1", "3"],  # a formula is defused, a negative number is not
        ["2", "2", "", "2", 'north "x"', "", ""],
    ]


def test_csv_of_a_document_without_charts_is_the_header_alone() -> None:
    assert to_csv({"pages": [{"page": 1, "status": "done", "charts": []}]}) == "page,chart,title,row\r\n"
    assert to_csv({}) == "page,chart,title,row\r\n"


def test_job_cursor_round_trips_in_utc() -> None:
    naive = datetime(2026, 1, 5, 9, 30, 0, 123456)  # SQLite hands back naive UTC
    cursor = pagination.job_cursor(naive, "abc123")
    assert "=" not in cursor and cursor.isascii()
    assert pagination.decode_job_cursor(cursor) == (naive.replace(tzinfo=timezone.utc), "abc123")
    assert pagination.decode_page_cursor(pagination.page_cursor(7)) == 7


@pytest.mark.parametrize("cursor", [
    "", "@@", pagination.page_cursor(3), pagination.encode({"t": "x", "i": "a"}),
    pagination.encode({"t": "2026-01-01T00:00:00", "i": "a\n"}),
])
def test_foreign_job_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(pagination.InvalidCursor):
        pagination.decode_job_cursor(cursor)


@pytest.mark.parametrize("cursor", ["@@", pagination.job_cursor(datetime(2026, 1, 1), "a"),
                                    pagination.encode({"p": True}), pagination.encode({"p": -1}),
                                    pagination.encode({"p": 2**40}), pagination.encode({"p": "3"})])
def test_foreign_page_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(pagination.InvalidCursor):
        pagination.decode_page_cursor(cursor)


@pytest.mark.parametrize(("value", "resume"), [
    ("status:processing", Resume(status="processing")), ("page:12", Resume(page=12)),
    ("page:0", Resume()), ("page:١٢", Resume()), ("status:nope", Resume()), (None, Resume()), ("", Resume()),
])
def test_last_event_id_parsing(value: str | None, resume: Resume) -> None:
    assert parse_last_event_id(value) == resume


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the dashboard script")
@pytest.mark.parametrize("script", sorted((Path(__file__).resolve().parents[2] / "api" / "static").glob("*.js")),
                         ids=lambda path: path.name)
def test_dashboard_script_parses(script: Path) -> None:
    subprocess.run(["node", "--check", str(script)], check=True, capture_output=True, timeout=30)
