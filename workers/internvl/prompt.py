"""Prompts in InternVL 1.5's "internlm2-chat" template, and why each question is worded so.

The model only behaves as published when the prompt matches its training template
to the character: `<|im_start|>role\\n ... <|im_end|>` with no newline after
`<|im_end|>`, and the image as `<img>` + 256 `<IMG_CONTEXT>` per tile + `</img>`
then a newline, on the first line of the user turn (the V1-5 `chat()`).

Every question and the system message can be replaced through `TESSERA_INTERNVL_*`
settings (README, "The InternVL engine"); the defaults below are the ones the
reasons here are about. Where InternVL 1.5 was trained and evaluated with a fixed
form, the default is that form verbatim; where it was not, the default is a plain
instruction, and `tessera model check` prints what real weights answer to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.internvl.special_tokens import IM_END, IM_START, IMG_CONTEXT, IMG_END, IMG_START
from workers.internvl.tiling import TOKENS_PER_TILE

# The internlm2-chat template's own system message at the V1-5 release
# (internvl_chat/internvl/conversation.py, 2024-04): the one the model was fine-tuned
# under. Later repository versions switched to a Chinese InternVL self-introduction
# that the V1-5 weights never saw.
SYSTEM_MESSAGE = "You are an AI assistant whose name is InternLM (书生·浦语)."

# No fixed full-page transcription form exists in InternVL 1.5's training recipe or
# evaluation (OCRBench, TextVQA and DocVQA ask short questions), so this is an
# instruction, each clause there for a reason: "Markdown, in reading order" is the
# form of the page text Tessera stores (and what text.py unwraps from a fence);
# "headings, lists, tables as Markdown tables" keeps structure a flat transcript
# loses; "Output only the transcription" stops the chat habit of a preamble
# ("The image shows ..."), which would end up in the stored text.
OCR_PROMPT = (
    "Transcribe this page as Markdown, in reading order. Keep headings, lists and "
    "paragraphs; write tables as Markdown tables. Output only the transcription."
)

# The referring-expression grounding form InternVL 1.5 was trained and evaluated with,
# verbatim (internvl_chat/eval/refcoco/evaluate_grounding.py, V1-5 era): one phrase
# per request, inside <ref></ref>. The answer is `<ref>phrase</ref><box>[[x0, y0, x1,
# y1]]</box>` on a 0-1000 scale (grounding.py). A free-form "find every chart, one line
# each" request was never trained, so it is not used.
GROUNDING_PROMPT = (
    "Please provide the bounding box coordinate of the region this sentence describes: "
    "<ref>{phrase}</ref>"
)
# One request per phrase; boxes that two phrases find are merged (grounding.py). "chart"
# and "graph" are the two everyday names of the same thing (chart questions use both);
# asking for both catches a chart the model links to only one of the words.
GROUNDING_PHRASES = ("chart", "graph")

# Chart-to-table has no fixed trained form either (ChartQA is short questions about a
# chart). The instruction asks for what charts.py reads: a "Title: " line (the only
# structured place for the title) and a Markdown table whose first row names the
# columns; the parser also reads DePlot-style linearised tables (`<0x0A>`, "TITLE |"),
# the other form chart data is commonly written in, in case the model prefers it.
TABLE_PROMPT = (
    "Convert this chart into a data table. On the first line write 'Title: ' followed by "
    "the chart title (empty if it has none). Then write the data as a Markdown table whose "
    "first row holds the column names."
)

PHRASE = "{phrase}"


@dataclass(frozen=True)
class Prompts:
    """The system message and the questions the engine asks (defaults above)."""

    system: str = SYSTEM_MESSAGE
    ocr: str = OCR_PROMPT
    grounding: str = GROUNDING_PROMPT  # contains "{phrase}"
    grounding_phrases: tuple[str, ...] = GROUNDING_PHRASES
    table: str = TABLE_PROMPT

    @classmethod
    def from_settings(cls, settings) -> Prompts:
        """Defaults where a `TESSERA_INTERNVL_*` prompt setting is unset (None)."""
        given = {
            "system": settings.internvl_system_message,
            "ocr": settings.internvl_ocr_prompt,
            "grounding": settings.internvl_grounding_prompt,
            "table": settings.internvl_table_prompt,
        }
        phrases = settings.internvl_grounding_phrases
        if phrases is not None:
            given["grounding_phrases"] = tuple(phrases)
        return cls(**{name: value for name, value in given.items() if value is not None})

    def grounding_question(self, phrase: str) -> str:
        return self.grounding.replace(PHRASE, phrase)


def image_placeholder(n_tiles: int, tokens_per_tile: int = TOKENS_PER_TILE) -> str:
    """`<img>` + one `<IMG_CONTEXT>` per visual token (thumbnail included) + `</img>`."""
    return IMG_START + IMG_CONTEXT * (tokens_per_tile * n_tiles) + IMG_END


def build_prompt(
    question: str,
    n_tiles: int,
    system_message: str,
    tokens_per_tile: int = TOKENS_PER_TILE,
) -> str:
    """One user turn with an image, ready for the assistant's answer."""
    image = image_placeholder(n_tiles, tokens_per_tile)
    return (
        f"{IM_START}system\n{system_message}{IM_END}"
        f"{IM_START}user\n{image}\n{question}{IM_END}"
        f"{IM_START}assistant\n"
    )
