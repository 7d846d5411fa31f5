"""`tessera model convert|check` and `tessera tiles`: the InternVL tools of the command line.

Register with:
    app.add_typer(model_app, name="model")
    app.command("tiles")(tiles)

Heavy imports (torch, transformers) happen inside `convert` and `check` only, so
`tessera tiles` answers instantly on any machine.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(no_args_is_help=True, help="InternVL checkpoints.")

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # in a source checkout


@model_app.command("convert")
def convert(
    src: Annotated[
        Path, typer.Argument(help="original OpenGVLab InternVL-Chat-V1-5 checkpoint folder")
    ],
    dst: Annotated[Path, typer.Argument(help="new folder for the native transformers checkpoint")],
    shard_gb: Annotated[
        float, typer.Option("--shard-gb", help="maximum size of one weight file")
    ] = 5.0,
) -> None:
    """Convert an original InternVL 1.5 checkpoint to transformers' native InternVL."""
    from workers.internvl.checkpoint import convert_checkpoint
    from workers.internvl.checkpoint_config import ConversionError

    if not (src / "config.json").exists():
        raise typer.BadParameter(f"{src} has no config.json", param_hint="SRC")
    try:
        report = convert_checkpoint(src, dst, max_shard_bytes=int(shard_gb * 2**30))
    except ConversionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(report.to_json()))


@model_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="converted checkpoint folder")],
    samples: Annotated[
        Path, typer.Option(help="documents to run (truth/ beside them: CER)")
    ] = SAMPLES,
    tasks: Annotated[str, typer.Option(help="comma list: ocr, charts")] = "ocr,charts",
    max_tiles: Annotated[int, typer.Option("--max-tiles", min=1, max=40)] = 12,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="default: TESSERA_INTERNVL_MAX_NEW_TOKENS")
    ] = None,
    device: Annotated[str | None, typer.Option(help="default: TESSERA_INTERNVL_DEVICE")] = None,
    chars: Annotated[int, typer.Option(help="characters of each page's text to print")] = 400,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the report here")
    ] = None,
) -> None:
    """Print a converted checkpoint's facts, check it, and run the samples through the engine
    (text, tokens/s, pages/s). Exit status 1 when a check fails."""
    from tessera.config import get_settings
    from tessera.model_check import CheckReport, checkpoint_facts, lines, run_samples, sample_pages

    if not (path / "config.json").exists():
        raise typer.BadParameter(f"{path} has no config.json", param_hint="PATH")
    if not samples.is_dir():
        raise typer.BadParameter(f"{samples} is not a folder of documents", param_hint="--samples")
    report = CheckReport()
    checkpoint_facts(path, report)
    if report.ok:
        settings = get_settings().model_copy(update=_overrides(path, max_new_tokens, device))
        engine = _load_engine(settings, report)
        if engine is not None:
            pages = sample_pages(samples, tuple(t.strip() for t in tasks.split(",")), max_tiles)
            run_samples(engine, pages, samples / "truth", report)
    for line in lines(report, chars):
        typer.echo(line)
    if json_out is not None:
        json_out.write_text(json.dumps(report.__dict__, indent=2, ensure_ascii=False))
    raise typer.Exit(0 if report.ok else 1)


def _overrides(path: Path, max_new_tokens: int | None, device: str | None) -> dict:
    update: dict = {"engine": "internvl", "model_path": path}
    if max_new_tokens is not None:
        update["internvl_max_new_tokens"] = max_new_tokens
    if device is not None:
        update["internvl_device"] = device
    return update


def _load_engine(settings, report):
    """The engine as a gpu worker builds it; None (and a failed check) when it cannot load."""
    from workers.internvl.engine import InternVLEngine
    from workers.internvl.loader import CheckpointError

    start = time.perf_counter()
    try:
        engine = InternVLEngine.from_settings(settings)
    except CheckpointError as exc:
        report.checks["load"] = str(exc)
        return None
    model = engine.runner.model
    report.checks["load"] = "ok"
    report.facts["loaded"] = {
        "device": str(engine.runner.device),
        "dtype": str(model.dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return engine


def parse_size(text: str) -> tuple[int, int]:
    """'800x1300' -> (800, 1300)."""
    match = _SIZE.match(text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise typer.BadParameter(f"{text!r} is not WIDTHxHEIGHT (e.g. 800x1300)")
    return int(match[1]), int(match[2])


def tiles(
    sizes: Annotated[
        list[str], typer.Argument(help="image sizes as WIDTHxHEIGHT", show_default=False)
    ],
    max_tiles: Annotated[int, typer.Option("--max-tiles", help="1..40")] = 12,
    min_tiles: Annotated[int, typer.Option("--min-tiles")] = 1,
) -> None:
    """Print the InternVL tile grid for each size: one JSON line per size."""
    from workers.internvl.tiling import plan_tiles

    parsed = [parse_size(size) for size in sizes]
    for width, height in parsed:
        try:
            plan = plan_tiles(width, height, max_tiles, min_tiles)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(json.dumps(plan.to_json()))
