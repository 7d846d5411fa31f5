"""Chart parsers on good and malformed model answers: warnings, never exceptions."""

from __future__ import annotations

import pytest

from workers.internvl.charts import parse_chart_table, parse_grounding
from workers.internvl.text import clean_transcription

pytestmark = pytest.mark.internvl


def test_one_box_scaled_to_page_pixels():
    boxes, warnings = parse_grounding(
        "<ref>chart</ref><box>[[100, 200, 500, 600]]</box>", 2000, 1000
    )
    assert boxes == [[200.0, 200.0, 1000.0, 600.0]] and warnings == []


def test_several_boxes_lines_and_lists():
    text = (
        "<ref>chart</ref><box>[[0, 0, 500, 500], [500, 500, 1000, 1000]]</box>\n"
        "<ref>chart</ref><box>[[10.5, 20, 300, 400.5]]</box>"
    )
    boxes, warnings = parse_grounding(text, 1000, 1000)
    assert boxes == [
        [0.0, 0.0, 500.0, 500.0],
        [500.0, 500.0, 1000.0, 1000.0],
        [10.5, 20.0, 300.0, 400.5],
    ]
    assert warnings == []


def test_reversed_out_of_range_and_duplicate_boxes():
    text = (
        "<box>[[600, 700, 100, 50]]</box><box>[[100, 50, 600, 700]]</box>"
        "<box>[[-20, 0, 1200, 400]]</box>"
    )
    boxes, warnings = parse_grounding(text, 1000, 2000)
    assert boxes == [[100.0, 100.0, 600.0, 1400.0], [0.0, 0.0, 1000.0, 800.0]]
    assert warnings == []


@pytest.mark.parametrize("text", ["none", "", "There is no chart on this page.", "None."])
def test_no_chart_is_not_a_warning(text):
    assert parse_grounding(text, 100, 100) == ([], [])


@pytest.mark.parametrize(
    "text",
    [
        "<ref>chart</ref><box>[[1, 2, 3]]</box>",  # three numbers
        "<ref>chart</ref><box>garbage</box>",
        "<ref>chart</ref><box>[[100, 200, 300, 400]",  # unclosed
        "<ref>chart</ref>",  # ref, no box
        "<box>[[100, 100, 104, 900]]</box>",  # sliver
        "<box>[[a, b, c, d]]</box>",
    ],
)
def test_malformed_grounding_warns(text):
    boxes, warnings = parse_grounding(text, 1000, 1000)
    assert boxes == [] and len(warnings) == 1 and warnings[0].startswith("chart grounding")


def test_box_count_is_capped():
    text = "".join(f"<box>[[{i * 20}, 0, {i * 20 + 15}, 500]]</box>" for i in range(12))
    boxes, warnings = parse_grounding(text, 1000, 1000, max_charts=8)
    assert len(boxes) == 8 and "kept the first 8" in warnings[0]


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
