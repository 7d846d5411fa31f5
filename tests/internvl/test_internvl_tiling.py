"""Dynamic tiling, pinned to hand-computed cases (INTERNVL.md's rules, worked out in comments)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workers.internvl.tiling import (
    candidate_grids,
    normalise,
    normalise_tensor,
    plan_tiles,
    tile_image,
    tile_uint8,
)

pytestmark = pytest.mark.internvl

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def test_candidate_grid_counts():
    # number of (c, r) with c*r <= N is sum_c floor(N/c):
    # N=12: 12+6+4+3+2+2+1+1+1+1+1+1 = 35
    # N=40: 40+20+13+10+8+6+5+5+4+4 + 3*3 (c=11..13) + 2*7 (c=14..20) + 1*20 (c=21..40) = 158
    assert len(candidate_grids(12)) == 35
    assert len(candidate_grids(40)) == 158
    assert candidate_grids(1) == [(1, 1)]
    # 2..4 tiles: 1x2 2x1 1x3 3x1 1x4 4x1 2x2
    assert sorted(candidate_grids(4, 2)) == sorted(
        [(1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (4, 1), (2, 2)]
    )


def test_candidates_sorted_by_tile_count():
    products = [c * r for c, r in candidate_grids(40)]
    assert products == sorted(products)


@pytest.mark.parametrize(
    ("size", "max_tiles", "grid", "tiles"),
    [
        # INTERNVL.md's example: aspect 0.615; 2/3 (diff .051) beats 1/2 (.115) and 3/4 (.135)
        ((800, 1300), 12, (2, 3), 7),
        # aspect 1: 1x1 first; 2x2 ties but 448*448 is not > 0.5*448^2*4
        ((448, 448), 12, (1, 1), 1),
        # 896^2 = 802,816 > 401,408 (2x2) but not > 903,168 (3x3)
        ((896, 896), 12, (2, 2), 5),
        # 1344^2 = 1,806,336 > 903,168 (3x3); at max 40 also > 1,605,632 (4x4),
        # not > 2,508,800 (5x5)
        ((1344, 1344), 12, (3, 3), 10),
        ((1344, 1344), 40, (4, 4), 17),
        # 4K, aspect 1.778. Max 12: best ratio 2.0 (2x1, diff .222); 4x2 ties exactly and
        # 3840*2160 = 8,294,400 > 0.5*448^2*8 = 802,816 -> 4x2. (6x3 is 18 tiles: not a candidate.)
        ((3840, 2160), 12, (4, 2), 9),
        # Max 40: 7/4 = 1.75 (diff .028) beats 5/3, 8/5 and 2; 9/5 would need 45 tiles
        ((3840, 2160), 40, (7, 4), 29),
        # banners and strips go to the longest allowed strip
        ((10000, 50), 12, (12, 1), 13),
        ((10000, 50), 40, (40, 1), 41),
        ((1, 40), 40, (1, 40), 41),
        ((40, 1), 40, (40, 1), 41),
        ((1, 40), 12, (1, 12), 13),
        # tiny square images: every square grid ties with 1x1, none wins on area
        ((1, 1), 12, (1, 1), 1),
        ((10, 10), 40, (1, 1), 1),
        # tiny but exactly 3:2 -> 3x2 is an exact match (strictly closer), area does not matter
        ((30, 20), 12, (3, 2), 7),
        # max 1: only 1x1, whatever the shape
        ((10000, 50), 1, (1, 1), 1),
    ],
)
def test_plan_tiles_hand_computed(size, max_tiles, grid, tiles):
    plan = plan_tiles(*size, max_tiles)
    assert (plan.grid, plan.tiles, plan.visual_tokens) == (grid, tiles, tiles * 256)


def test_tie_between_different_ratios_uses_area():
    # aspect 1.5 at max 2: 1x1 (ratio 1) and 2x1 (ratio 2) are both 0.5 away (exact in binary).
    # 30x20 = 600 is not > 0.5*448^2*2 = 200,704: stays 1x1. 1500x1000 = 1.5M is: 2x1 (+ thumbnail).
    assert plan_tiles(30, 20, 2).grid == (1, 1)
    assert plan_tiles(1500, 1000, 2).tiles == 3


def test_min_tiles_forces_a_grid():
    # 10x10 with 2..4 tiles: 2x2 has the exact ratio 1 -> 4 tiles + thumbnail
    assert plan_tiles(10, 10, 4, min_tiles=2).tiles == 5


def test_800x1300_costs_1792_tokens():
    assert plan_tiles(800, 1300, 12).visual_tokens == 1792


@pytest.mark.parametrize(
    ("w", "h", "mx", "mn"), [(0, 10, 12, 1), (10, 10, 41, 1), (10, 10, 12, 0), (10, 10, 3, 4)]
)
def test_invalid_requests_raise(w, h, mx, mn):
    with pytest.raises(ValueError):
        plan_tiles(w, h, mx, mn)


def _cells_image(cols: int, rows: int) -> Image.Image:
    """Each 448 cell a distinct solid colour, already at grid size (resize is the identity)."""
    image = Image.new("RGB", (448 * cols, 448 * rows))
    for r in range(rows):
        for c in range(cols):
            image.paste(
                (40 * c + 10, 60 * r + 5, 200), (448 * c, 448 * r, 448 * (c + 1), 448 * (r + 1))
            )
    return image


def test_tiles_are_row_major_and_thumbnail_last():
    image = _cells_image(2, 3)  # 896x1344 -> grid 2x3 exactly
    plan, tiles = tile_uint8(image, 12)
    assert plan.grid == (2, 3) and tiles.shape == (7, 448, 448, 3) and tiles.dtype == np.uint8
    for k in range(6):
        r, c = divmod(k, 2)  # left to right, then top to bottom
        assert tuple(tiles[k, 200, 200]) == (40 * c + 10, 60 * r + 5, 200)
    thumb = np.asarray(image.resize((448, 448), Image.Resampling.BICUBIC))
    assert np.array_equal(tiles[6], thumb)


def test_grid_crops_come_from_a_bicubic_resize():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (1300, 800, 3), dtype=np.uint8))
    _, tiles = tile_uint8(image, 12)
    resized = image.resize((896, 1344), Image.Resampling.BICUBIC)
    assert np.array_equal(tiles[3], np.asarray(resized.crop((448, 448, 896, 896))))  # row 1, col 1


def test_single_tile_has_no_thumbnail():
    plan, pixels = tile_image(Image.new("RGB", (448, 448), "white"), 12)
    assert plan.tiles == 1 and pixels.shape == (1, 3, 448, 448)


def test_imagenet_normalisation():
    _, pixels = tile_image(Image.new("RGB", (448, 448), "white"), 1)
    assert pixels.dtype == np.float32
    assert np.allclose(pixels[0, :, 0, 0], (1 - MEAN) / STD)
    _, pixels = tile_image(Image.new("L", (448, 448), 0), 1)  # grey input becomes RGB
    assert np.allclose(pixels[0, :, 5, 5], -MEAN / STD)


def test_device_normalisation_matches_cpu():
    import torch

    _, tiles = tile_uint8(
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (500, 900, 3), dtype=np.uint8)), 6
    )
    on_cpu = normalise(tiles)
    on_device = normalise_tensor(torch.from_numpy(tiles), torch.float32).numpy()
    assert np.array_equal(on_cpu, on_device)


def test_the_resolution_a_page_is_read_at_is_its_tile_grid_and_a_low_one_is_a_warning() -> None:
    from workers.internvl.pages import LOW_SCALE, recognition_of

    letter = plan_tiles(1700, 2200, max_tiles=12)  # 3x4 grid: 1344x1792
    assert recognition_of(letter) == {"width": 1344, "height": 1792, "scale": round(1344 / 1700, 3),
                                      "tiles": letter.tiles}
    statement = plan_tiles(1700, 10000, max_tiles=12)  # a long statement on a 12-tile budget
    assert recognition_of(statement)["scale"] < LOW_SCALE
