"""Multi-frame DICOM (enhanced CT/MR, legacy multi-frame): frames -> one 3-D volume.

An enhanced file keeps each frame's position, orientation and rescale in functional-group
sequences. Frames are grouped like single-frame files: one orientation, each position once (the
first time point when positions repeat, as in fMRI or diffusion), then measured and resampled by
the same code as slice stacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pydicom

from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, vector3
from meddiag_desktop.scans import slice_checks
from meddiag_desktop.scans.dicom_header import DicomHeader
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.slice_geometry import analyse_stack


@dataclass(frozen=True)
class FramePlan:
    """Which frames form the volume, in slice order, and their geometry."""

    frames: tuple[int, ...]
    positions: tuple[tuple[float, float, float], ...]
    orientation: tuple[float, ...]
    pixel_spacing_xy: tuple[float, float]
    slopes: tuple[float, ...]
    intercepts: tuple[float, ...]
    time_points: int
    warnings: tuple[str, ...]


def _first(sequence_owner, name: str):
    sequence = getattr(sequence_owner, name, None)
    return sequence[0] if sequence else None


def _frame_attribute(shared, per_frame, sequence: str, attribute: str):
    for owner in (per_frame, shared):
        item = _first(owner, sequence) if owner is not None else None
        if item is not None and attribute in item:
            return item[attribute].value
    return None


def plan_frames(ds: pydicom.Dataset, path: Path) -> FramePlan:
    """Work out the 3-D volume a user means from a multi-frame dataset's headers."""
    count = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame_items = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    positions, orientations, slopes, intercepts, order_keys = [], [], [], [], []
    spacing = None
    for index in range(count):
        per_frame = (
            per_frame_items[index] if per_frame_items and index < len(per_frame_items) else None
        )
        position = _frame_attribute(
            shared, per_frame, "PlanePositionSequence", "ImagePositionPatient"
        )
        orientation = _frame_attribute(
            shared, per_frame, "PlaneOrientationSequence", "ImageOrientationPatient"
        )
        frame_spacing = _frame_attribute(shared, per_frame, "PixelMeasuresSequence", "PixelSpacing")
        if position is None and per_frame_items is None:
            position, orientation = _legacy_position(ds, index)
            frame_spacing = getattr(ds, "PixelSpacing", None)
        if position is None or orientation is None or frame_spacing is None:
            raise ScanError(
                path,
                "multi-frame file without a position for every frame "
                "(a cine loop or a 2-D acquisition): not a 3-D volume",
            )
        positions.append(vector3(position))
        orientations.append(tuple(float(v) for v in orientation))
        spacing = spacing or tuple(float(v) for v in frame_spacing)
        slope = _frame_attribute(
            shared, per_frame, "PixelValueTransformationSequence", "RescaleSlope"
        )
        intercept = _frame_attribute(
            shared, per_frame, "PixelValueTransformationSequence", "RescaleIntercept"
        )
        slopes.append(float(slope if slope is not None else getattr(ds, "RescaleSlope", 1) or 1))
        intercepts.append(
            float(intercept if intercept is not None else getattr(ds, "RescaleIntercept", 0) or 0)
        )
        order_keys.append(_temporal_key(per_frame, index))
    for index in range(count):
        problem = slice_checks.frame_problem(
            positions[index], orientations[index], spacing or (), (slopes[index], intercepts[index])
        )
        if problem:  # a NaN here became NaN spacing in the volume, silently
            raise ScanError(path, f"frame {index + 1}: {problem}")
    warnings: list[str] = []
    orientation_groups: dict[tuple[float, ...], list[int]] = {}
    for index, orientation in enumerate(orientations):
        orientation_groups.setdefault(tuple(round(v, 3) for v in orientation), []).append(index)
    chosen = max(orientation_groups.values(), key=len)
    if len(orientation_groups) > 1:
        warnings.append(
            f"Frames in {len(orientation_groups)} orientations: the largest group "
            f"({len(chosen)} frames) is loaded."
        )
    by_position: dict[tuple[float, ...], list[int]] = {}
    for index in chosen:
        by_position.setdefault(tuple(round(v, 2) for v in positions[index]), []).append(index)
    repeats = {len(v) for v in by_position.values()}
    if len(repeats) != 1:
        raise ScanError(
            path,
            "frames repeat slice positions unevenly (an incomplete time series)"
            ": they cannot be stacked into one volume",
        )
    time_points = repeats.pop()
    if time_points > 1:
        warnings.append(
            f"{time_points} time points (or diffusion directions) at the same "
            "positions: the first is loaded."
        )
    frames = [min(group, key=lambda i: order_keys[i]) for group in by_position.values()]
    geometry = analyse_stack([positions[i] for i in frames], orientations[frames[0]])
    if geometry.duplicates:
        raise ScanError(
            path,
            "frames lie at almost (not exactly) the same positions: "
            "they cannot be stacked into one volume",
        )
    frames = [frames[i] for i in geometry.order]
    warnings.extend(geometry.describe_problems())
    row_spacing, col_spacing = spacing  # type: ignore[misc]
    return FramePlan(
        frames=tuple(frames),
        positions=tuple(positions[i] for i in frames),
        orientation=tuple(float(v) for v in orientations[frames[0]]),
        pixel_spacing_xy=(col_spacing, row_spacing),
        slopes=tuple(slopes[i] for i in frames),
        intercepts=tuple(intercepts[i] for i in frames),
        time_points=time_points,
        warnings=tuple(warnings),
    )


def _legacy_position(ds: pydicom.Dataset, index: int):
    """Old multi-frame files (NM, some MR) step frames along the normal by a fixed spacing."""
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return None, None
    step = float(getattr(ds, "SpacingBetweenSlices", 0) or getattr(ds, "SliceThickness", 0) or 0)
    if step == 0:
        return None, None
    orientation = [float(v) for v in ds.ImageOrientationPatient]
    normal = np.cross(orientation[:3], orientation[3:])
    position = np.asarray([float(v) for v in ds.ImagePositionPatient]) + index * step * normal
    return tuple(position), orientation


def _temporal_key(per_frame, index: int) -> tuple:
    content = _first(per_frame, "FrameContentSequence") if per_frame is not None else None
    if content is None:
        return (index,)
    # File order is acquisition order for the vendors tried (it gives the b=0 volume first
    # in diffusion); an explicit temporal index, where present, wins.
    return (getattr(content, "TemporalPositionIndex", None) or 0, index)


def describe(header: DicomHeader, metadata: ScanMetadata) -> SeriesInfo:
    """Headers-only description of one multi-frame file (reads its functional groups)."""
    unloadable = partial(
        SeriesInfo,
        key="",
        kind=SeriesKind.MULTI_FRAME,
        metadata=metadata,
        files=(header.path,),
        loadable=False,
    )
    try:
        ds = pydicom.dcmread(header.path, stop_before_pixels=True)
        plan = plan_frames(ds, header.path)
    except ScanError as exc:
        return unloadable(size_xyz=(header.columns, header.rows, header.frames), reason=exc.reason)
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        return unloadable(reason=f"damaged multi-frame header ({type(exc).__name__}: {exc})")
    distances = np.asarray(plan.positions) @ np.cross(plan.orientation[:3], plan.orientation[3:])
    spacing_z = (
        float(np.median(np.diff(distances)))
        if len(distances) > 1
        else float(getattr(ds, "SliceThickness", 1.0) or 1.0)
    )
    return SeriesInfo(
        key="",
        kind=SeriesKind.MULTI_FRAME,
        metadata=metadata,
        files=(header.path,),
        size_xyz=(header.columns, header.rows, len(plan.frames)),
        spacing_xyz_mm=(plan.pixel_spacing_xy[0], plan.pixel_spacing_xy[1], abs(spacing_z)),
        loadable=True,
        warnings=(f"Multi-frame file with {header.frames} frames.", *plan.warnings),
        time_points=plan.time_points,
    )


def load(series: SeriesInfo) -> tuple[np.ndarray, FramePlan, pydicom.Dataset]:
    """Decoded frames of the planned volume (rescaled) with the plan and the dataset."""
    path = series.files[0]
    try:
        ds = pydicom.dcmread(path)
        plan = plan_frames(ds, path)
        pixels = ds.pixel_array
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"multi-frame pixel data could not be decoded ({exc})") from exc
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if pixels.ndim != 3:
        raise ScanError(path, "colour multi-frame images cannot be read as a greyscale scan")
    frames = pixels[list(plan.frames)]
    slopes = np.asarray(plan.slopes, dtype=np.float64)
    intercepts = np.asarray(plan.intercepts, dtype=np.float64)
    if np.all(slopes == 1) and np.all(intercepts == np.round(intercepts)):
        shifted = frames.astype(np.int32) + intercepts.astype(np.int32)[:, None, None]
        if shifted.min() >= -32768 and shifted.max() <= 32767:
            return shifted.astype(np.int16), plan, ds
        return shifted, plan, ds
    scaled = (
        frames.astype(np.float32) * slopes.astype(np.float32)[:, None, None]
        + intercepts.astype(np.float32)[:, None, None]
    )
    return scaled, plan, ds
