"""Packing requests into device batches (pure logic, no model)."""

from __future__ import annotations

import pytest

from workers.internvl.batching import plan_streams, shrink_on_failure
from workers.internvl.runner import split_answer

pytestmark = pytest.mark.internvl


def test_without_a_cap_one_stream_holds_everything_longest_first():
    assert plan_streams([10, 50, 30, 40, 20], max_rows=2) == [([1, 3, 2, 4, 0], 2)]
    assert plan_streams([10, 50], max_rows=8) == [([1, 0], 2)]  # no more slots than requests


def test_with_a_cap_length_classes_get_slots_by_their_longest_prompt():
    # room per slot = longest + 100; cap 1200 cache positions
    lengths = [500, 450, 260, 240, 130, 120, 40, 30]
    assert plan_streams(lengths, max_rows=8, max_tokens=1200, answer_room=100) == [
        ([0, 1, 2], 2),  # 600 per slot; 260 is within 2x of 500, 240 is not
        ([3, 4, 5], 3),  # 340 per slot
        ([6, 7], 2),  # 140 per slot: 8 would fit, 2 requests need 2
    ]
    # a prompt longer than the cap still runs, with one slot
    assert plan_streams([5000], max_rows=8, max_tokens=1200) == [([0], 1)]


def test_room_for_prompts_that_join_later_counts_against_the_cap():
    # prompts of 100 tokens, but prompts of up to 500 may join: 600 per slot under 1200
    assert plan_streams([100, 100, 100], 8, 1200, answer_room=100, prompt_room=500) == [
        ([0, 1, 2], 2)
    ]


class Capacity(Exception):
    pass


def _shrinking(items, slots, fits):
    """shrink_on_failure over a fake stream that answers items in order until one does not fit."""
    calls = []

    def run(pending, n):
        calls.append((list(pending), n))
        for item in pending:
            if not fits(item, n):
                raise Capacity()
            yield item, f"ok {item}"

    out = list(
        shrink_on_failure(
            items, slots, run, lambda e: isinstance(e, Capacity), lambda item, exc: "failed"
        )
    )
    done = [item for item, result in out if result.startswith("ok")]
    failed = [item for item, result in out if result == "failed"]
    return calls, done, failed


def test_a_stream_that_does_not_fit_goes_on_with_half_the_slots():
    calls, done, failed = _shrinking(["a", "b", "c", "d"], 8, lambda item, n: item != "c" or n <= 2)
    assert calls == [(["a", "b", "c", "d"], 8), (["c", "d"], 4), (["c", "d"], 2)]
    assert done == ["a", "b", "c", "d"] and failed == []


def test_an_item_that_does_not_fit_alone_fails_alone():
    calls, done, failed = _shrinking(["a", "huge", "b"], 2, lambda item, n: item != "huge")
    assert calls == [(["a", "huge", "b"], 2), (["huge", "b"], 1), (["b"], 1)]
    assert done == ["a", "b"] and failed == ["huge"]


def test_other_errors_are_not_capacity():
    def run(pending, n):
        yield pending[0], "ok"
        raise KeyError("bug")

    with pytest.raises(KeyError):
        list(shrink_on_failure([1, 2], 4, run, lambda e: False, lambda i, e: None))


def test_answer_is_cut_at_im_end():
    assert split_answer([5, 6, 92542, 2, 2], max_new_tokens=5, end_id=92542) == ([5, 6], 3, False)
    assert split_answer([5, 6, 7], max_new_tokens=3, end_id=92542) == ([5, 6, 7], 3, True)
    assert split_answer([92542], max_new_tokens=3, end_id=92542) == ([], 1, False)
    assert split_answer([5, 9, 6], max_new_tokens=5, end_id=9) == ([5], 2, False)
