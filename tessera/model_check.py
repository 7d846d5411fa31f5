"""`tessera model check PATH`: what the first person with real weights and a GPU runs.

It prints the converted checkpoint's facts (pixel shuffle version, rope scaling,
vocabulary, layers, dtype, special-token ids), checks what must hold for the
engine to be right (a known `ps_version`, untied embeddings, special tokens that
agree with config.json and generation_config.json), and only then loads the model
and runs the sample documents through the engine as a worker would, printing each
page's text (with its character error rate where `samples/truth` has the page),
the charts found, tokens/s and pages/s. Any failed check makes the exit status 1.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
SAMPLE_DPI = 200  # Tessera's default render resolution


@dataclass
class CheckReport:
    facts: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or what is wrong
    pages: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(result == "ok" for result in self.checks.values())


def checkpoint_facts(path: Path, report: CheckReport) -> None:
    """Facts and checks read from the files alone (no weights loaded)."""
    from transformers import AutoTokenizer, GenerationConfig, InternVLConfig

    from workers.internvl.special_tokens import RELEASED_IDS, SpecialTokens, special_token_problems
    from workers.internvl.vision import ps_version

    config = InternVLConfig.from_pretrained(str(path))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    text, vision = config.text_config, config.vision_config
    report.facts |= {
        "ps_version": getattr(config, "ps_version", None),
        "rope": dict(text.rope_parameters or {}),
        "max_position_embeddings": text.max_position_embeddings,
        "vocab_size": text.vocab_size,
        "tokenizer_size": len(tokenizer),
        "llm": _shape(text) | {"kv_heads": text.num_key_value_heads},
        "vision": _shape(vision) | {"tokens_per_tile": config.image_seq_length},
        "dtype": str(getattr(config, "dtype", None) or "unknown").removeprefix("torch."),
    }
    try:
        ps_version(config)
        report.checks["ps_version"] = "ok"
    except ValueError as exc:
        report.checks["ps_version"] = str(exc)
    tied = config.tie_word_embeddings or text.tie_word_embeddings
    report.checks["untied embeddings"] = "tied: InternVL 1.5 unties them" if tied else "ok"
    eos = None
    if (path / "generation_config.json").exists():
        eos = GenerationConfig.from_pretrained(str(path)).eos_token_id
    problems = special_token_problems(tokenizer, config, eos)
    report.checks["special tokens"] = "; ".join(problems) or "ok"
    if not problems:
        special = SpecialTokens.from_tokenizer(tokenizer)
        ids = special.ids | {"<s>": special.bos, "</s>": special.eos}
        differ = {name: i for name, i in ids.items() if RELEASED_IDS[name] != i}
        report.facts["special_ids"] = ids
        report.facts["special_ids_as_released"] = differ or True


def _shape(config) -> dict[str, Any]:
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
    }


def sample_pages(folder: Path, tasks: tuple[str, ...], max_tiles: int) -> list:
    """One PageInput per page of every sample (PDFs rendered at 200 dpi, CropBox), ref
    'file#page'."""
    from PIL import Image

    from workers.engines.base import PageInput

    pages = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES):
        if path.suffix.lower() == ".pdf":
            from pdf2image import convert_from_path

            images = convert_from_path(path, dpi=SAMPLE_DPI, use_cropbox=True)
        else:
            images = [Image.open(path).convert("RGB")]
        pages += [
            PageInput(image, tasks=tasks, max_tiles=max_tiles, ref=f"{path.name}#{number}")
            for number, image in enumerate(images, start=1)
        ]
    return pages


def run_samples(engine, pages: list, truth: Path | None, report: CheckReport) -> None:
    """All pages through the engine in one call, as a gpu worker hands them over."""
    from tessera.synthetic import char_error_rate

    before = engine.stats.generated_tokens
    start = time.perf_counter()
    results = engine.process(pages)
    seconds = time.perf_counter() - start
    tokens = engine.stats.generated_tokens - before
    for page, result in zip(pages, results):
        entry = {"page": page.ref, **result.to_json()}
        name, number = page.ref.rsplit("#", 1)
        truth_file = truth / Path(name).stem / f"{number}.txt" if truth else None
        if truth_file is not None and truth_file.exists():
            entry["cer"] = round(char_error_rate(result.text, truth_file.read_text()), 4)
        report.pages.append(entry)
    report.run = {
        "pages": len(pages),
        "seconds": round(seconds, 3),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
        "pages_per_s": round(len(pages) / seconds, 4),
    }
    failed = [f"{p['page']}: {w}" for p in report.pages for w in p["warnings"] if "failed" in w]
    report.checks["samples"] = "; ".join(failed) or "ok"


def lines(report: CheckReport, chars: int) -> list[str]:
    """The report as a person reads it."""
    out = [f"{name}: {json.dumps(v, ensure_ascii=False)}" for name, v in report.facts.items()]
    out += [f"check {name}: {_verdict(r)}" for name, r in report.checks.items()]
    for page in report.pages:
        tiles = page["tiles"]["count"] if page["tiles"] else 0
        cer = f", CER {page['cer']}" if "cer" in page else ""
        out.append(f"--- {page['page']} ({tiles} tiles{cer})")
        text = page["text"]
        out.append(text[:chars] + (" [...]" if len(text) > chars else ""))
        out += [f"chart {c['bbox']}: {c['title']!r} {c['table']}" for c in page["charts"]]
        out += [f"warning: {w}" for w in page["warnings"]]
    if report.run:
        out.append("run: " + json.dumps(report.run))
    return out


def _verdict(result: str) -> str:
    return "ok" if result == "ok" else f"FAIL: {result}"
