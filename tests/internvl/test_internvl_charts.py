"""The chart-table parser on good and malformed model answers: warnings, never exceptions."""

from __future__ import annotations

import pytest

from workers.internvl.charts import parse_chart_table
from workers.internvl.text import clean_transcription

pytestmark = pytest.mark.internvl


def test_markdown_table_with_title():
    text = "Title: Sales by year\n\n| Year | Sales |\n|---|---:|\n| 2019 | 10 |\n| 2020 | 12.5 |\n"
    assert parse_chart_table(text) == (
        "Sales by year",
        ["Year", "Sales"],
        [["2019", "10"], ["2020", "12.5"]],
        [],
    )


def test_pipe_lines_without_outer_pipes_and_fences():
    text = "```markdown\n**Title**: Rainfall\nMonth | mm\n--- | ---\nJan | 80\nFeb | 60\n```"
    title, columns, rows, warnings = parse_chart_table(text)
    assert (title, columns, rows, warnings) == (
        "Rainfall",
        ["Month", "mm"],
        [["Jan", "80"], ["Feb", "60"]],
        [],
    )


def test_deplot_style_linearised_table():
    text = "TITLE | Share of votes <0x0A> Party | Share <0x0A> A | 40% <0x0A> B | 60%"
    assert parse_chart_table(text) == (
        "Share of votes",
        ["Party", "Share"],
        [["A", "40%"], ["B", "60%"]],
        [],
    )


def test_no_title_bold_and_escaped_cells():
    title, columns, rows, warnings = parse_chart_table(
        "| **Key** | Value |\n|--|--|\n| a\\|b | 1 |"
    )
    assert (title, columns, rows, warnings) == ("", ["Key", "Value"], [["a|b", "1"]], [])


def test_ragged_rows_are_padded_or_cut_with_a_warning():
    _, _, rows, warnings = parse_chart_table("| a | b |\n|---|---|\n| 1 |\n| 1 | 2 | 3 |")
    assert rows == [["1", ""], ["1", "2"]]
    assert len(warnings) == 1 and "2 row(s)" in warnings[0]


@pytest.mark.parametrize(
    "text", ["", "I cannot read this chart.", "Title: only a title", "[UNUSED_TOKEN_5]\x00"]
)
def test_no_table_warns(text):
    _, columns, rows, warnings = parse_chart_table(text)
    assert (
        columns == [] and rows == [] and warnings == ["chart table: no table in the model's answer"]
    )


def test_header_only_warns():
    assert parse_chart_table("| a | b |\n|---|---|")[3] == ["chart table: header but no data rows"]


def test_transcription_unwraps_one_markdown_fence():
    assert clean_transcription("```markdown\n# Title\n\ntext\n```") == "# Title\n\ntext"
    assert clean_transcription("  plain text \n") == "plain text"
    assert clean_transcription("```python\nx = 1\n```") == "```python\nx = 1\n```"
