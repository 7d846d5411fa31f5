"""Special-token ids come from the checkpoint: a family member with other ids loads and answers
like the original, and a tokenizer that disagrees with its config is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.internvl import reference_pipeline
from tests.utils.tiny_internvl import build_tiny_original_checkpoint
from workers.engines.base import PageInput
from workers.internvl.checkpoint import convert_checkpoint
from workers.internvl.engine import EngineOptions, InternVLEngine
from workers.internvl.loader import CheckpointError, load_model, load_tokenizer
from workers.internvl.pages import prepare
from workers.internvl.prompt import Prompts
from workers.internvl.special_tokens import NAMES, RELEASED_IDS, SpecialTokens

pytestmark = pytest.mark.internvl


def test_the_released_layout_is_read_from_the_tokenizer(tiny_engine):
    special = tiny_engine.runner.special
    assert special.ids == {name: RELEASED_IDS[name] for name in NAMES}
    assert (special.bos, special.eos, special.pad, special.im_end) == (1, 2, 2, 92542)


@pytest.fixture(scope="module")
def other_ids(tmp_path_factory) -> tuple:
    """A tiny checkpoint whose special tokens sit in reverse order, converted."""
    root = tmp_path_factory.mktemp("other-ids")
    src = build_tiny_original_checkpoint(root / "original", seed=2, other_ids=True)
    convert_checkpoint(src, root / "native")
    return src, root / "native"


def test_a_checkpoint_with_other_ids_answers_like_the_original(other_ids):
    src, native = other_ids
    import torch

    model = load_model(native, torch.device("cpu"), torch.float32)
    tokenizer = load_tokenizer(native, model.config)
    special = SpecialTokens.from_tokenizer(tokenizer)
    assert (special.im_end, special.img_context) == (92539, 92550)
    assert model.config.image_token_id == 92550
    engine = InternVLEngine(model, tokenizer, EngineOptions(max_new_tokens=8))
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (500, 900, 3), dtype=np.uint8))
    [request] = engine._first_requests(prepare(0, PageInput(image, max_tiles=2)))
    ours = engine.runner.run([request])[request.key]
    prompts = Prompts()
    theirs = reference_pipeline.answer(src, image, prompts.ocr, prompts.system, 2, 8)
    assert theirs.gap > 1e-3 and len(theirs.tokens) == 8
    assert ours.tokens == theirs.tokens and ours.text == theirs.text


def _copy(native, tmp_path):
    dst = tmp_path / "native"
    shutil.copytree(native, dst)
    return dst


def _edit(path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_a_tokenizer_that_disagrees_with_config_json_is_refused(tiny_native, tmp_path):
    native = _copy(tiny_native, tmp_path)
    _edit(native / "config.json", image_token_id=92552)  # </box>
    with pytest.raises(CheckpointError, match="<IMG_CONTEXT> is id 92546 in the tokenizer"):
        load_tokenizer(native)


def test_a_generation_config_that_does_not_stop_at_im_end_is_refused(tiny_native, tmp_path):
    native = _copy(tiny_native, tmp_path)
    _edit(native / "generation_config.json", eos_token_id=[2])
    with pytest.raises(CheckpointError, match="not at <|im_end|>"):
        load_tokenizer(native)


def test_a_checkpoint_converted_without_ps_version_is_refused(tiny_native, tmp_path):
    import torch

    native = _copy(tiny_native, tmp_path)
    config = json.loads((native / "config.json").read_text())
    del config["ps_version"]
    (native / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="ps_version None"):
        load_model(native, torch.device("cpu"), torch.float32)
