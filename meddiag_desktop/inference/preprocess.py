"""Put a Volume into the space a model expects, and bring its output back to the scan's grid.

The model space is described by the card: orientation (axis codes), voxel spacing and, for
fixed-shape models, the array shape (centre pad/crop). Everything is done with SimpleITK on
physical geometry, so mapping back is a resampling onto the original grid whatever was done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import Volume
from meddiag_desktop.inference.card import InputMode, ModelCard, NormalizationMethod
from meddiag_desktop.scans.file_formats import image_from_volume


@dataclass(frozen=True, eq=False)
class ModelInput:
    """The normalised array in model space, and the grids needed to map results back."""

    array_zyx: np.ndarray  # float32, normalised, model orientation/spacing/shape
    model_grid: sitk.Image  # geometry of array_zyx before any pad/crop (one float voxel type)
    original_grid: sitk.Image  # the scan's own geometry
    crop_pad: tuple[tuple[int, int], ...]  # per axis (z, y, x): (pad before, crop before)
    unpadded_shape_zyx: tuple[int, int, int]
    same_grid: bool  # model space == scan grid: no resampling needed on the way back


def prepare(volume: Volume, card: ModelCard) -> ModelInput:
    spec = card.input
    original = image_from_volume(volume)
    image = sitk.Cast(original, sitk.sitkFloat32)
    if spec.orientation:
        image = sitk.DICOMOrient(image, spec.orientation)
    if spec.target_spacing_xyz_mm is not None:
        image = _resample_to_spacing(
            image, spec.target_spacing_xyz_mm, float(np.min(volume.array_zyx))
        )
    array = sitk.GetArrayFromImage(image)
    same_grid = _same_geometry(image, original)
    unpadded = (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
    offsets: tuple[tuple[int, int], ...] = ((0, 0), (0, 0), (0, 0))
    if spec.mode is InputMode.WHOLE_VOLUME and spec.shape_zyx is not None:
        array, offsets = _centre_pad_crop(array, spec.shape_zyx, float(array.min()))
        same_grid = same_grid and array.shape == unpadded
    normalised = normalise(array, card)
    return ModelInput(normalised, image, original, offsets, unpadded, same_grid)


def _same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    )


def _resample_to_spacing(
    image: sitk.Image, spacing: tuple[float, float, float], fill: float
) -> sitk.Image:
    old_size = np.asarray(image.GetSize(), dtype=float)
    old_spacing = np.asarray(image.GetSpacing(), dtype=float)
    new_spacing = np.asarray(spacing, dtype=float)
    if np.allclose(old_spacing, new_spacing, rtol=1e-4):
        return image
    new_size = np.maximum(1, np.round(old_size * old_spacing / new_spacing)).astype(int)
    # Keep the physical centre of the first voxel's cell edge: the new grid covers the same box.
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2.0)
    return sitk.Resample(
        image,
        [int(v) for v in new_size],
        sitk.Transform(),
        sitk.sitkLinear,
        origin.tolist(),
        new_spacing.tolist(),
        image.GetDirection(),
        fill,
        sitk.sitkFloat32,
    )


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


def undo_pad_crop(channel_zyx: np.ndarray, model_input: ModelInput) -> np.ndarray:
    """One output channel back to the un-padded model grid (cropped-away parts are 0)."""
    if all(o == (0, 0) for o in model_input.crop_pad):
        return channel_zyx
    out = np.zeros(model_input.unpadded_shape_zyx, dtype=np.float32)
    src, dst = [], []
    for (pad, crop), full, size in zip(
        model_input.crop_pad, model_input.unpadded_shape_zyx, channel_zyx.shape, strict=True
    ):
        if crop:
            src.append(slice(0, size))
            dst.append(slice(crop, crop + size))
        else:
            src.append(slice(pad, pad + full))
            dst.append(slice(0, full))
    out[tuple(dst)] = channel_zyx[tuple(src)]
    return out


def to_original_grid(channel_zyx: np.ndarray, model_input: ModelInput) -> np.ndarray:
    """Resample one float channel from model space onto the scan's own grid (linear)."""
    channel = undo_pad_crop(channel_zyx, model_input)
    if model_input.same_grid:
        return channel.astype(np.float32, copy=False)
    image = sitk.GetImageFromArray(channel.astype(np.float32, copy=False))
    image.CopyInformation(model_input.model_grid)
    back = sitk.Resample(
        image, model_input.original_grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32
    )
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
