"""Put a Volume into the space a model expects, and bring its output back to the scan's grid.

The model space is described by the card: orientation (axis codes), voxel spacing and, for
fixed-shape models, the array shape (centre pad/crop). Everything is done with SimpleITK on
physical geometry, so mapping back is a resampling onto the original grid whatever was done.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import Volume
from meddiag_desktop.inference.card import InputMode, ModelCard, NormalizationMethod
from meddiag_desktop.scans.file_formats import image_from_volume


@dataclass(frozen=True)
class Grid:
    """A voxel grid's geometry, without its voxels (SimpleITK conventions: x, y, z order)."""

    size_xyz: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major; columns are the index axes

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        size = image.GetSize()
        spacing = image.GetSpacing()
        origin = image.GetOrigin()
        return cls(
            (int(size[0]), int(size[1]), int(size[2])),
            (float(spacing[0]), float(spacing[1]), float(spacing[2])),
            (float(origin[0]), float(origin[1]), float(origin[2])),
            tuple(float(v) for v in image.GetDirection()),
        )

    @classmethod
    def of_volume(cls, volume: Volume) -> Grid:
        z, y, x = volume.shape_zyx
        return cls(
            (int(x), int(y), int(z)),
            tuple(float(v) for v in volume.spacing_xyz_mm),  # type: ignore[arg-type]
            tuple(float(v) for v in volume.origin_lps_mm),  # type: ignore[arg-type]
            tuple(float(v) for v in volume.direction_lps),
        )

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return (self.size_xyz[2], self.size_xyz[1], self.size_xyz[0])

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def slab(self, first: int, stop: int) -> Grid:
        """Slices [first, stop) along the array's first axis (index z)."""
        offset = self.matrix @ (np.asarray(self.spacing_xyz) * np.array([0.0, 0.0, first]))
        origin = np.asarray(self.origin) + offset
        return Grid(
            (self.size_xyz[0], self.size_xyz[1], stop - first),
            self.spacing_xyz,
            (float(origin[0]), float(origin[1]), float(origin[2])),
            self.direction,
        )

    def same_as(self, other: Grid) -> bool:
        return (
            self.size_xyz == other.size_xyz
            and np.allclose(self.spacing_xyz, other.spacing_xyz, atol=1e-6)
            and np.allclose(self.origin, other.origin, atol=1e-4)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing_xyz)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


class Geometry(Protocol):
    """The grids of a model run (a ModelInput or an InferencePlan): enough to map back."""

    @property
    def model_grid(self) -> Grid: ...
    @property
    def original_grid(self) -> Grid: ...
    @property
    def crop_pad(self) -> tuple[tuple[int, int], ...]: ...
    @property
    def unpadded_shape_zyx(self) -> tuple[int, int, int]: ...
    @property
    def same_grid(self) -> bool: ...


@dataclass(frozen=True, eq=False)
class ModelInput:
    """The normalised array in model space, and the grids needed to map results back.

    Only geometry is kept besides the array: no copy of the scan stays alive during the run.
    """

    array_zyx: np.ndarray  # float32, normalised, model orientation/spacing/shape
    model_grid: Grid  # geometry of array_zyx before any pad/crop
    original_grid: Grid  # the scan's own geometry
    crop_pad: tuple[tuple[int, int], ...]  # per axis (z, y, x): (pad before, crop before)
    unpadded_shape_zyx: tuple[int, int, int]
    same_grid: bool  # model space == scan grid: no resampling needed on the way back


@dataclass(frozen=True)
class _Reorientation:
    """How DICOMOrient permutes and flips the index axes: new axis j = old axis perm[j]."""

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]

    @property
    def identity(self) -> bool:
        return self.perm == (0, 1, 2) and not any(self.flip)

    def apply(self, grid: Grid) -> Grid:
        direction = grid.matrix
        corner = [
            (grid.size_xyz[old] - 1) if self.flip[new] else 0 for new, old in enumerate(self.perm)
        ]
        source_index = np.zeros(3)
        for new, old in enumerate(self.perm):
            source_index[old] = corner[new]
        origin = np.asarray(grid.origin) + direction @ (np.asarray(grid.spacing_xyz) * source_index)
        columns = [
            direction[:, old] * (-1.0 if self.flip[new] else 1.0)
            for new, old in enumerate(self.perm)
        ]
        return Grid(
            tuple(grid.size_xyz[old] for old in self.perm),  # type: ignore[arg-type]
            tuple(grid.spacing_xyz[old] for old in self.perm),  # type: ignore[arg-type]
            (float(origin[0]), float(origin[1]), float(origin[2])),
            tuple(float(v) for v in np.stack(columns, axis=1).ravel()),
        )

    def apply_to_array(self, array_zyx: np.ndarray) -> np.ndarray:
        """The same reorientation on a (z, y, x) array: a view, no copy."""
        axes = [2 - self.perm[2 - a] for a in range(3)]
        view = np.transpose(array_zyx, axes)
        flips = tuple(slice(None, None, -1) if self.flip[2 - a] else slice(None) for a in range(3))
        return view[flips]


def _reorientation(grid: Grid, orientation: str) -> _Reorientation:
    """Ask SimpleITK's DICOMOrient (on a 2-voxel stand-in) which axes it swaps and flips."""
    proxy = sitk.Image([2, 2, 2], sitk.sitkUInt8)
    proxy.SetDirection(grid.direction)
    oriented = sitk.DICOMOrient(proxy, orientation)
    relation = grid.matrix.T @ np.asarray(oriented.GetDirection(), dtype=float).reshape(3, 3)
    perm = tuple(int(np.argmax(np.abs(relation[:, new]))) for new in range(3))
    flip = tuple(bool(relation[perm[new], new] < 0) for new in range(3))
    return _Reorientation(perm, flip)  # type: ignore[arg-type]


def _respaced(grid: Grid, spacing: tuple[float, float, float]) -> Grid:
    """The grid covering the same box at another spacing (cell edges kept)."""
    old_size = np.asarray(grid.size_xyz, dtype=float)
    old_spacing = np.asarray(grid.spacing_xyz, dtype=float)
    new_spacing = np.asarray(spacing, dtype=float)
    if np.allclose(old_spacing, new_spacing, rtol=1e-4):
        return grid
    new_size = np.maximum(1, np.round(old_size * old_spacing / new_spacing)).astype(int)
    # Keep the physical centre of the first voxel's cell edge: the new grid covers the same box.
    origin = np.asarray(grid.origin) + grid.matrix @ ((new_spacing - old_spacing) / 2.0)
    return Grid(
        (int(new_size[0]), int(new_size[1]), int(new_size[2])),
        (float(new_spacing[0]), float(new_spacing[1]), float(new_spacing[2])),
        (float(origin[0]), float(origin[1]), float(origin[2])),
        grid.direction,
    )


def resample(image: sitk.Image, grid: Grid, fill: float = 0.0) -> sitk.Image:
    """Linear resampling of ``image`` onto ``grid``, float32 out (whatever the input type)."""
    return sitk.Resample(
        image,
        list(grid.size_xyz),
        sitk.Transform(),
        sitk.sitkLinear,
        list(grid.origin),
        list(grid.spacing_xyz),
        list(grid.direction),
        fill,
        sitk.sitkFloat32,
    )


def model_geometry(volume: Volume, card: ModelCard) -> tuple[_Reorientation, Grid, bool]:
    """The model's grid for this scan (orientation, then spacing): the axes turned, the grid,
    and whether reaching it needs interpolation (not when only axes are swapped/flipped)."""
    spec = card.input
    original = Grid.of_volume(volume)
    grid = original
    turn = _Reorientation((0, 1, 2), (False, False, False))
    if spec.orientation:
        turn = _reorientation(original, spec.orientation)
        grid = turn.apply(original)
    oriented = grid
    if spec.target_spacing_xyz_mm is not None:
        grid = _respaced(grid, spec.target_spacing_xyz_mm)
    return turn, grid, grid is not oriented


def model_array(volume: Volume, turn: _Reorientation, grid: Grid, resampled: bool) -> np.ndarray:
    """The scan on the model's grid, float32: straight from its stored integers, in one step
    (orientation and spacing in one resampling), never cast to float32 at full size first."""
    if not resampled:  # only axes swapped/flipped: exact, no interpolation
        return np.ascontiguousarray(turn.apply_to_array(volume.array_zyx), dtype=np.float32)
    source = image_from_volume(volume)
    model_image = resample(source, grid, float(np.min(volume.array_zyx)))
    del source
    array = sitk.GetArrayFromImage(model_image)
    del model_image
    return array


def prepare(volume: Volume, card: ModelCard) -> ModelInput:
    """Orientation, spacing, pad/crop and normalisation, with one float32 copy in model space.

    The pipeline goes through :class:`~meddiag_desktop.inference.plan.InferencePlan`, which
    does the same in two halves (the geometry first, then the pixels).
    """
    spec = card.input
    original = Grid.of_volume(volume)
    turn, grid, resampled = model_geometry(volume, card)
    array = model_array(volume, turn, grid, resampled)
    same_grid = grid.same_as(original)
    unpadded = (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
    offsets: tuple[tuple[int, int], ...] = ((0, 0), (0, 0), (0, 0))
    if spec.mode is InputMode.WHOLE_VOLUME and spec.shape_zyx is not None:
        array, offsets = _centre_pad_crop(array, spec.shape_zyx, float(array.min()))
        same_grid = same_grid and array.shape == unpadded
    normalised = normalise(array, card)
    return ModelInput(normalised, grid, original, offsets, unpadded, same_grid)


def _centre_pad_crop(
    array: np.ndarray, shape: tuple[int, int, int], fill: float
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    out = np.full(shape, fill, dtype=np.float32)
    offsets = []
    src_slices, dst_slices = [], []
    for size, target in zip(array.shape, shape, strict=True):
        if size <= target:
            before = (target - size) // 2
            offsets.append((before, 0))
            src_slices.append(slice(0, size))
            dst_slices.append(slice(before, before + size))
        else:
            start = (size - target) // 2
            offsets.append((0, start))
            src_slices.append(slice(start, start + target))
            dst_slices.append(slice(0, target))
    out[tuple(dst_slices)] = array[tuple(src_slices)]
    return out, tuple(offsets)


def undo_pad_crop(channel_zyx: np.ndarray, model_input: Geometry) -> np.ndarray:
    """One output channel back to the un-padded model grid (cropped-away parts are 0)."""
    if channel_zyx.shape == model_input.unpadded_shape_zyx and all(
        o == (0, 0) for o in model_input.crop_pad
    ):
        return channel_zyx
    out = np.zeros(model_input.unpadded_shape_zyx, dtype=np.float32)
    src, dst = [], []
    for (pad, crop), full, size in zip(
        model_input.crop_pad, model_input.unpadded_shape_zyx, channel_zyx.shape, strict=True
    ):
        if full > size:  # cropped (a crop of 1 voxel starts at 0: decide by the sizes)
            src.append(slice(0, size))
            dst.append(slice(crop, crop + size))
        else:
            src.append(slice(pad, pad + full))
            dst.append(slice(0, full))
    out[tuple(dst)] = channel_zyx[tuple(src)]
    return out


def model_space_image(channel_zyx: np.ndarray, model_input: Geometry) -> sitk.Image:
    """One output channel as a SimpleITK image on the model's grid (pad/crop undone)."""
    image = sitk.GetImageFromArray(
        np.ascontiguousarray(undo_pad_crop(channel_zyx, model_input), np.float32)
    )
    return model_input.model_grid.apply_to(image)


def model_channel(channel_zyx: np.ndarray, model_input: Geometry) -> sitk.Image | np.ndarray:
    """One output channel, ready for :func:`slab_on_original_grid`.

    The model's grid is the scan's with axes swapped/flipped and another spacing, so mapping
    back is separable: an array is returned and interpolated one axis at a time (about twice
    as fast as SimpleITK's general resampler, the same values). Otherwise a SimpleITK image.
    """
    if model_input.same_grid or _axis_map(model_input.model_grid, model_input.original_grid):
        return np.asarray(undo_pad_crop(channel_zyx, model_input), dtype=np.float32)
    return model_space_image(channel_zyx, model_input)


def original_slabs(model_input: Geometry, max_voxels: int = 1 << 19) -> list[tuple[int, int]]:
    """[first, stop) slice ranges of the scan's grid, each at most ``max_voxels``."""
    depth, rows, columns = model_input.original_grid.shape_zyx
    step = max(1, max_voxels // max(1, rows * columns))
    return [(first, min(first + step, depth)) for first in range(0, depth, step)]


def slab_on_original_grid(
    channel: sitk.Image | np.ndarray, model_input: Geometry, first: int, stop: int
) -> np.ndarray:
    """Slices [first, stop) of one channel on the scan's grid (linear), float32.

    ``channel`` is :func:`model_channel`'s (or :func:`model_space_image`'s) result. Resampling
    slab by slab gives the same values as resampling the whole volume, without a float32 copy
    of the whole scan.
    """
    if model_input.same_grid:
        assert isinstance(channel, np.ndarray)
        return undo_pad_crop(channel, model_input)[first:stop].astype(np.float32, copy=False)
    if isinstance(channel, np.ndarray):
        axes = _axis_map(model_input.model_grid, model_input.original_grid)
        assert axes is not None
        return _separable_slab(channel, axes, first, stop)
    slab = resample(channel, model_input.original_grid.slab(first, stop))
    return sitk.GetArrayFromImage(slab)


@dataclass(frozen=True)
class _AxisMap:
    """Scan axis -> model axis (SimpleITK order) and the affine map between their indices."""

    model_axis: int
    scale: float  # model continuous index = offset + scale * scan index
    offset: float
    model_size: int
    scan_size: int

    def weights(
        self, first: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Like ITK's linear interpolator: neighbours clamped at the edges, 0 outside the
        model's buffer (beyond half a voxel from the outer voxel centres)."""
        position = self.offset + self.scale * np.arange(first, stop, dtype=np.float64)
        inside = (position >= -0.5) & (position < self.model_size - 0.5)
        clamped = np.clip(position, 0.0, self.model_size - 1)
        low = np.minimum(np.floor(clamped).astype(np.intp), self.model_size - 1)
        high = np.minimum(low + 1, self.model_size - 1)
        return low, high, (clamped - low).astype(np.float32), inside


@functools.lru_cache(maxsize=8)
def _axis_map(model: Grid, scan: Grid) -> tuple[_AxisMap, _AxisMap, _AxisMap] | None:
    """Per scan axis (x, y, z), when each scan axis runs along exactly one model axis."""
    relation = model.matrix.T @ scan.matrix
    permutation = np.round(relation)
    if np.abs(relation - permutation).max() > 1e-6 or not np.array_equal(
        np.abs(permutation).sum(axis=0), np.ones(3)
    ):
        return None
    shift = model.matrix.T @ (np.asarray(scan.origin) - np.asarray(model.origin))
    maps = []
    for axis in range(3):
        model_axis = int(np.argmax(np.abs(permutation[:, axis])))
        step = model.spacing_xyz[model_axis]
        maps.append(
            _AxisMap(
                model_axis,
                float(permutation[model_axis, axis] * scan.spacing_xyz[axis] / step),
                float(shift[model_axis] / step),
                model.size_xyz[model_axis],
                scan.size_xyz[axis],
            )
        )
    return (maps[0], maps[1], maps[2])


def _separable_slab(
    model_zyx: np.ndarray, axes: tuple[_AxisMap, _AxisMap, _AxisMap], first: int, stop: int
) -> np.ndarray:
    """Trilinear interpolation of scan slices [first, stop), one axis at a time (z, y, x)."""
    x_map, y_map, _ = axes
    return separable_box(
        model_zyx, axes, ((first, stop), (0, y_map.scan_size), (0, x_map.scan_size))
    )


Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # [start, stop) per axis z, y, x


def separable_box(
    model_zyx: np.ndarray, axes: tuple[_AxisMap, _AxisMap, _AxisMap], box: Box
) -> np.ndarray:
    """Trilinear interpolation of the scan's voxels in ``box``, one axis at a time (z, y, x).

    Every voxel gets exactly the value that interpolating the whole scan gives it (the same
    operations on the same numbers): only the model voxels the box needs are read.
    """
    x_map, y_map, z_map = axes
    # The model array with its axes in the scan's (z, y, x) order (a view).
    view = np.transpose(
        model_zyx, [2 - z_map.model_axis, 2 - y_map.model_axis, 2 - x_map.model_axis]
    )
    (z0, z1), (y0, y1), (x0, x1) = box
    later = []
    crop = [slice(None)]
    for axis, mapping, first, stop in ((1, y_map, y0, y1), (2, x_map, x0, x1)):
        low, high, weight, inside = mapping.weights(first, stop)
        start = int(min(low.min(), high.min())) if low.size else 0
        end = int(max(low.max(), high.max())) + 1 if low.size else 0
        crop.append(slice(start, end))
        later.append((axis, low - start, high - start, weight, inside))
    view = view[tuple(crop)]
    low, high, weight, inside = z_map.weights(z0, z1)
    out = view[low] * (1.0 - weight)[:, None, None]
    out += view[high] * weight[:, None, None]
    out[~inside] = 0.0
    for axis, low, high, weight, inside in later:
        shape = [1, 1, 1]
        shape[axis] = weight.size
        base = np.take(out, low, axis=axis)
        upper = np.take(out, high, axis=axis)
        upper -= base
        upper *= weight.reshape(shape)
        base += upper
        base[(slice(None),) * axis + (~inside,)] = 0.0
        out = base
    return out


def scan_range(mapping: _AxisMap, start: int, stop: int) -> tuple[int, int]:
    """The scan indices along one axis whose interpolation reads model voxels [start, stop)."""
    low, high, _, inside = mapping.weights(0, mapping.scan_size)
    reads = inside & (np.maximum(low, high) >= start) & (np.minimum(low, high) < stop)
    hits = np.flatnonzero(reads)
    if hits.size == 0:
        return (0, 0)
    return (int(hits[0]), int(hits[-1]) + 1)


def to_original_grid(channel_zyx: np.ndarray, model_input: Geometry) -> np.ndarray:
    """Resample one float channel from model space onto the scan's own grid (linear)."""
    channel = undo_pad_crop(channel_zyx, model_input)
    if model_input.same_grid:
        return channel.astype(np.float32, copy=False)
    back = resample(model_space_image(channel_zyx, model_input), model_input.original_grid)
    return sitk.GetArrayFromImage(back)


def normalise(array: np.ndarray, card: ModelCard) -> np.ndarray:
    """Intensity normalisation named by the card, in place on a float32 array."""
    norm = card.input.normalization
    out = array.astype(np.float32, copy=False)
    if norm.method is NormalizationMethod.CT_WINDOW:
        low, high = norm.window
        np.clip(out, low, high, out=out)
        out -= low
        out /= high - low
    elif norm.method is NormalizationMethod.ZSCORE:
        mean, std = float(out.mean()), float(out.std())
        out -= mean
        out /= std if std > 0 else 1.0
    elif norm.method is NormalizationMethod.MINMAX:
        low, high = float(out.min()), float(out.max())
        out -= low
        out /= (high - low) if high > low else 1.0
    elif norm.method is NormalizationMethod.PERCENTILE:
        low, high = (float(v) for v in np.percentile(out, norm.percentiles))
        np.clip(out, low, high, out=out)
        out -= low
        out /= (high - low) if high > low else 1.0
    return out
