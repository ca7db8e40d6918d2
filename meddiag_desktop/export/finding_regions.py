"""Which voxels of a case's label map are one stored finding's lesion.

The database keeps a finding's measurements and the case's whole label map, not a mask per
finding. The viewer finds a finding's lesion as the 26-connected component of its label through
the voxel inside its bounding box nearest its centroid (``viewer.mask_editor.lesion_seed``); the
export uses the same rule, so a report outlines what the radiologist saw selected. The viewer's
code sits in a layer above this one, hence this Qt-free restatement of the rule.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from meddiag_desktop.domain import Finding
from meddiag_desktop.reports.review_outcome import LesionRegion

_CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


def lesion_seed(labels_zyx: np.ndarray, finding: Finding) -> tuple[int, int, int] | None:
    """The voxel of ``finding``'s label inside its bounding box nearest its centroid; None
    when none of its label is left there (its lesion was erased)."""
    x0, y0, z0, x1, y1, z1 = finding.bbox_index_xyz
    box = np.s_[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1]
    inside = np.argwhere(labels_zyx[box] == finding.label)
    if inside.size == 0:
        return None
    cx, cy, cz = finding.centroid_index_xyz
    voxels = inside + np.array([z0, y0, x0])
    nearest = voxels[int(np.argmin(((voxels - np.array([cz, cy, cx])) ** 2).sum(axis=1)))]
    z, y, x = (int(v) for v in nearest)
    return z, y, x


def component_region(labels_zyx: np.ndarray, seed_zyx: tuple[int, int, int]) -> LesionRegion:
    """The 26-connected component of the seed's label as a tight box and its mask.

    Labels a box around the seed that grows while the component touches one of its inner
    faces, not the whole scan: a 512x512x300 CT would need a 300 MB label image per finding.
    """
    label = labels_zyx[seed_zyx]
    shape = labels_zyx.shape
    low = [max(0, s - 16) for s in seed_zyx]
    high = [min(n, s + 17) for s, n in zip(seed_zyx, shape, strict=True)]
    while True:
        box = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
        components, _ = ndimage.label(labels_zyx[box] == label, _CONNECTIVITY_26)
        local = tuple(s - lo for s, lo in zip(seed_zyx, low, strict=True))
        mask = components == components[local]
        grown = False
        for axis in range(3):
            along = mask.any(axis=tuple(a for a in range(3) if a != axis))
            size = high[axis] - low[axis]
            if along[0] and low[axis] > 0:
                low[axis], grown = max(0, low[axis] - size), True
            if along[-1] and high[axis] < shape[axis]:
                high[axis], grown = min(shape[axis], high[axis] + size), True
        if not grown:
            break
    tight = ndimage.find_objects(mask.astype(np.uint8))[0]
    start = tuple(lo + s.start for lo, s in zip(low, tight, strict=True))
    return LesionRegion((start[0], start[1], start[2]), mask[tight].copy())


def finding_region(labels_zyx: np.ndarray, finding: Finding) -> LesionRegion | None:
    """``finding``'s lesion in ``labels_zyx`` (module docstring); None when it is not there."""
    seed = lesion_seed(labels_zyx, finding)
    return None if seed is None else component_region(labels_zyx, seed)
