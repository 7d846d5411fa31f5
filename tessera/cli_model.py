"""`tessera model convert` and `tessera tiles`: the InternVL tools of the command line.

Register with:
    app.add_typer(model_app, name="model")
    app.command("tiles")(tiles)

Heavy imports (torch, transformers) happen inside `convert` only, so `tessera
tiles` answers instantly on any machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(no_args_is_help=True, help="InternVL checkpoints.")

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


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
