"""Connected lesions -> Findings with the measurements a radiologist reports.

Diameters follow RECIST 1.1: the longest diameter in the axial plane (the index plane closest
to the patient's axial plane) and, in the same slice, the largest extent perpendicular to it.
They are measured between the outer corners of the lesion's pixels, so a lesion one pixel wide
measures one pixel, not zero.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from meddiag_desktop.domain import Finding, FindingSource, Volume


def label_components(labels_zyx: np.ndarray, label: int) -> tuple[np.ndarray, int]:
    """26-connected components of one label value (SimpleITK: fast, bounded memory)."""
    image = sitk.GetImageFromArray((labels_zyx == label).astype(np.uint8))
    components = sitk.ConnectedComponent(image, True)
    array = sitk.GetArrayFromImage(components)
    return array, int(array.max())


def extract_findings(
    volume: Volume,
    labels_zyx: np.ndarray,
    probability_zyx: np.ndarray,
    label_names: dict[int, str],
    min_volume_mm3: float,
) -> tuple[np.ndarray, list[Finding]]:
    """Drop components below the minimum volume, measure the rest; returns the cleaned map."""
    voxel_mm3 = float(np.prod(volume.spacing_xyz_mm))
    cleaned = np.zeros_like(labels_zyx)
    findings: list[Finding] = []
    slice_axis = axial_index_axis(volume)
    for label in sorted(label_names):
        components, count = label_components(labels_zyx, label)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        boxes = _bounding_boxes(components, count)
        for component in range(1, count + 1):
            box = boxes[component]
            if box is None or sizes[component] * voxel_mm3 < min_volume_mm3:
                continue
            mask = components[box] == component
            cleaned[box][mask] = label
            findings.append(
                _measure(
                    volume,
                    probability_zyx,
                    mask,
                    box,
                    label,
                    label_names[label],
                    slice_axis,
                    len(findings) + 1,
                )
            )
    findings.sort(key=lambda f: -f.volume_ml)
    renumbered = [_renumber(f, i) for i, f in enumerate(findings, start=1)]
    return cleaned, renumbered


def _renumber(finding: Finding, number: int) -> Finding:
    return replace(finding, finding_id=number)


def _bounding_boxes(components: np.ndarray, count: int) -> list[tuple[slice, ...] | None]:
    return [None, *ndimage.find_objects(components, max_label=count)]


def axial_index_axis(volume: Volume) -> int:
    """Array axis (0=z, 1=y, 2=x) whose direction is closest to the patient's S axis."""
    direction = volume.direction_matrix()  # columns: x, y, z index axes in LPS
    superior = np.abs(direction[2, :])  # S component of each index axis
    index_axis = int(np.argmax(superior))  # 0=x, 1=y, 2=z
    return 2 - index_axis


def _measure(
    volume: Volume,
    probability_zyx: np.ndarray,
    mask: np.ndarray,
    box: tuple[slice, ...],
    label: int,
    name: str,
    slice_axis: int,
    number: int,
) -> Finding:
    intensities = volume.array_zyx[box][mask].astype(np.float64)
    probabilities = probability_zyx[box][mask].astype(np.float64)
    voxels = np.argwhere(mask) + np.array([s.start for s in box])
    centroid_zyx = voxels.mean(axis=0)
    centroid_xyz = (float(centroid_zyx[2]), float(centroid_zyx[1]), float(centroid_zyx[0]))
    long_axis, short_axis = _recist_axes(mask, volume.spacing_xyz_mm, slice_axis)
    lows = [s.start for s in box]
    highs = [s.stop - 1 for s in box]
    return Finding(
        finding_id=number,
        label=label,
        label_name=name,
        volume_ml=float(mask.sum() * np.prod(volume.spacing_xyz_mm) / 1000.0),
        long_axis_mm=long_axis,
        short_axis_mm=short_axis,
        centroid_lps_mm=volume.index_to_lps(centroid_xyz),
        centroid_index_xyz=centroid_xyz,
        bbox_index_xyz=(lows[2], lows[1], lows[0], highs[2], highs[1], highs[0]),
        voxel_count=int(mask.sum()),
        mean_intensity=float(intensities.mean()),
        max_intensity=float(intensities.max()),
        mean_probability=float(probabilities.mean()),
        max_probability=float(probabilities.max()),
        source=FindingSource.AI,
    )


def _recist_axes(
    mask: np.ndarray, spacing_xyz: tuple[float, float, float], slice_axis: int
) -> tuple[float, float]:
    """(long, short) axis in mm over the lesion's slices; the slice with the longest wins."""
    spacing_zyx = (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0])
    in_plane = [a for a in range(3) if a != slice_axis]
    pixel = np.array([spacing_zyx[in_plane[0]], spacing_zyx[in_plane[1]]])
    best = (0.0, 0.0)
    for index in range(mask.shape[slice_axis]):
        plane = np.take(mask, index, axis=slice_axis)
        if not plane.any():
            continue
        long_axis, short_axis = _plane_axes(plane, pixel)
        if long_axis > best[0]:
            best = (long_axis, short_axis)
    return best


_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


def _plane_axes(plane: np.ndarray, pixel_mm: np.ndarray) -> tuple[float, float]:
    pixels = np.argwhere(plane).astype(float)
    points = (pixels[:, None, :] + _CORNERS[None, :, :]).reshape(-1, 2) * pixel_mm
    try:
        hull = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # collinear pixels: a straight line of them
        hull = points
    differences = hull[:, None, :] - hull[None, :, :]
    distances = np.sqrt((differences**2).sum(axis=-1))
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    long_axis = float(distances[i, j])
    if long_axis == 0:
        return 0.0, 0.0
    direction = (hull[j] - hull[i]) / long_axis
    perpendicular = np.array([-direction[1], direction[0]])
    projection = hull @ perpendicular
    return long_axis, float(projection.max() - projection.min())
