"""Image features as InternVL 1.5 computes them: vision tower, pixel shuffle (v1 or v2), projector.

transformers' `InternVLModel.get_image_features` always applies pixel shuffle v2.
The V1-5 release's model code, config class and training script default to v1
(`ps_version` in the original config.json; INTERNVL.md), which skips v2's last
swap of the two spatial axes, so each tile's 16 x 16 grid of visual tokens comes
out transposed relative to v2; the channels within a token are the same. The
projector (`mlp1`) works token by token, so transposing each tile's grid of
projected v2 features gives the v1 features exactly: the same numbers, reordered.
vLLM and LMDeploy honour `ps_version` the same way.
"""

from __future__ import annotations

import math

import torch

PS_VERSIONS = ("v1", "v2")


def ps_version(config) -> str:
    """The checkpoint's pixel shuffle version; ValueError when it is missing or unknown.

    `tessera model convert` copies it from the original config.json (default v1, as the
    V1-5 config class has it); a checkpoint converted without it cannot be trusted.
    """
    version = getattr(config, "ps_version", None)
    if version not in PS_VERSIONS:
        raise ValueError(
            f"config.json has ps_version {version!r}, expected one of {PS_VERSIONS} "
            "(convert the original checkpoint again with `tessera model convert`)"
        )
    return version


def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(tiles, 3, 448, 448) normalised pixels -> (tiles, 256, LLM hidden) projected features."""
    config = model.config
    out = model.model.get_image_features(
        pixel_values=pixel_values,
        vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
    )
    features = getattr(out, "pooler_output", out)  # transformers 5.x returns an output object
    return transpose_token_grids(features) if ps_version(config) == "v1" else features


def transpose_token_grids(features: torch.Tensor) -> torch.Tensor:
    """(tiles, side * side, hidden) -> the same with each tile's side x side grid transposed."""
    tiles, tokens, hidden = features.shape
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"{tokens} visual tokens per tile is not a square grid")
    grids = features.reshape(tiles, side, side, hidden)
    return grids.transpose(1, 2).reshape(tiles, tokens, hidden)
