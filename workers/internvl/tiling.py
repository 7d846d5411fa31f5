"""InternVL 1.5 dynamic high-resolution tiling (the heart of the paper).

A page is cut into a grid of 448x448 tiles whose cols/rows ratio is the closest
to the page's aspect ratio, plus one whole-page thumbnail when there is more than
one tile. The grid choice must match the reference preprocessing bit for bit:
the model was trained on exactly these crops, and every tile costs 256 visual
tokens, so a different grid changes both the answer and the bill.

`plan_tiles` decides the grid from the size alone (no pixels: the CLI and the
scheduler use it to predict cost); `tile_image` produces the normalised tiles,
`tile_uint8` the same tiles as bytes for normalising on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

TILE_SIZE = 448
TOKENS_PER_TILE = 256
MAX_TILES_LIMIT = 40  # 40 tiles = the paper's 4K test-time setting
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TilePlan:
    """The grid chosen for one image and what it costs."""

    width: int
    height: int
    grid: tuple[int, int]  # (cols, rows)
    tiles: int  # grid tiles + thumbnail when there is more than one
    visual_tokens: int

    @property
    def has_thumbnail(self) -> bool:
        return self.tiles > self.grid[0] * self.grid[1]

    def to_json(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "grid": list(self.grid),
            "tiles": self.tiles,
            "visual_tokens": self.visual_tokens,
        }


def candidate_grids(max_tiles: int, min_tiles: int = 1) -> list[tuple[int, int]]:
    """Every (cols, rows) with min <= cols*rows <= max, sorted by tile count.

    Built as a set and sorted stably by product, like the reference code, so the
    order among grids with the same tile count is the reference's order too.
    """
    _check_limits(max_tiles, min_tiles)
    grids = {
        (cols, rows)
        for n in range(min_tiles, max_tiles + 1)
        for cols in range(1, n + 1)
        for rows in range(1, n + 1)
        if min_tiles <= cols * rows <= max_tiles
    }
    return sorted(grids, key=lambda grid: grid[0] * grid[1])


def closest_grid(width: int, height: int, grids: list[tuple[int, int]]) -> tuple[int, int]:
    """The grid whose cols/rows is closest to width/height.

    On an exact (float) tie a later, larger grid wins only when the image has
    more than half the pixels that grid would show: a small image is not blown
    up into many tiles just because a bigger grid has the same shape.
    """
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * TILE_SIZE * TILE_SIZE * cols * rows:
            best = (cols, rows)
    return best


def plan_tiles(width: int, height: int, max_tiles: int, min_tiles: int = 1) -> TilePlan:
    """Grid, tile count (thumbnail included) and visual tokens for an image size."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    grid = closest_grid(width, height, candidate_grids(max_tiles, min_tiles))
    count = grid[0] * grid[1]
    tiles = count + 1 if count > 1 else count
    return TilePlan(width, height, grid, tiles, tiles * TOKENS_PER_TILE)


def tile_image(
    image: Image.Image, max_tiles: int, min_tiles: int = 1
) -> tuple[TilePlan, np.ndarray]:
    """Model input for one image: float32 (tiles, 3, 448, 448), ImageNet-normalised."""
    plan, tiles = tile_uint8(image, max_tiles, min_tiles)
    return plan, normalise(tiles)


def tile_uint8(
    image: Image.Image, max_tiles: int, min_tiles: int = 1
) -> tuple[TilePlan, np.ndarray]:
    """The tiles as RGB bytes, (tiles, 448, 448, 3) uint8: row-major grid crops, thumbnail last.

    The engine ships these to the GPU and normalises there (`normalise_tensor`):
    4x less to copy and no float work on the CPU while the GPU waits.
    """
    image = image.convert("RGB")
    plan = plan_tiles(image.width, image.height, max_tiles, min_tiles)
    crops = grid_crops(image, plan.grid)
    if plan.has_thumbnail:
        crops.append(image.resize((TILE_SIZE, TILE_SIZE), Image.Resampling.BICUBIC))
    return plan, np.stack([np.asarray(crop, dtype=np.uint8) for crop in crops])


def grid_crops(image: Image.Image, grid: tuple[int, int]) -> list[Image.Image]:
    """Resize to (448*cols, 448*rows) and crop 448x448 tiles left to right, top to bottom."""
    cols, rows = grid
    resized = image.resize((TILE_SIZE * cols, TILE_SIZE * rows), Image.Resampling.BICUBIC)
    return [
        resized.crop((c * TILE_SIZE, r * TILE_SIZE, (c + 1) * TILE_SIZE, (r + 1) * TILE_SIZE))
        for r in range(rows)
        for c in range(cols)
    ]


def normalise(tiles: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, 3) -> float32 (n, 3, H, W): x/255, minus mean, over std (torchvision)."""
    pixels = tiles.astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(0, 3, 1, 2))


def normalise_tensor(tiles, dtype):
    """`normalise` for a torch uint8 (n, H, W, 3) tensor on any device; float32, then `dtype`."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=tiles.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=tiles.device)
    pixels = (tiles.to(torch.float32) / 255.0 - mean) / std
    return pixels.permute(0, 3, 1, 2).contiguous().to(dtype)


def _check_limits(max_tiles: int, min_tiles: int) -> None:
    if not 1 <= min_tiles <= max_tiles <= MAX_TILES_LIMIT:
        raise ValueError(
            f"need 1 <= min_tiles ({min_tiles}) <= max_tiles ({max_tiles}) <= {MAX_TILES_LIMIT}"
        )
