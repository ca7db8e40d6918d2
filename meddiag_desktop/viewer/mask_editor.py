"""Brush and eraser edits of a 3-D label map in any plane, with undo/redo, without Qt.

The editor changes the caller's label array in place, so an overlay that shows that array only
has to be refreshed. A brush stamp is a disc of a radius in millimetres in the displayed plane
(an ellipse of pixels when pixels are not square); a drag stamps the swept capsule between two
mouse positions so a fast drag leaves no gaps. One stroke (``begin_stroke`` .. ``end_stroke``)
is one undo step, and undo keeps only the changed voxels' flat indices and their old and new
values, so a day of edits on a 512 x 512 x 400 CT does not hold copies of the volume.

After edits, :meth:`MaskEditor.finding_for` measures the lesion under a voxel again with the same
code the AI findings come from (:mod:`meddiag_desktop.inference.findings`), so edited and manual
findings carry exactly the same kinds of numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from meddiag_desktop.domain import Finding, FindingSource, Volume
from meddiag_desktop.inference.findings import axial_index_axis, measure_lesion
from meddiag_desktop.viewer.plane_geometry import PlaneMapping, VoxelZYX

RowColumn = tuple[float, float]

_DEFAULT_MAX_UNDO_STEPS = 100
_DEFAULT_MAX_UNDO_BYTES = 256 * 1024 * 1024
_BYTES_PER_CHANGED_VOXEL = 8 + 1 + 1  # flat index, old value, new value
_CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)  # the connectivity inference uses
_SEARCH_MARGIN = 8


@dataclass(frozen=True, eq=False)
class _Edit:
    """One undo step: which voxels changed, from what, to what."""

    serial: int
    flat_indices: np.ndarray  # int64, unique
    old_values: np.ndarray  # uint8
    new_values: np.ndarray  # uint8

    @property
    def nbytes(self) -> int:
        return self.flat_indices.size * _BYTES_PER_CHANGED_VOXEL


class MaskEditor:
    """Paints and erases a ``uint8`` label map (z, y, x) in place, on a volume's grid.

    ``labels_zyx`` must be C-contiguous: edits go through a flat view of it, and a copy would
    hide them from whoever else shows that array.
    """

    def __init__(
        self,
        labels_zyx: np.ndarray,
        volume: Volume,
        *,
        max_undo_steps: int = _DEFAULT_MAX_UNDO_STEPS,
        max_undo_bytes: int = _DEFAULT_MAX_UNDO_BYTES,
    ) -> None:
        if labels_zyx.shape != volume.shape_zyx:
            raise ValueError(
                f"label map {labels_zyx.shape} does not fit the scan {volume.shape_zyx}"
            )
        if labels_zyx.dtype != np.uint8:
            raise ValueError(f"a label map holds uint8 values, not {labels_zyx.dtype}")
        if not labels_zyx.flags.c_contiguous or not labels_zyx.flags.writeable:
            raise ValueError("the label map must be a writeable C-contiguous array")
        self.labels_zyx = labels_zyx
        self.volume = volume
        self._flat = labels_zyx.reshape(-1)  # a view: writes land in labels_zyx
        self._max_undo_steps = max_undo_steps
        self._max_undo_bytes = max_undo_bytes
        self._undo: list[_Edit] = []
        self._redo: list[_Edit] = []
        self._stroke: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._serial = itertools.count(1)
        self._saved_state = 0
        self._dropped_state = 0  # the state the oldest undoable step goes back to
        self._revision = 0
        self._last_painted: VoxelZYX | None = None

    # ---- strokes --------------------------------------------------------------------------
    def begin_stroke(self) -> None:
        """Start grouping stamps into one undo step (a no-op inside a stroke)."""
        if self._stroke is None:
            self._stroke = []

    def end_stroke(self) -> bool:
        """Close the stroke; returns whether it changed anything (an empty one is no undo step)."""
        pieces, self._stroke = self._stroke, None
        if not pieces:
            return False
        indices = np.concatenate([p[0] for p in pieces])
        olds = np.concatenate([p[1] for p in pieces])
        # a voxel changed twice in a stroke keeps the value it had before the stroke
        unique, first = np.unique(indices, return_index=True)
        edit = _Edit(next(self._serial), unique, olds[first], self._flat[unique].copy())
        self._push(edit)
        return True

    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    def paint(
        self,
        mapping: PlaneMapping,
        slice_index: int,
        centre_rc: RowColumn,
        radius_mm: float,
        label: int,
        *,
        previous_rc: RowColumn | None = None,
    ) -> int:
        """Set ``label`` in a disc (or, with ``previous_rc``, the swept capsule) of one slice.

        ``centre_rc`` is a displayed (row, column) position, fractional, with pixel centres at
        whole numbers. Returns how many voxels changed. Outside a stroke it is its own step.
        """
        if not 1 <= label <= 255:
            raise ValueError(f"a painted label is 1..255, not {label}")
        rows, columns = self._stamp(mapping, centre_rc, radius_mm, previous_rc)
        flat = flat_voxel_indices(mapping, slice_index, rows, columns)
        changed = self._apply(flat, np.uint8(label), None)
        if changed:  # every stamped pixel now holds the label: keep the one nearest the centre
            nearest = int(np.argmin((rows - centre_rc[0]) ** 2 + (columns - centre_rc[1]) ** 2))
            self._last_painted = mapping.voxel_at(slice_index, rows[nearest], columns[nearest])
        return changed

    def erase(
        self,
        mapping: PlaneMapping,
        slice_index: int,
        centre_rc: RowColumn,
        radius_mm: float,
        label: int | None = None,
        *,
        previous_rc: RowColumn | None = None,
    ) -> int:
        """Clear ``label`` (every label when None) in a disc or capsule; returns voxels changed."""
        rows, columns = self._stamp(mapping, centre_rc, radius_mm, previous_rc)
        flat = flat_voxel_indices(mapping, slice_index, rows, columns)
        return self._apply(flat, np.uint8(0), label)

    # ---- undo -----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._stroke is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._stroke is None

    def undo(self) -> bool:
        """Restore the voxels of the last stroke; False when there is nothing to undo."""
        if not self.can_undo:
            return False
        edit = self._undo.pop()
        self._flat[edit.flat_indices] = edit.old_values
        self._redo.append(edit)
        self._revision += 1
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            return False
        edit = self._redo.pop()
        self._flat[edit.flat_indices] = edit.new_values
        self._undo.append(edit)
        self._revision += 1
        return True

    @property
    def undo_bytes(self) -> int:
        """Memory the undo and redo history holds."""
        return sum(e.nbytes for e in itertools.chain(self._undo, self._redo))

    # ---- what changed ---------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Grows with every change of the label map (stamps, undo, redo)."""
        return self._revision

    def changed_since(self, revision: int) -> bool:
        return self._revision != revision

    @property
    def is_dirty(self) -> bool:
        """Whether the map differs from when it was last marked saved (undo back means clean)."""
        return self._state() != self._saved_state

    def mark_saved(self) -> None:
        self._saved_state = self._state()

    @property
    def last_painted_voxel(self) -> VoxelZYX | None:
        """The voxel under the centre of the last stamp that painted something: a lesion seed."""
        return self._last_painted

    # ---- findings -------------------------------------------------------------------------
    def finding_for(
        self,
        seed_zyx: VoxelZYX,
        *,
        original: Finding | None = None,
        label_names: Mapping[int, str] | None = None,
        probability_zyx: np.ndarray | None = None,
        finding_id: int = 0,
    ) -> Finding | None:
        """Measure the connected lesion containing ``seed_zyx`` as it is now; None if unlabelled.

        With ``original`` (the finding that was edited) the result keeps its id, label name and
        source and its probabilities are taken again from ``probability_zyx`` when given, else
        kept from the original. Without it the result is a MANUAL finding numbered
        ``finding_id`` with no model probability (0.0: the field is a plain float).
        """
        label = int(self.labels_zyx[seed_zyx])
        if label == 0:
            return None
        mask, box = self.component_at(seed_zyx)
        probabilities = probability_zyx
        if probabilities is None:  # no model numbers here: measure with zeros, fix up below
            probabilities = np.broadcast_to(np.float32(0.0), self.labels_zyx.shape)
        names = label_names or {}
        name = original.label_name if original is not None else names.get(label, f"label {label}")
        number = original.finding_id if original is not None else finding_id
        slice_axis = axial_index_axis(self.volume)
        measured = measure_lesion(
            self.volume, probabilities, mask, box, label, name, slice_axis, number
        )
        if original is None:
            return replace(
                measured, source=FindingSource.MANUAL, mean_probability=0.0, max_probability=0.0
            )
        if probability_zyx is None:
            measured = replace(
                measured,
                mean_probability=original.mean_probability,
                max_probability=original.max_probability,
            )
        return replace(measured, source=original.source)

    def seed_for(self, finding: Finding) -> VoxelZYX | None:
        """A voxel of ``finding``'s lesion as the map is now (see :func:`lesion_seed`)."""
        return lesion_seed(self.labels_zyx, finding)

    def edited_finding(
        self, original: Finding, probability_zyx: np.ndarray | None = None
    ) -> Finding | None:
        """``original`` measured again after edits; None when the lesion was erased."""
        seed = self.seed_for(original)
        if seed is None:
            return None
        return self.finding_for(seed, original=original, probability_zyx=probability_zyx)

    def component_at(self, seed_zyx: VoxelZYX) -> tuple[np.ndarray, tuple[slice, ...]]:
        """The 26-connected component of the seed's label (see :func:`connected_component`)."""
        return connected_component(self.labels_zyx, seed_zyx)

    # ---- internals ------------------------------------------------------------------------
    def _stamp(
        self,
        mapping: PlaneMapping,
        centre_rc: RowColumn,
        radius_mm: float,
        previous_rc: RowColumn | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if mapping.shape_zyx != self.labels_zyx.shape:
            raise ValueError(
                f"the view shows {mapping.shape_zyx}, the map is {self.labels_zyx.shape}"
            )
        return stamp_pixels(mapping, centre_rc, radius_mm, previous_rc)

    def _apply(self, flat: np.ndarray, value: np.uint8, only_label: int | None) -> int:
        old = self._flat[flat]
        changing = old != value if only_label is None else old == only_label
        flat, old = flat[changing], old[changing]
        if flat.size == 0:
            return 0
        self._flat[flat] = value
        self._revision += 1
        if self._stroke is not None:
            self._stroke.append((flat, old))
        else:
            self._push(_Edit(next(self._serial), flat, old, np.full(flat.size, value, np.uint8)))
        return int(flat.size)

    def _push(self, edit: _Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()
        while len(self._undo) > self._max_undo_steps or (
            len(self._undo) > 1 and self.undo_bytes > self._max_undo_bytes
        ):
            # the oldest step goes (the newest is always undoable); undoing everything now
            # leads to the state after it, not to the original map
            self._dropped_state = self._undo.pop(0).serial

    def _state(self) -> int:
        return self._undo[-1].serial if self._undo else self._dropped_state


def lesion_seed(labels_zyx: np.ndarray, finding: Finding) -> VoxelZYX | None:
    """A voxel of ``finding``'s lesion in ``labels_zyx``: the one of its label inside its
    bounding box nearest its centroid; None when nothing of it is left there."""
    x0, y0, z0, x1, y1, z1 = finding.bbox_index_xyz
    box = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
    inside = np.argwhere(labels_zyx[box] == finding.label)
    if inside.size == 0:
        return None
    cx, cy, cz = finding.centroid_index_xyz
    offset = np.array([z0, y0, x0])
    distances = (((inside + offset) - np.array([cz, cy, cx])) ** 2).sum(axis=1)
    z, y, x = (int(v) for v in inside[int(np.argmin(distances))] + offset)
    return z, y, x


def connected_component(
    labels_zyx: np.ndarray, seed_zyx: VoxelZYX
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The 26-connected component of the seed's label: (mask within box, box).

    Labels a growing box around the seed instead of the whole volume: a component that does
    not touch an inner face of the box cannot continue outside it.
    """
    label = labels_zyx[seed_zyx]
    if label == 0:
        raise ValueError(f"voxel {seed_zyx} is not labelled")
    shape = labels_zyx.shape
    low = [max(0, s - _SEARCH_MARGIN) for s in seed_zyx]
    high = [min(n, s + _SEARCH_MARGIN + 1) for s, n in zip(seed_zyx, shape, strict=True)]
    while True:
        box = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
        components, _ = ndimage.label(labels_zyx[box] == label, _CONNECTIVITY_26)
        local_seed = tuple(s - lo for s, lo in zip(seed_zyx, low, strict=True))
        mask = components == components[local_seed]
        grown = False
        for axis in range(3):
            along = np.any(mask, axis=tuple(a for a in range(3) if a != axis))
            if along[0] and low[axis] > 0:
                low[axis] = max(0, low[axis] - 2 * (high[axis] - low[axis]))
                grown = True
            if along[-1] and high[axis] < shape[axis]:
                high[axis] = min(shape[axis], high[axis] + 2 * (high[axis] - low[axis]))
                grown = True
        if not grown:
            return _tight(mask, low)


def lesion_voxels(labels_zyx: np.ndarray, findings: Iterable[Finding]) -> np.ndarray:
    """The (z, y, x) voxels, shape (N, 3), of the lesions of ``findings`` as the map is now.

    Kept as coordinates, not a mask of the volume's size: lesions are a few thousand voxels,
    a mask of a 512 x 512 x 400 CT would be 100 MB per set.
    """
    pieces = [np.empty((0, 3), dtype=np.intp)]
    for finding in findings:
        seed = lesion_seed(labels_zyx, finding)
        if seed is None:
            continue
        mask, box = connected_component(labels_zyx, seed)
        offset = np.array([s.start for s in box], dtype=np.intp)
        pieces.append(np.argwhere(mask).astype(np.intp) + offset)
    return np.unique(np.concatenate(pieces), axis=0)


def stamp_pixels(
    mapping: PlaneMapping,
    centre_rc: RowColumn,
    radius_mm: float,
    previous_rc: RowColumn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Displayed (rows, columns) whose centres lie within ``radius_mm`` of the centre (or of the
    segment from ``previous_rc`` to it), clipped to the slice; distances are in millimetres, so
    anisotropic pixels give a round disc on screen. A brush smaller than a pixel still paints
    the pixel under the centre."""
    start = centre_rc if previous_rc is None else previous_rc
    height, width = mapping.pixel_height_mm, mapping.pixel_width_mm
    radius_mm = max(radius_mm, 0.5 * min(height, width))  # a thin brush still draws a line
    reach_r, reach_c = radius_mm / height, radius_mm / width
    r_lo = max(0, int(np.floor(min(start[0], centre_rc[0]) - reach_r)))
    r_hi = min(mapping.rows - 1, int(np.ceil(max(start[0], centre_rc[0]) + reach_r)))
    c_lo = max(0, int(np.floor(min(start[1], centre_rc[1]) - reach_c)))
    c_hi = min(mapping.columns - 1, int(np.ceil(max(start[1], centre_rc[1]) + reach_c)))
    empty = np.empty(0, dtype=np.intp)
    if r_lo > r_hi or c_lo > c_hi:
        return empty, empty
    rows, columns = np.mgrid[r_lo : r_hi + 1, c_lo : c_hi + 1]
    # millimetre offsets from the segment start; project onto the segment, clamp, measure
    py = (rows - start[0]) * height
    px = (columns - start[1]) * width
    dy = (centre_rc[0] - start[0]) * height
    dx = (centre_rc[1] - start[1]) * width
    length2 = dy * dy + dx * dx
    t = np.clip((py * dy + px * dx) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    inside = (py - t * dy) ** 2 + (px - t * dx) ** 2 <= radius_mm * radius_mm
    if not inside.any() and _contains(mapping, centre_rc):
        row, column = _nearest_inside(mapping, centre_rc)
        return np.array([row], dtype=np.intp), np.array([column], dtype=np.intp)
    return rows[inside].astype(np.intp), columns[inside].astype(np.intp)


def flat_voxel_indices(
    mapping: PlaneMapping, slice_index: int, rows: np.ndarray, columns: np.ndarray
) -> np.ndarray:
    """Flat (C-order) indices into the 3-D array of displayed pixels of one slice."""
    voxel: list[np.ndarray | int] = [0, 0, 0]
    voxel[mapping.through_axis] = mapping.voxel_at(slice_index, 0, 0)[mapping.through_axis]
    voxel[mapping.row_axis] = mapping.rows - 1 - rows if mapping.flip_rows else rows
    voxel[mapping.column_axis] = mapping.columns - 1 - columns if mapping.flip_columns else columns
    z, y, x = (np.broadcast_to(v, rows.shape) for v in voxel)
    return np.ravel_multi_index((z, y, x), mapping.shape_zyx).astype(np.int64)


def _contains(mapping: PlaneMapping, rc: RowColumn) -> bool:
    return -0.5 <= rc[0] < mapping.rows - 0.5 and -0.5 <= rc[1] < mapping.columns - 0.5


def _nearest_inside(mapping: PlaneMapping, rc: RowColumn) -> tuple[int, int]:
    row = min(max(int(np.floor(rc[0] + 0.5)), 0), mapping.rows - 1)
    column = min(max(int(np.floor(rc[1] + 0.5)), 0), mapping.columns - 1)
    return row, column


def _tight(mask: np.ndarray, low: list[int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The mask cropped to its own bounding box, and that box in volume indices."""
    (local,) = ndimage.find_objects(mask.astype(np.uint8), max_label=1)
    box = tuple(slice(lo + s.start, lo + s.stop) for lo, s in zip(low, local, strict=True))
    return mask[local], box
