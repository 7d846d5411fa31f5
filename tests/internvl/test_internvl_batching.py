"""Packing requests into device batches (pure logic, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.internvl.batching import left_pad, plan_groups, split_on_failure
from workers.internvl.runner import split_answer

pytestmark = pytest.mark.internvl


def test_groups_are_longest_first_and_bounded_by_rows():
    # lengths sorted: 50 (1), 40 (3), 30 (2), 20 (4), 10 (0)
    assert plan_groups([10, 50, 30, 40, 20], max_rows=2) == [[1, 3], [2, 4], [0]]


def test_groups_bounded_by_padded_tokens():
    # 100-token prompts: 3 rows = 300 padded tokens fit 300; a 4th would not
    assert plan_groups([100, 100, 100, 100], max_rows=8, max_tokens=300) == [[0, 1, 2], [3]]
    # a prompt longer than the budget still runs, alone
    assert plan_groups([500, 10], max_rows=8, max_tokens=300) == [[0], [1]]


def test_left_padding():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=2)
    assert ids.tolist() == [[5, 6, 7], [2, 2, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == np.int64


class Capacity(Exception):
    pass


def test_split_on_failure_isolates_the_item_that_does_not_fit():
    calls = []

    def run(items):
        calls.append(list(items))
        if len(items) > 2 or "huge" in items:
            raise Capacity()
        return [f"ok {i}" for i in items]

    out = split_on_failure(
        ["a", "b", "huge", "c", "d"],
        run,
        lambda e: isinstance(e, Capacity),
        lambda item, exc: f"failed {item}",
    )
    assert out == ["ok a", "ok b", "failed huge", "ok c", "ok d"]


def test_split_on_failure_reraises_other_errors():
    def run(items):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        split_on_failure([1, 2], run, lambda e: False, lambda i, e: None)


def test_answer_is_cut_at_im_end():
    assert split_answer([5, 6, 92542, 2, 2], max_new_tokens=5) == ([5, 6], 3, False)
    assert split_answer([5, 6, 7], max_new_tokens=3) == ([5, 6, 7], 3, True)
    assert split_answer([92542], max_new_tokens=3) == ([], 1, False)
