"""InternVL's special tokens: their names are the template's, their ids the checkpoint's.

The model learnt the strings (`<|im_end|>`, `<IMG_CONTEXT>`, `<box>` ...); which id
each one has is a fact of the checkpoint, read from its tokenizer and checked
against its config (`image_token_id`, bos/eos/pad, the generation config's eos),
never assumed. So an InternVL 1.5-family checkpoint with the same architecture
and other ids loads without code changes. `RELEASED_IDS` (INTERNVL.md) is only
shown by `tessera model check`, never used to encode or decode.
"""

from __future__ import annotations

from dataclasses import dataclass

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # end of a turn; generation stops here
IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"  # one per visual token; its embedding is replaced by a feature
GROUNDING_MARKUP = ("<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>")
NAMES = (IM_END, IM_START, IMG_START, IMG_END, IMG_CONTEXT, *GROUNDING_MARKUP)

# InternVL-Chat-V1-5 as released (INTERNVL.md): reported by `tessera model check`.
RELEASED_IDS = {name: 92542 + i for i, name in enumerate(NAMES)} | {
    "<s>": 1,
    "</s>": 2,
}


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of one checkpoint's special tokens."""

    ids: dict[str, int]  # every name in NAMES
    bos: int
    eos: int
    pad: int

    @property
    def im_end(self) -> int:
        return self.ids[IM_END]

    @property
    def img_context(self) -> int:
        return self.ids[IMG_CONTEXT]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialTokens:
        """The ids a loaded tokenizer gives; ValueError when one of NAMES is not a token."""
        ids = {name: _single_id(tokenizer, name) for name in NAMES}
        missing = [name for name, token_id in ids.items() if token_id is None]
        if missing:
            raise ValueError(f"tokenizer has no token for {', '.join(missing)}")
        return cls(ids, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)


def _single_id(tokenizer, name: str) -> int | None:
    """The id `name` encodes to, if it is one token of its own (not split, not unknown)."""
    ids = tokenizer(name, add_special_tokens=False).input_ids
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        return None
    return ids[0]


def special_token_problems(tokenizer, model_config, generation_eos=None) -> list[str]:
    """Where a tokenizer and a native InternVL config disagree (empty: they agree).

    model_config: InternVLConfig; generation_eos: the generation config's eos id(s),
    checked when given (the converted checkpoint's generation_config.json).
    """
    try:
        tokens = SpecialTokens.from_tokenizer(tokenizer)
    except ValueError as exc:
        return [str(exc)]
    text = model_config.text_config
    problems = []
    if tokens.img_context != model_config.image_token_id:
        problems.append(
            f"{IMG_CONTEXT} is id {tokens.img_context} in the tokenizer but "
            f"image_token_id is {model_config.image_token_id} in config.json"
        )
    for role in ("bos", "eos", "pad"):
        ours, theirs = getattr(tokens, role), getattr(text, f"{role}_token_id")
        if ours != theirs:
            problems.append(f"{role} id {ours} in the tokenizer, {theirs} in config.json")
    too_big = {n: i for n, i in tokens.ids.items() if i >= text.vocab_size}
    if too_big:
        problems.append(f"ids past the embedding table ({text.vocab_size} rows): {too_big}")
    if len(set(tokens.ids.values())) != len(tokens.ids):
        problems.append(f"two special tokens share an id: {tokens.ids}")
    if generation_eos is not None:
        eos = generation_eos if isinstance(generation_eos, list) else [generation_eos]
        if tokens.im_end not in eos:
            problems.append(
                f"generation_config.json stops at {eos}, not at {IM_END} ({tokens.im_end})"
            )
    return problems
