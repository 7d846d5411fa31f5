"""Text matching as `../shared/cases/real-world/expected.json` defines it ("matching").

Compare after Unicode NFKC normalisation, lower-casing and removing all whitespace:
- a line that must appear counts as read when the page text contains it with an edit distance of at
  most 15% of its length; across a page's lines at most 1% of the characters may be wrong, and every
  number (digit run, decimals included) must appear exactly;
- for a line that must not appear, no part of the page text may match it with an edit distance under
  40% of its length;
- in order: each line's best match ends after the previous line's.

Substring edit distance is Sellers' algorithm (a free start anywhere in the text), written here so
the check depends on nothing in the product.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

READ_MAX_DISTANCE = 0.15
PAGE_MAX_CER = 0.01
HIDDEN_MIN_DISTANCE = 0.40
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass
class Match:
    distance: int
    end: int  # index in the normalised text just past the best match


def best_substring_match(needle: str, haystack: str) -> Match:
    """Smallest edit distance between `needle` and any substring of `haystack` (both normalised),
    and where the first such best match ends. One numpy row per character of `needle`: the row
    over the haystack starts at zero everywhere (a match may start anywhere)."""
    if not needle:
        return Match(0, 0)
    cols = np.arange(len(haystack) + 1)
    codes = np.array([ord(c) for c in haystack], dtype=np.int64)
    row = np.zeros(len(haystack) + 1, dtype=np.int64)
    for i, char in enumerate(needle, 1):
        current = np.empty_like(row)
        current[0] = i
        current[1:] = np.minimum(row[:-1] + (codes != ord(char)), row[1:] + 1)
        row = np.minimum.accumulate(current - cols) + cols  # insertions, left to right
    end = int(np.argmin(row))
    return Match(int(row[end]), end)


@dataclass
class PageVerdict:
    """What a page's text got wrong against its expected lines; empty `problems` means right."""

    problems: list[str] = field(default_factory=list)
    char_errors: int = 0
    chars: int = 0

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else 0.0


def check_page(text: str, must_contain: list[str], must_not_contain: list[str] = (),
               in_order: list[str] = ()) -> PageVerdict:
    """Judge one page's text by the rules of expected.json's `matching`."""
    page, verdict = normalise(text), PageVerdict()
    ends: dict[str, int] = {}
    for line in must_contain:
        wanted = normalise(line)
        match = best_substring_match(wanted, page)
        ends[line] = match.end
        verdict.char_errors += match.distance
        verdict.chars += len(wanted)
        if match.distance > READ_MAX_DISTANCE * len(wanted):
            verdict.problems.append(f"not read: {line!r} (distance {match.distance})")
        for number in _NUMBER.findall(wanted):
            if not _number_present(number, page):
                verdict.problems.append(f"number {number} of {line!r} not exact")
    if verdict.cer > PAGE_MAX_CER:
        verdict.problems.append(f"character error rate {verdict.cer:.3f} > {PAGE_MAX_CER}")
    for line in must_not_contain:
        wanted = normalise(line)
        match = best_substring_match(wanted, page)
        if match.distance < HIDDEN_MIN_DISTANCE * len(wanted):
            verdict.problems.append(f"hidden text read: {line!r} (distance {match.distance})")
    order = [ends.get(line, best_substring_match(normalise(line), page).end) for line in in_order]
    if order != sorted(order):
        verdict.problems.append(f"lines out of order: {list(in_order)} end at {order}")
    return verdict


def _number_present(number: str, page: str) -> bool:
    """The digit run appears with no digit glued on either side (so 13.25 is not read in 113.256)."""
    return re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", page) is not None
