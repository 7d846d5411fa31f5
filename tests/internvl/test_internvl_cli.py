"""`tessera tiles` and `tessera model convert`, through Typer as the real CLI registers them."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from tessera.cli_model import model_app, tiles

pytestmark = pytest.mark.internvl


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    cli = typer.Typer()
    cli.add_typer(model_app, name="model")
    cli.command("tiles")(tiles)
    return cli


def test_tiles_prints_one_json_line_per_size(app):
    result = CliRunner().invoke(app, ["tiles", "800x1300", "3840x2160", "--max-tiles", "40"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    # 800x1300 (aspect .6154) at max 40: 5/8 = .625 (diff .0096) beats 3/5 (.0154) and 2/3 (.051)
    assert lines[0] == {
        "width": 800,
        "height": 1300,
        "grid": [5, 8],
        "tiles": 41,
        "visual_tokens": 10496,
    }
    assert lines[1] == {
        "width": 3840,
        "height": 2160,
        "grid": [7, 4],
        "tiles": 29,
        "visual_tokens": 7424,
    }


def test_tiles_default_max_is_12(app):
    result = CliRunner().invoke(app, ["tiles", "800x1300"])
    assert json.loads(result.output) == {
        "width": 800,
        "height": 1300,
        "grid": [2, 3],
        "tiles": 7,
        "visual_tokens": 1792,
    }


def test_tiles_min_tiles(app):
    result = CliRunner().invoke(app, ["tiles", "10x10", "--max-tiles", "4", "--min-tiles", "2"])
    assert json.loads(result.output)["grid"] == [2, 2]


@pytest.mark.parametrize(
    "args", [["tiles", "800by1300"], ["tiles", "0x10"], ["tiles", "10x10", "--max-tiles", "41"]]
)
def test_tiles_bad_input_is_a_usage_error(app, args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2


def test_tiles_is_a_plain_function_too(capsys):
    tiles(["448x448"], max_tiles=12, min_tiles=1)
    assert json.loads(capsys.readouterr().out)["tiles"] == 1


def test_model_convert(app, tiny_original, tmp_path):
    dst = tmp_path / "native"
    result = CliRunner().invoke(app, ["model", "convert", str(tiny_original), str(dst)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["dst"] == str(dst) and report["dtype"] == "bfloat16"
    assert [w.split(":")[0] for w in report["warnings"]] == ["ps_version v1 kept in config.json"]
    assert "warning: ps_version v1" in result.stderr
    assert (dst / "config.json").exists() and (dst / "tokenizer.json").exists()
    again = CliRunner().invoke(app, ["model", "convert", str(tiny_original), str(dst)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_model_check_prints_the_facts_checks_and_runs_the_bundled_samples(
    app, tiny_native, tmp_path
):
    report_file = tmp_path / "check.json"
    args = ["model", "check", str(tiny_native), "--max-tiles", "1", "--max-new-tokens", "2"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--json", str(report_file)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    facts = report["facts"]
    assert facts["ps_version"] == "v1" and facts["dtype"] == "bfloat16"
    assert facts["rope"] == {"rope_type": "dynamic", "factor": 3.0, "rope_theta": 1e6}
    assert facts["vocab_size"] == facts["tokenizer_size"] == 92553
    assert facts["llm"]["layers"] == 2 and facts["vision"]["tokens_per_tile"] == 256
    assert facts["special_ids"]["<IMG_CONTEXT>"] == 92546 and facts["special_ids_as_released"]
    assert facts["loaded"]["device"] == "cpu"
    assert set(report["checks"].values()) == {"ok"}
    # samples/: 3 + 2 PDF pages, 3 images; each asked for its text and two grounding phrases
    pages = {page["page"]: page for page in report["pages"]}
    assert len(pages) == 8 and "english-prose.pdf#3" in pages and "bar-chart.png#1" in pages
    assert pages["table.png#1"]["text"] and 0 <= pages["table.png#1"]["cer"]
    run = report["run"]
    assert run["pages"] == 8 and run["generated_tokens"] == 8 * 3 * 2
    assert run["tokens_per_s"] > 0 and run["pages_per_s"] > 0
    assert "check special tokens: ok" in result.output and "--- table.png#1" in result.output
    assert pages["table.png#1"]["text"][:20] in result.output


@pytest.mark.parametrize(
    ("change", "failed"),
    [({"image_token_id": 92552}, "special tokens"), ({"ps_version": "v3"}, "ps_version")],
)
def test_model_check_fails_a_bad_checkpoint_before_running_anything(
    app, tiny_native, tmp_path, change, failed
):
    import shutil

    native = tmp_path / "native"
    shutil.copytree(tiny_native, native)
    config = json.loads((native / "config.json").read_text())
    (native / "config.json").write_text(json.dumps(config | change))
    result = CliRunner().invoke(app, ["model", "check", str(native), "--device", "cpu"])
    assert result.exit_code == 1
    assert f"check {failed}: FAIL" in result.output and "run:" not in result.output
