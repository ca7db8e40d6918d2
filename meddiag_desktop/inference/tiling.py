"""Large-tile inference for fully convolutional models: fewer model calls, same answer.

A 64^3 sliding window with 50% overlap computes every voxel about 8 times, and each window's
borders are computed without context. A fully convolutional model (its card says so, see
``models/README.md``) gives the same output for a voxel whatever the input's size, provided

* every side of the input is a multiple of ``tile_multiple`` (its pooling factor) and the tile
  starts on that grid, so the pooling windows line up with those of the whole volume, and
* the voxel lies at least ``tile_margin`` voxels (its receptive-field radius) inside the tile,
  so the zero padding at the tile's border cannot reach it.

So the volume is covered with as few tiles as the working-memory budget allows, overlapping
by at least twice the margin. In each overlap the two tiles' outputs agree; they are blended
with complementary linear ramps over the part both can be trusted on (a partition of unity,
so no weight map and no division are needed), which also hides any seam a card's stated
margin might understate. The result equals running the model on the whole volume at once,
within float rounding. Progress is yielded after each tile.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Progress
from meddiag_desktop.inference.sliding_window import CancelToken, RunBatch


@dataclass(frozen=True)
class AxisTiles:
    """Tiles along one axis of the (padded) volume: all the same size, starts on the grid."""

    starts: tuple[int, ...]
    size: int


@dataclass(frozen=True)
class TilePlan:
    padded_zyx: tuple[int, int, int]  # the volume rounded up to multiples of the tile multiple
    axes: tuple[AxisTiles, AxisTiles, AxisTiles]
    margin: int

    @property
    def tile_zyx(self) -> tuple[int, int, int]:
        z, y, x = self.axes
        return (z.size, y.size, x.size)

    @property
    def count(self) -> int:
        return math.prod(len(axis.starts) for axis in self.axes)

    @property
    def voxels_computed(self) -> int:
        return self.count * math.prod(self.tile_zyx)

    def describe(self) -> str:
        return (
            f"{self.count} tile(s) of {self.tile_zyx} over {self.padded_zyx}, margin {self.margin}"
        )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def axis_tiles(size: int, count: int, margin: int, multiple: int) -> AxisTiles | None:
    """``count`` equal tiles over [0, size) overlapping by >= 2 * margin; None if impossible.

    ``size`` must be a multiple of ``multiple``; tile sizes and starts are multiples of it.
    """
    if count == 1:
        return AxisTiles((0,), size)
    tile = _round_up(-(-(size + (count - 1) * 2 * margin) // count), multiple)
    if tile >= size or tile - 2 * margin < multiple:
        return None
    room = size - tile
    starts = [multiple * round(i * room / (count - 1) / multiple) for i in range(count)]
    if any(b - a > tile - 2 * margin or b <= a for a, b in itertools.pairwise(starts)):
        return None
    return AxisTiles(tuple(starts), tile)


def plan_tiles(
    shape_zyx: tuple[int, ...],
    max_tile_zyx: tuple[int, int, int],
    margin: int,
    multiple: int,
    max_voxels: int | None,
    min_size_zyx: tuple[int, int, int] = (1, 1, 1),
) -> TilePlan | None:
    """The tiling that computes the fewest voxels in tiles of at most ``max_voxels``.

    The volume is padded (at the far ends, with its background) to multiples of ``multiple``
    and to at least ``min_size_zyx`` (the patch the model was trained on: a smaller volume is
    seen as in training, surrounded by background). Every (count_z, count_y, count_x) is tried
    (a few thousand cheap candidates); ties go to fewer tiles. None when no tiling fits the
    limits (the caller falls back to windows).
    """
    padded = tuple(
        _round_up(max(s, m, 1), multiple) for s, m in zip(shape_zyx, min_size_zyx, strict=True)
    )
    options: list[list[AxisTiles]] = []
    for size, limit in zip(padded, max_tile_zyx, strict=True):
        choices = []
        for count in range(1, size // max(multiple, 1) + 1):
            tiles = axis_tiles(size, count, margin, multiple)
            if tiles is None or tiles.size > limit:
                continue
            choices.append(tiles)
            if tiles.size - 2 * margin <= 2 * multiple:
                break  # smaller tiles would be mostly margin
        if not choices:
            return None
        options.append(choices)
    best: tuple[int, int] | None = None
    chosen = None
    for combination in itertools.product(*options):
        voxels = math.prod(axis.size for axis in combination)
        if max_voxels is not None and voxels > max_voxels:
            continue
        count = math.prod(len(axis.starts) for axis in combination)
        key = (count * voxels, count)
        if best is None or key < best:
            best, chosen = key, combination
    if chosen is None:
        return None
    return TilePlan(padded, (chosen[0], chosen[1], chosen[2]), margin)  # type: ignore[arg-type]


def blend_profile(axis: AxisTiles, index: int, margin: int) -> np.ndarray:
    """Tile ``index``'s weights along one axis: 1 in its own part, linear ramps in the overlaps.

    Each ramp spans the part of an overlap that lies ``margin`` inside both tiles, and the two
    tiles' ramps add up to 1 there, so the weights of all tiles sum to 1 everywhere.
    """
    weights = np.ones(axis.size, dtype=np.float32)
    start = axis.starts[index]
    positions = np.arange(start, start + axis.size, dtype=np.float64) + 0.5
    if index > 0:  # overlap with the tile before: rise from 0 to 1
        weights *= _rise(positions, start + margin, axis.starts[index - 1] + axis.size - margin)
    if index < len(axis.starts) - 1:  # overlap with the tile after: the complement of its rise
        after = axis.starts[index + 1]
        weights *= 1.0 - _rise(positions, after + margin, start + axis.size - margin)
    return weights


def _rise(positions: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 before ``low``, 1 after ``high``, linear between (a step at ``low`` if they meet)."""
    ramp = (positions - low) / max(high - low, 1e-6)
    return np.clip(ramp, 0.0, 1.0).astype(np.float32)


def tiled_inference(
    array_zyx: np.ndarray,
    run_batch: RunBatch,
    channels: int,
    plan: TilePlan,
    cancel: CancelToken | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> Generator[Progress, None, np.ndarray]:
    """(C, z, y, x) float32 output of a fully convolutional model, one tile per model call."""
    shape = array_zyx.shape
    scores = np.zeros((channels, *shape), dtype=np.float32)
    tile = plan.tile_zyx
    fill = float(array_zyx.min())
    buffer = np.empty((1, 1, *tile), dtype=np.float32)
    corners = list(itertools.product(*(range(len(axis.starts)) for axis in plan.axes)))
    start_fraction, end_fraction = progress_span
    for done, indices in enumerate(corners, start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        origin = [axis.starts[i] for axis, i in zip(plan.axes, indices, strict=True)]
        # The part of the tile inside the volume (tiles at the far end may reach into padding).
        inside = tuple(slice(o, min(o + t, s)) for o, t, s in zip(origin, tile, shape, strict=True))
        local = tuple(slice(0, r.stop - r.start) for r in inside)
        if any(r.stop - r.start < t for r, t in zip(inside, tile, strict=True)):
            buffer.fill(fill)
        buffer[0, 0][local] = array_zyx[inside]
        output = run_batch(buffer)
        if output.shape != (1, channels, *tile):
            raise ValueError(
                f"the model returned shape {output.shape[1:]} for a tile of {tile}, expected "
                f"({channels}, {', '.join(map(str, tile))}): it is not fully convolutional as "
                "its card says"
            )
        result = output[0] if output.flags.writeable else output[0].copy()
        if plan.count > 1:
            profiles = [
                blend_profile(axis, i, plan.margin)
                for axis, i in zip(plan.axes, indices, strict=True)
            ]
            for axis, profile in enumerate(profiles):
                if not np.all(profile == 1.0):
                    shape_1d = [1, 1, 1, 1]
                    shape_1d[axis + 1] = profile.size
                    result *= profile.reshape(shape_1d)
            scores[(slice(None), *inside)] += result[(slice(None), *local)]
        else:
            scores[(slice(None), *inside)] = result[(slice(None), *local)]
        del output, result
        fraction = start_fraction + (end_fraction - start_fraction) * done / len(corners)
        yield Progress(fraction, "running model", f"tile {done} of {len(corners)}")
    return scores
