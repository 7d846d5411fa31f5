"""Prompts in InternVL 1.5's "internlm2-chat" template and the questions Tessera asks.

The model only behaves as published when the prompt matches its training template
to the character: `<|im_start|>role\\n ... <|im_end|>` with no newline after
`<|im_end|>`, and the image as `<img>` + 256 `<IMG_CONTEXT>` per tile + `</img>`
on the first line of the user turn.
"""

from __future__ import annotations

from workers.internvl.tiling import TOKENS_PER_TILE

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"

# Ids INTERNVL.md lists; the loader checks the tokenizer agrees.
SPECIAL_TOKEN_IDS: dict[str, int] = {
    "<|im_end|>": 92542,
    "<|im_start|>": 92543,
    "<img>": 92544,
    "</img>": 92545,
    "<IMG_CONTEXT>": 92546,
    "<quad>": 92547,
    "</quad>": 92548,
    "<ref>": 92549,
    "</ref>": 92550,
    "<box>": 92551,
    "</box>": 92552,
}
IM_END_ID = SPECIAL_TOKEN_IDS[IM_END]  # generation stops here
IMG_CONTEXT_ID = SPECIAL_TOKEN_IDS[IMG_CONTEXT]
BOS_ID, EOS_ID, PAD_ID = 1, 2, 2

OCR_QUESTION = (
    "Transcribe this page as Markdown, in reading order. Keep headings, lists and "
    "paragraphs; write tables as Markdown tables. Output only the transcription."
)
GROUNDING_QUESTION = (
    "Find every chart or graph on this page. For each one write one line: "
    "<ref>chart</ref><box>[[x0, y0, x1, y1]]</box> with coordinates on a 0-1000 scale. "
    "If there is no chart, answer: none."
)
TABLE_QUESTION = (
    "Convert this chart into a data table. On the first line write 'Title: ' followed by "
    "the chart title (empty if it has none). Then write the data as a Markdown table whose "
    "first row holds the column names."
)


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
