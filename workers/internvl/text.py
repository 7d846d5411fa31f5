"""Light clean-up of the model's Markdown transcription.

InternVL often wraps a whole answer in a ```markdown fence; the page text is the
Markdown itself. Nothing else is rewritten: the transcription is the product.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^```[ \t]*(?:markdown|md)?[ \t]*\n(.*?)\n?```\s*$", re.DOTALL | re.IGNORECASE)


def clean_transcription(text: str) -> str:
    """Strip surrounding whitespace and one enclosing ```markdown fence."""
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text
