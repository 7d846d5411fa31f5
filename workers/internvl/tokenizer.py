"""The InternLM2 tokenizer rebuilt as a plain `tokenizers` BPE, without remote code.

The original checkpoint ships a SentencePiece `tokenizer.model` and a
`trust_remote_code` tokenizer class. We read the SentencePiece model (pieces,
scores, normaliser flags) and write an equivalent `tokenizer.json`, plus the
InternVL added tokens at their original ids, so `AutoTokenizer` loads it with no
remote code. Encoding follows the slow tokenizer the model was trained with:
text is split at added tokens and each piece is encoded by SentencePiece on its
own (dummy prefix included when the model says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

# SentencePiece piece types (sentencepiece_model.proto)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # "▁"


@dataclass
class SpModel:
    """What we need from a SentencePiece BPE model."""

    pieces: list[tuple[str, float, int]]  # (piece, score, type), index = id
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = False
    split_by_whitespace: bool = True
    precompiled_charsmap: bytes = b""


@dataclass
class AddedSpec:
    """A token matched before BPE (special tokens and InternVL's additions)."""

    id: int
    content: str
    special: bool = True


@dataclass
class TokenizerFiles:
    tokenizer: Tokenizer
    added: list[AddedSpec] = field(default_factory=list)
    add_bos: bool = True


def read_sentencepiece(path: Path) -> SpModel:
    """Parse `tokenizer.model` (needs protobuf, via sentencepiece's generated module)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(Path(path).read_bytes())
    if proto.trainer_spec.model_type != pb.TrainerSpec.BPE:
        raise ValueError("expected a SentencePiece BPE model (InternLM2)")
    norm = proto.normalizer_spec
    return SpModel(
        pieces=[(p.piece, p.score, p.type) for p in proto.pieces],
        add_dummy_prefix=norm.add_dummy_prefix,
        remove_extra_whitespaces=norm.remove_extra_whitespaces,
        split_by_whitespace=proto.trainer_spec.split_by_whitespace,
        precompiled_charsmap=bytes(norm.precompiled_charsmap),
    )


def bpe_merges(pieces: list[tuple[str, float, int]]) -> list[tuple[str, str]]:
    """Merges that rebuild every NORMAL piece from two smaller pieces.

    SentencePiece BPE merges the adjacent pair whose result has the highest
    score; ranking merges by that score (then id) reproduces it.
    """
    vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    ranked = []
    for i, (piece, score, kind) in enumerate(pieces):
        if kind != NORMAL or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((-score, i, vocab[left], (left, right)))
    ranked.sort()
    return [merge for *_, merge in ranked]


def build_tokenizer(sp: SpModel, added: list[AddedSpec]) -> TokenizerFiles:
    """A `tokenizers` BPE equivalent to the slow SentencePiece tokenizer."""
    vocab = {piece: i for i, (piece, _, _) in enumerate(sp.pieces)}
    model = BPE(
        vocab=vocab,
        merges=bpe_merges(sp.pieces),
        unk_token=sp.pieces[0][0],
        fuse_unk=True,
        byte_fallback=True,
    )
    tok = Tokenizer(model)
    tok.normalizer = _normalizer(sp)
    if sp.split_by_whitespace:
        tok.pre_tokenizer = pre_tokenizers.Split(SPACE, behavior="merged_with_next")
    tok.decoder = _decoder(sp)
    specs = _all_added(sp, added)
    for spec in sorted(specs, key=lambda s: s.id):
        token = AddedToken(spec.content, special=spec.special, normalized=False)
        (tok.add_special_tokens if spec.special else tok.add_tokens)([token])
    bos = sp.pieces[1][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 1)]
    )
    return TokenizerFiles(tok, specs)


def _normalizer(sp: SpModel) -> normalizers.Normalizer:
    steps: list[normalizers.Normalizer] = []
    if sp.precompiled_charsmap:
        steps.append(normalizers.Precompiled(sp.precompiled_charsmap))
    if sp.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(_regex(" {2,}"), " ")]
    if sp.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPACE))
    steps.append(normalizers.Replace(" ", SPACE))
    return normalizers.Sequence(steps)


def _decoder(sp: SpModel) -> decoders.Decoder:
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if sp.add_dummy_prefix:
        steps.append(decoders.Strip(content=" ", left=1))
    return decoders.Sequence(steps)


def _regex(pattern: str):
    from tokenizers import Regex

    return Regex(pattern)


def _all_added(sp: SpModel, added: list[AddedSpec]) -> list[AddedSpec]:
    """Control/user-defined pieces of the model, overridden by the config's list."""
    by_id = {
        i: AddedSpec(i, piece, special=kind == CONTROL)
        for i, (piece, _, kind) in enumerate(sp.pieces)
        if kind in (CONTROL, USER_DEFINED)
    }
    by_id.update({spec.id: spec for spec in added})
    return list(by_id.values())


def read_added_tokens(src: Path) -> list[AddedSpec]:
    """Added tokens of the original checkpoint (tokenizer_config.json, added_tokens.json)."""
    specs: dict[int, AddedSpec] = {}
    added_json = src / "added_tokens.json"
    if added_json.exists():
        for content, idx in json.loads(added_json.read_text()).items():
            specs[int(idx)] = AddedSpec(int(idx), content)
    config = src / "tokenizer_config.json"
    if config.exists():
        decoder = json.loads(config.read_text()).get("added_tokens_decoder", {})
        for idx, entry in decoder.items():
            specs[int(idx)] = AddedSpec(
                int(idx), entry["content"], bool(entry.get("special", True))
            )
    return list(specs.values())


def save_tokenizer(files: TokenizerFiles, dst: Path) -> None:
    """Write tokenizer.json + config files that `AutoTokenizer` reads without remote code."""
    dst.mkdir(parents=True, exist_ok=True)
    files.tokenizer.save(str(dst / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "add_bos_token": files.add_bos,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000,  # rope is dynamic NTK: no hard limit to warn about
        "padding_side": "left",
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    (dst / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
