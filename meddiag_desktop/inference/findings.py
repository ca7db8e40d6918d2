"""Connected lesions -> Findings with the measurements a radiologist reports.

Diameters follow RECIST 1.1: the longest diameter in the axial plane (the index plane closest
to the patient's axial plane) and, in the same slice, the largest extent perpendicular to it.
They are measured between the outer corners of the lesion's pixels, so a lesion one pixel wide
measures one pixel, not zero.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from meddiag_desktop.domain import Finding, FindingSource, Volume


def label_components(labels_zyx: np.ndarray, label: int) -> tuple[np.ndarray, int]:
    """26-connected components of one label value over the whole array (uint32 labels)."""
    image = sitk.GetImageFromArray((labels_zyx == label).astype(np.uint8))
    components = sitk.ConnectedComponent(image, True)
    array = sitk.GetArrayFromImage(components)
    return array, int(array.max())


Box = tuple[slice, slice, slice]


def _runs(profile: np.ndarray | np.bool_) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D boolean profile."""
    flags = np.asarray(profile, dtype=np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags, [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _occupied(labels_zyx: np.ndarray, label: int, chunk_voxels: int = 1 << 20) -> list[Box]:
    """Boxes that hold every voxel of ``label``, separated by empty planes, so no connected
    component crosses two boxes. Found from the projections, a few slices at a time: no
    full-size temporary."""
    depth, rows, columns = labels_zyx.shape
    step = max(1, chunk_voxels // max(1, rows * columns))
    z_profile = np.zeros(depth, dtype=bool)
    yx_profile = np.zeros((rows, columns), dtype=bool)
    for first in range(0, depth, step):
        mask = labels_zyx[first : first + step] == label
        z_profile[first : first + step] = mask.any(axis=(1, 2))
        yx_profile |= mask.any(axis=0)
    found: list[Box] = []
    first_runs = [_runs(z_profile), _runs(yx_profile.any(axis=1)), _runs(yx_profile.any(axis=0))]
    boxes = _split((0, 0, 0), first_runs)
    while boxes:  # split each box again by its own projections until every box is tight
        box = boxes.pop()
        mask = labels_zyx[box] == label
        runs = [_runs(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
        parts = _split(tuple(s.start for s in box), runs)
        if len(parts) == 1:
            found.append(parts[0])
        else:
            boxes.extend(parts)
    return found


def _split(offset: tuple[int, ...], runs: list[list[tuple[int, int]]]) -> list[Box]:
    """The boxes of every combination of runs; one box around all of them if that is many
    (scattered voxels: splitting would cost more than it saves); none if a profile is empty."""
    if not all(runs):
        return []
    if math.prod(len(r) for r in runs) > _MAX_SPLIT:
        runs = [[(r[0][0], r[-1][1])] for r in runs]
    return [
        (
            slice(offset[0] + z[0], offset[0] + z[1]),
            slice(offset[1] + y[0], offset[1] + y[1]),
            slice(offset[2] + x[0], offset[2] + x[1]),
        )
        for z, y, x in itertools.product(*runs)
    ]


_MAX_SPLIT = 64


def _components_in(labels_zyx: np.ndarray, label: int) -> list[tuple[Box, np.ndarray, tuple]]:
    """(box, mask in the box, first voxel) of each 26-connected component of ``label``.

    Connected components run inside tight boxes around the label's voxels (compact uint32
    label images, the size of the lesions rather than of the scan). The order is that of a
    whole-volume labelling: by each component's first voxel in (z, y, x) scan order.
    """
    found = []
    for box in _occupied(labels_zyx, label):
        image = sitk.GetImageFromArray((labels_zyx[box] == label).view(np.uint8))
        labelled = sitk.ConnectedComponent(image, True)
        del image
        # A view, no copy; ``labelled`` stays referenced while it is used (PITFALLS.md).
        components = sitk.GetArrayViewFromImage(labelled)
        count = int(components.max())
        offset = [int(s.start) for s in box]
        for number, local in enumerate(ndimage.find_objects(components, max_label=count), 1):
            if local is None:
                continue
            mask = components[local] == number
            first_local = np.unravel_index(int(np.argmax(mask)), mask.shape)
            first = tuple(
                int(v) + s.start + o for v, s, o in zip(first_local, local, offset, strict=True)
            )
            inner = tuple(
                slice(s.start + o, s.stop + o) for s, o in zip(local, offset, strict=True)
            )
            found.append((inner, mask, first))
        del components, labelled
    found.sort(key=lambda item: item[2])
    return found  # type: ignore[return-value]


def extract_findings(
    volume: Volume,
    labels_zyx: np.ndarray,
    probability_zyx: np.ndarray,
    label_names: dict[int, str],
    min_volume_mm3: float,
    in_place: bool = False,
) -> tuple[np.ndarray, list[Finding]]:
    """Drop components below the minimum volume, measure the rest; returns the cleaned map.

    ``in_place``: clean ``labels_zyx`` itself instead of a copy (the pipeline's own map; all
    its values must be in ``label_names``), which saves a full-size array.
    """
    voxel_mm3 = float(np.prod(volume.spacing_xyz_mm))
    cleaned = labels_zyx if in_place else np.zeros_like(labels_zyx)
    findings: list[Finding] = []
    slice_axis = axial_index_axis(volume)
    for label in sorted(label_names):
        for box, mask, _ in _components_in(labels_zyx, label):
            if mask.sum() * voxel_mm3 < min_volume_mm3:
                if in_place:
                    cleaned[box][mask] = 0
                continue
            if not in_place:
                cleaned[box][mask] = label
            findings.append(
                measure_lesion(
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


def axial_index_axis(volume: Volume) -> int:
    """Array axis (0=z, 1=y, 2=x) whose direction is closest to the patient's S axis."""
    direction = volume.direction_matrix()  # columns: x, y, z index axes in LPS
    superior = np.abs(direction[2, :])  # S component of each index axis
    index_axis = int(np.argmax(superior))  # 0=x, 1=y, 2=z
    return 2 - index_axis


def measure_lesion(
    volume: Volume,
    probability_zyx: np.ndarray,
    mask: np.ndarray,
    box: tuple[slice, ...],
    label: int,
    name: str,
    slice_axis: int,
    number: int,
) -> Finding:
    """The finding one lesion's voxels make (``mask`` within ``box``): shared by the model's
    findings and the viewer's edits, so an edited lesion is measured the same way."""
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
