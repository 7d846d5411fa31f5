"""Reading order and strips: lines top-down, vertical columns right to left, and a tall page cut
into strips that read every line exactly once."""

from __future__ import annotations

import pytest

from workers.engines.reading_order import Span, is_vertical_page, reading_order
from workers.engines.strips import OVERLAP, plan_strips


def span(x0: float, y0: float, x1: float, y1: float, text: str, score: float = 0.9) -> Span:
    return Span(x0, y0, x1, y1, text, score)


def texts(spans: list[Span]) -> list[str]:
    return [line.text for line in reading_order(spans)]


def test_horizontal_lines_top_down_spans_left_to_right_cjk_joined_without_spaces() -> None:
    spans = [
        span(300, 100, 500, 130, "world"), span(50, 260, 250, 290, "价格"), span(50, 102, 250, 132, "Hello"),
        span(50, 200, 250, 230, "第二"), span(260, 198, 400, 228, "行文字"), span(260, 262, 400, 292, "100元"),
        span(50, 150, 400, 180, "middle line"),
        span(420, 162, 600, 192, "drifts down"),  # a skewed page: same line, lower
    ]
    assert texts(spans) == ["Hello world", "middle line drifts down", "第二行文字", "价格 100元"]
    assert reading_order([]) == []


def test_vertical_columns_read_right_to_left_top_to_bottom() -> None:
    columns = [span(700, 100, 760, 700, "北方仓库季度报告"), span(500, 100, 560, 700, "已经全部完成审核"),
               span(300, 100, 360, 700, "请于周五之前提交")]
    assert is_vertical_page(columns)
    assert texts(list(reversed(columns))) == ["北方仓库季度报告", "已经全部完成审核", "请于周五之前提交"]


def test_a_vertical_column_split_into_boxes_stays_one_column_in_order() -> None:
    spans = [span(500, 420, 560, 700, "完成审核"), span(700, 100, 760, 400, "北方仓库"),
             span(502, 100, 558, 400, "已经全部"), span(701, 420, 759, 700, "季度报告")]
    assert texts(spans) == ["北方仓库季度报告", "已经全部完成审核"]


def test_a_page_of_horizontal_lines_with_a_vertical_label_reads_as_lines() -> None:
    spans = [span(100, 100, 900, 140, "A long horizontal line of body text"),
             span(100, 200, 900, 240, "and another long line below it"),
             span(950, 100, 990, 400, "边注")]
    assert not is_vertical_page(spans)


def test_line_boxes_and_confidence() -> None:
    [line] = reading_order([span(10, 10, 50, 30, "ab", 1.0), span(60, 12, 100, 32, "cdef", 0.7)])
    assert line.bbox == [10, 10, 100, 32]
    assert line.confidence == pytest.approx((2 * 1.0 + 4 * 0.7) / 6)
    assert line.to_json() == {"text": "ab cdef", "bbox": [10, 10, 100, 32], "confidence": 0.8}


@pytest.mark.parametrize(("width", "height"), [
    (1700, 2200), (1700, 10000), (600, 8000), (3508, 2480), (100, 3000), (10000, 1500), (1700, 2353),
])
def test_strips_cover_the_page_and_every_line_is_owned_once_and_whole(width: int, height: int) -> None:
    strips = plan_strips(width, height)
    assert strips[0].top == 0 and strips[-1].bottom == height
    for line_height in (10, OVERLAP // 2, OVERLAP):
        for top in range(0, height - line_height, 7):
            owners = [s for s in strips if s.owns(top, top + line_height)]
            assert len(owners) == 1, (top, line_height)
            assert owners[0].top <= top and top + line_height <= owners[0].bottom


def test_a_page_the_detector_takes_whole_is_one_strip() -> None:
    assert len(plan_strips(1700, 2200)) == 1  # a 200-dpi Letter page: never shrunk, never cut
    assert len(plan_strips(1700, 10000)) > 1
