"""A DICOM SEG that another tool wrote -> a label map on the grid of the series it labels.

Other viewers (Slicer with dcmqi, OHIF, vendor workstations) hand results over as DICOM SEG.
Its frames are masks, one segment each (or a label map), placed on the source series either by
the source images each frame names (ReferencedSOPInstanceUID) or by their own positions. This
module finds that series in a folder, loads it, and puts every frame on its slice:

- by the referenced SOP Instance UIDs when every frame names an image of the series, checked
  against the frame's own position where it has one;
- else by the frame positions (ImagePositionPatient), each matched to a slice of the series
  within :data:`TOLERANCE_VOXELS`.

Nothing is resampled: frames of another size, pixel spacing, orientation or in-plane offset,
or between slices, are refused with the reason, since a quiet resampling would put the labels a
voxel off without anyone seeing it. Segment numbers become label values; where segments overlap
the higher segment number wins, and a warning says where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from meddiag_desktop.domain import Progress, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.scans import sop_classes
from meddiag_desktop.scans.discovery import discover
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.loading import load
from meddiag_desktop.scans.seg_headers import frame_source_uids, reference_of

if TYPE_CHECKING:  # highdicom takes half a second to import: only when a SEG is read
    import highdicom as hd

ProgressCallback = Callable[[Progress], None]

# How far (in voxels, along any axis) a frame may lie from a voxel of the reference grid and
# still be that voxel: positions written as 16-character decimal strings differ by microns.
TOLERANCE_VOXELS = 0.05
# Relative tolerance on pixel spacing and on the direction cosines of the frames.
_GRID_TOLERANCE = 1e-3
_MAX_LABEL = 255  # the label maps here are uint8

BY_UIDS = "referenced SOP Instance UIDs"
BY_POSITIONS = "frame positions"


@dataclass(frozen=True, eq=False)
class SegLabelMap:
    """A SEG's labels on its reference series' grid, with where they came from."""

    labels: Volume  # uint8 label values (segment numbers) with the reference scan's geometry
    label_names: dict[int, str]  # segment number -> SegmentLabel
    scan: Volume  # the referenced series, loaded
    reference: SeriesInfo  # that series, as discovery listed it
    seg_path: Path
    description: str  # the SEG's SeriesDescription
    manufacturer: str  # who made the SEG (Manufacturer)
    sop_instance_uid: str
    mapped_by: str  # BY_UIDS or BY_POSITIONS
    warnings: tuple[str, ...] = ()

    @property
    def source_note(self) -> str:
        """'from DICOM SEG <file> (<SeriesDescription>, <Manufacturer>)': where a stored mask
        version came from, for the audit trail and the message the reader sees."""
        description = self.description or "no description"
        maker = self.manufacturer or "maker not recorded"
        return f"from DICOM SEG {self.seg_path.name} ({description}, {maker})"


def is_segmentation_file(path: Path) -> bool:
    """Whether ``path`` is a DICOM file of a segmentation storage class (header only)."""
    if not path.is_file():
        return False
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
        return False
    return sop_classes.is_segmentation(str(header.get("SOPClassUID", "")))


def read_seg(
    path: Path | str,
    reference_folder: Path | str | None = None,
    progress: ProgressCallback | None = None,
) -> SegLabelMap:
    """The label map of the SEG at ``path`` on the series it references, found in
    ``reference_folder`` (default: the SEG's own folder).

    Raises :class:`ScanError` (naming the file and the reason) for a file that is no readable
    SEG, a folder without the referenced series (its UID named), or frames on another grid.
    """
    seg_path = Path(path)
    seg = _open(seg_path)
    folder = Path(reference_folder) if reference_folder is not None else seg_path.parent
    reference_info = reference_of(seg)
    if progress is not None:
        progress(Progress(0.0, "finding the series the SEG labels", str(folder)))
    reference = _referenced_series(
        seg_path,
        folder,
        reference_info.referenced_series_uid,
        set(reference_info.referenced_instance_uids),
    )
    scan = load(reference, progress)
    _check_plane(seg, scan, seg_path, reference)
    slice_of_uid = _slice_of_uid(reference, scan)
    frames = list(seg.get("PerFrameFunctionalGroupsSequence", []))
    if frames and all(any(uid in slice_of_uid for uid in frame_source_uids(f)) for f in frames):
        _check_frame_positions(seg, frames, scan, slice_of_uid, seg_path, reference)
        placed = _placed_by_uids(seg, scan, slice_of_uid)
        mapped_by = BY_UIDS
    else:
        placed = _placed_by_positions(seg, scan, seg_path, reference)
        mapped_by = BY_POSITIONS
    names = {
        int(item.SegmentNumber): str(item.get("SegmentLabel", ""))
        for item in seg.get("SegmentSequence", [])
    }
    labels, warnings = _combined(placed, scan.shape_zyx, names, seg_path)
    return SegLabelMap(
        labels=scan.with_array(labels),
        label_names=names,
        scan=scan,
        reference=reference,
        seg_path=seg_path,
        description=str(seg.get("SeriesDescription", "")),
        manufacturer=str(seg.get("Manufacturer", "")),
        sop_instance_uid=str(seg.get("SOPInstanceUID", "")),
        mapped_by=mapped_by,
        warnings=tuple(warnings),
    )


def _open(path: Path) -> hd.seg.Segmentation:
    if not path.is_file():
        raise ScanError(path, "does not exist or is not a file")
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise ScanError(path, f"is not a readable DICOM file ({exc})") from None
    if not sop_classes.is_segmentation(str(header.get("SOPClassUID", ""))):
        raise ScanError(path, "is not a DICOM segmentation (SEG)")
    import highdicom as hd

    try:
        return hd.seg.segread(path)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ScanError(path, f"is a DICOM SEG that cannot be read: {exc}") from None


def _referenced_series(
    seg_path: Path, folder: Path, series_uid: str, instance_uids: set[str]
) -> SeriesInfo:
    """The series the SEG labels among those in ``folder``; refused with its UID if absent."""
    missing = series_uid or "(not named in the SEG)"
    try:
        found = discover(folder)
    except ScanError as exc:
        raise ScanError(
            seg_path, f"references series {missing}, which is not in {folder} ({exc.reason})"
        ) from None
    stacks = [
        s for s in found if s.loadable and s.kind not in (SeriesKind.SEGMENTATION, SeriesKind.FILE)
    ]
    if series_uid:
        matches = [s for s in stacks if s.uid == series_uid]
    else:  # no ReferencedSeriesSequence: the series that holds the images its frames name
        matches = [s for s in stacks if instance_uids & set(_instance_uids(s))]
    if not matches:
        raise ScanError(seg_path, f"references series {missing}, which is not in {folder}")
    if len(matches) > 1 and instance_uids:  # a series split in parts: the one it names
        named = [s for s in matches if instance_uids & set(_instance_uids(s))]
        matches = named or matches
    return matches[0]


def _instance_uids(series: SeriesInfo) -> list[str]:
    """The SOP Instance UID of each slice of ``series``, in its slice order."""
    uids = []
    for ref in series.slices:
        header = pydicom.dcmread(
            ref.path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
        )
        uids.append(str(header.get("SOPInstanceUID", "")))
    return uids


def _grid_index(scan: Volume, position: tuple[float, float, float]) -> int | None:
    """The slice index of a plane's top-left position, when it is a voxel of the scan's grid
    (in-plane offset 0, on a slice): None when it lies off the grid."""
    x, y, z = scan.lps_to_index(position)
    nearest = round(z)
    if max(abs(x), abs(y), abs(z - nearest)) > TOLERANCE_VOXELS:
        return None
    return nearest if 0 <= nearest < scan.shape_zyx[0] else None


def _slice_of_uid(series: SeriesInfo, scan: Volume) -> dict[str, int]:
    """SOP Instance UID -> slice index in ``scan``, for the slices that lie on its grid (a
    resampled uneven series may have slices between grid planes: those are left out)."""
    mapping = {}
    for uid, ref in zip(_instance_uids(series), series.slices, strict=True):
        index = _grid_index(scan, ref.position_lps_mm)
        if uid and index is not None:
            mapping[uid] = index
    return mapping


def _check_plane(seg: hd.seg.Segmentation, scan: Volume, path: Path, reference: SeriesInfo) -> None:
    """Refuse frames of another size, pixel spacing or orientation than the reference slices."""
    _slices, rows, columns = scan.shape_zyx
    where = f"series {reference.uid}"
    if (int(seg.Rows), int(seg.Columns)) != (rows, columns):
        raise ScanError(
            path,
            f"its frames are {seg.Columns}x{seg.Rows} pixels but the slices of {where} are "
            f"{columns}x{rows}: another grid; it is not resampled here",
        )
    spacing = _functional_value(seg, "PixelMeasuresSequence", "PixelSpacing")
    if spacing is not None and len(spacing) == 2:
        row_mm, column_mm = spacing
        expected = (scan.spacing_xyz_mm[1], scan.spacing_xyz_mm[0])
        if not np.allclose((row_mm, column_mm), expected, rtol=_GRID_TOLERANCE):
            raise ScanError(
                path,
                f"its frames have pixel spacing {row_mm:g} x {column_mm:g} mm but {where} has "
                f"{expected[0]:g} x {expected[1]:g} mm: another grid; it is not resampled here",
            )
    orientation = _functional_value(seg, "PlaneOrientationSequence", "ImageOrientationPatient")
    if orientation is not None:
        direction = scan.direction_matrix()
        expected_cosines = np.concatenate([direction[:, 0], direction[:, 1]])
        cosines = np.asarray(orientation)
        if cosines.shape != (6,) or not np.allclose(
            cosines, expected_cosines, atol=_GRID_TOLERANCE
        ):
            raise ScanError(
                path,
                f"its frames are oriented {_cosines_text(cosines)} but {where} is "
                f"{_cosines_text(expected_cosines)}: another grid; it is not resampled here",
            )


def _cosines_text(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def _functional_value(seg: hd.seg.Segmentation, sequence: str, keyword: str) -> list[float] | None:
    """A functional-group value (numbers), shared or of the first frame (None where neither
    has it)."""
    for groups in (
        seg.get("SharedFunctionalGroupsSequence", []),
        seg.get("PerFrameFunctionalGroupsSequence", [])[:1],
    ):
        for group in groups:
            for item in group.get(sequence, []):
                value = item.get(keyword)
                if value is not None:
                    return [float(v) for v in value]
    return None


def _frame_position(frame: object) -> tuple[float, float, float] | None:
    for item in getattr(frame, "PlanePositionSequence", []):
        value = item.get("ImagePositionPatient")
        if value is not None and len(value) == 3:
            x, y, z = (float(v) for v in value)
            return (x, y, z)
    return None


def _check_frame_positions(
    seg: hd.seg.Segmentation,
    frames: list,
    scan: Volume,
    slice_of_uid: dict[str, int],
    path: Path,
    reference: SeriesInfo,
) -> None:
    """A frame placed by the image it names must also lie where that image lies."""
    for number, frame in enumerate(frames, start=1):
        position = _frame_position(frame)
        if position is None:
            continue
        named = {slice_of_uid[u] for u in frame_source_uids(frame) if u in slice_of_uid}
        if _grid_index(scan, position) not in named:
            raise ScanError(
                path,
                f"frame {number} names a slice of series {reference.uid} but lies at "
                f"{_position_text(position)} mm, off that slice: another grid; it is not "
                "resampled here",
            )


def _position_text(position: tuple[float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in position) + ")"


def _placed_by_uids(
    seg: hd.seg.Segmentation, scan: Volume, slice_of_uid: dict[str, int]
) -> dict[int, np.ndarray]:
    """Segment number -> its mask on the scan's grid, frames placed by the images they name.

    Spatial locations were checked here (plane and positions), which is why highdicom's own
    check of the optional SpatialLocationsPreserved attribute is not asked for.
    """
    uids = list(slice_of_uid)
    indices = np.asarray([slice_of_uid[u] for u in uids])
    placed = {}
    for number in seg.segment_numbers:
        pixels = seg.get_pixels_by_source_instance(
            uids,
            segment_numbers=[number],
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
        )
        mask = np.zeros(scan.shape_zyx, dtype=bool)
        mask[indices] = _inside(pixels[..., 0])
        placed[int(number)] = mask
    return placed


def _placed_by_positions(
    seg: hd.seg.Segmentation, scan: Volume, path: Path, reference: SeriesInfo
) -> dict[int, np.ndarray]:
    """Segment number -> its mask on the scan's grid, each frame placed by its position."""
    placed = {}
    for number in seg.segment_numbers:
        try:
            volume = seg.get_volume(segment_numbers=[number])
        except (ValueError, RuntimeError) as exc:
            raise ScanError(
                path,
                f"its frames name no image of series {reference.uid} and their positions do "
                f"not form a volume ({exc})",
            ) from None
        affine = np.asarray(volume.affine, dtype=float)
        array = volume.array
        mask = np.zeros(scan.shape_zyx, dtype=bool)
        if array.shape[1:3] != scan.shape_zyx[1:]:
            raise ScanError(
                path,
                "its frames do not cover the slices of series "
                f"{reference.uid}: another grid; it is not resampled here",
            )
        if not np.allclose(
            affine[:3, 1],
            scan.direction_matrix()[:, 1] * scan.spacing_xyz_mm[1],
            atol=_GRID_TOLERANCE,
        ) or not np.allclose(
            affine[:3, 2],
            scan.direction_matrix()[:, 0] * scan.spacing_xyz_mm[0],
            atol=_GRID_TOLERANCE,
        ):
            raise ScanError(
                path,
                f"its frames' rows and columns do not run along those of "
                f"series {reference.uid}: another grid; it is not resampled here",
            )
        for k in range(array.shape[0]):
            x, y, z = (float(v) for v in affine[:3, :3] @ (k, 0.0, 0.0) + affine[:3, 3])
            index = _grid_index(scan, (x, y, z))
            if index is None:
                raise ScanError(
                    path,
                    f"a frame lies at {_position_text((x, y, z))} mm, on no slice of series "
                    f"{reference.uid}: another grid; it is not resampled here",
                )
            mask[index] |= _inside(array[k, ..., 0])
        placed[int(number)] = mask
    return placed


def _inside(pixels: np.ndarray) -> np.ndarray:
    """A frame's pixels as in/out: binary (and label-map) frames as stored, fractional ones
    (rescaled to 0..1 by highdicom) at one half."""
    if np.issubdtype(pixels.dtype, np.floating):
        return pixels >= 0.5
    return pixels > 0


def _combined(
    placed: dict[int, np.ndarray],
    shape_zyx: tuple[int, int, int],
    names: dict[int, str],
    path: Path,
) -> tuple[np.ndarray, list[str]]:
    """One uint8 label map (value = segment number); overlaps go to the higher number."""
    too_high = [n for n in placed if not 0 < n <= _MAX_LABEL]
    if too_high:
        raise ScanError(
            path, f"segment number {too_high[0]} does not fit a label map of values 1-{_MAX_LABEL}"
        )
    labels = np.zeros(shape_zyx, dtype=np.uint8)
    warnings = []
    for number in sorted(placed):
        mask = placed[number]
        taken = labels[mask]
        overlapped = np.unique(taken[taken > 0])
        for earlier in overlapped:
            count = int(np.count_nonzero(taken == earlier))
            warnings.append(
                f"segments {earlier} ({names.get(int(earlier), '')}) and {number} "
                f"({names.get(number, '')}) overlap in {count} voxel(s): they are labelled "
                f"{number}, the higher segment number"
            )
        labels[mask] = number
    return labels, warnings
