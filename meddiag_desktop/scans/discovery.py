"""Find what a folder holds: DICOM series split into what can be stacked, plus image files.

One DICOM SeriesInstanceUID is not one volume: scanners put 3-plane localizers, secondary
captures, several image sizes, echoes or time points under one UID. Stacking those gives a wrong
volume, so each file is classified from its header and only compatible slices are grouped. Every
group that cannot become a 3-D volume says why, in words a radiologist understands.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np

from meddiag_desktop.domain import (
    PixelFormat,
    Progress,
    ScanMetadata,
    SeriesInfo,
    SeriesKind,
    SliceRef,
    Vector3,
)
from meddiag_desktop.scans import file_formats, multiframe, seg_headers, sop_classes
from meddiag_desktop.scans.dicom_header import (
    DicomHeader,
    HeaderReader,
    decimal_values,
    frame_count,
    image_type_words,
)
from meddiag_desktop.scans.errors import NotDicomError, ScanError
from meddiag_desktop.scans.slice_checks import (
    PLAUSIBLE_PIXEL_MM,
    left_out_warning,
    unlike_their_series,
    unusable_slices,
)
from meddiag_desktop.scans.slice_geometry import analyse_stack, outlying_slices

ProgressCallback = Callable[[Progress], None]

_IGNORED_NAMES = {"DICOMDIR", "LICENSE", "README", "Thumbs.db", ".DS_Store"}
_PROGRESS_EVERY = 64


def discover(path: Path | str, progress: ProgressCallback | None = None) -> list[SeriesInfo]:
    """List every series (and image file) under ``path``, from headers only.

    Raises :class:`ScanError` when ``path`` does not exist or holds nothing readable.
    """
    root = Path(path)
    if not root.exists():
        raise ScanError(root, "does not exist")
    files = [(root, str(root), root.name)] if root.is_file() else _walk(root)
    headers: list[DicomHeader] = []
    others: list[SeriesInfo] = []
    unreadable: list[ScanError] = []
    strangers: list[Path] = []  # files that are not DICOM, among those that are
    read = HeaderReader().read  # the files of a series share a layout: read it once
    is_volume_file = _VolumeFileNames()
    for index, (file, location, name) in enumerate(files):
        if progress is not None and index % _PROGRESS_EVERY == 0:
            progress(
                Progress(
                    index / max(len(files), 1), "reading headers", f"{index} of {len(files)} files"
                )
            )
        if is_volume_file(file, name):
            others.append(file_formats.describe(file))
            continue
        try:
            headers.append(read(file, location))
        except NotDicomError:
            if root.is_file():
                raise ScanError(
                    file,
                    "is neither DICOM nor a supported image format "
                    f"({file_formats.SUPPORTED_TEXT})",
                ) from None
            strangers.append(file)
        except ScanError as exc:
            if root.is_file():
                raise  # the one file asked for: its own error, not a listing of nothing
            unreadable.append(exc)
    if progress is not None:
        progress(Progress(1.0, "grouping series", f"{len(files)} files read"))
    series = group_headers(headers)
    # A DICOM SEG names the series it labels: say whether this folder holds it.
    series = seg_headers.with_references(
        series, ((h.sop_instance_uid, h.series_uid) for h in headers)
    )
    # Files whose series is unknown (unreadable, or cut before their UIDs) may be its slices.
    lost = [(e.path, e.reason) for e in unreadable]
    lost += [(h.path, h.damage) for h in headers if h.damage and not h.series_uid]
    if strangers:
        series = [_warn_of_look_alikes(s, strangers) for s in series]
    if lost:
        series = [_warn_of_lost_files(s, lost) for s in series]
    series += others
    if unreadable:
        series.append(_unreadable_series(unreadable))
    if not series:
        raise ScanError(root, "holds no DICOM series or image files")
    return series


def _name_pattern(name: str) -> str:
    """A file name with its digits as '0': the slices of a series are named alike."""
    return _DIGITS.sub("0", name)


_DIGITS = re.compile(r"\d")


def _warn_of_look_alikes(series: SeriesInfo, strangers: list[Path]) -> SeriesInfo:
    """A file that is not DICOM (a slice cut inside its preamble looks like none) but is
    named like a series' slices and sits among them may be one of them."""
    if not series.loadable or series.kind is SeriesKind.FILE:
        return series
    folders = {f.parent for f in series.files}
    near = [path for path in strangers if path.parent in folders]
    if not near:
        return series
    patterns = {_name_pattern(f.name) for f in series.files}
    alike = [path for path in near if _name_pattern(path.name) in patterns]
    if not alike:
        return series
    shown = ", ".join(path.name for path in alike[:3])
    more = f" (and {len(alike) - 3} more)" if len(alike) > 3 else ""
    note = (
        f"{len(alike)} file(s) named like this series' slices are not readable DICOM "
        f"({shown}{more}; cut short or damaged?): it may be missing slices."
    )
    return replace(series, warnings=(*series.warnings, note))


def _warn_of_lost_files(series: SeriesInfo, lost: list[tuple[Path, str]]) -> SeriesInfo:
    """A loadable series beside files nobody can place may lack slices without a visible gap."""
    folders = {f.parent for f in series.files}
    near = [(path, reason) for path, reason in lost if path.parent in folders]
    if not series.loadable or not near:
        return series
    shown = "; ".join(f"{path.name} {reason}" for path, reason in near[:3])
    more = f" (and {len(near) - 3} more)" if len(near) > 3 else ""
    note = (
        f"{len(near)} damaged or unreadable file(s) beside this series ({shown}{more}): "
        "it may be missing slices."
    )
    return replace(series, warnings=(*series.warnings, note))


class _VolumeFileNames:
    """:func:`file_formats.is_volume_file`, asked once per name ending: it depends on the
    name's suffix only (".nii.gz" included), and a folder holds hundreds of "*.dcm"."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}
        self._by_tail: dict[str, bool] = {}  # by the name from its last dot on, as written

    def __call__(self, path: Path, name: str | None = None) -> bool:
        """Whether ``path`` (whose name is ``name``, when known) is a volume file."""
        name = path.name if name is None else name
        cut = name.rfind(".")
        tail = name[cut:] if cut > 0 else ""  # "" is never stored
        known = self._by_tail.get(tail)
        if known is not None:
            return known
        lower = name.lower()
        dot = lower.rfind(".")  # the suffix as pathlib finds it
        ending = (
            ".nii.gz"
            if lower.endswith(".nii.gz")
            else lower[dot:]
            if 0 < dot < len(lower) - 1
            else ""
        )
        known = self._known.get(ending)
        if known is None:
            known = self._known[ending] = file_formats.is_volume_file(path)
        # Names that share their tail share their ending, but for ".gz" (".nii.gz" or not).
        if tail and tail.lower() != ".gz":
            self._by_tail[tail] = known
        return known


def _walk(root: Path) -> list[tuple[Path, str, str]]:
    """(path, the path as a string, the name) of every file: strings at hand are cheaper than
    the Path's own (formatted or parsed on first use). Built a folder at a time, with map and
    zip: a loop in Python costs more per file than the listing itself."""
    files: list[tuple[Path, str, str]] = []
    visited = {_identity(str(root))}
    # Symbolic links to folders are followed (a folder of links to series is a common way to
    # gather a study), each real folder once: a link to an ancestor would otherwise recurse
    # until the path is too long.
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = _unvisited(folder, sorted(d for d in dirs if not d.startswith(".")), visited)
        child = _child_maker(Path(folder))
        prefix = os.path.join(folder, "")  # the folder and a separator
        kept = [
            name
            for name in sorted(names)
            if not (name.startswith((".", "LICENSE")) or name in _IGNORED_NAMES)
        ]
        files += zip(map(child, kept), [prefix + name for name in kept], kept, strict=True)
    return files


def _identity(location: str) -> tuple[int, int]:
    """(device, inode) of a folder, the same whichever link leads to it."""
    info = os.stat(location)
    return info.st_dev, info.st_ino


def _unvisited(folder: str, dirs: list[str], visited: set[tuple[int, int]]) -> list[str]:
    """The subfolders of ``folder`` not walked yet, noting them as walked."""
    kept = []
    for name in dirs:
        try:
            identity = _identity(os.path.join(folder, name))
        except OSError:
            continue  # vanished, or a link whose target cannot be reached
        if identity not in visited:
            visited.add(identity)
            kept.append(name)
    return kept


def _child_maker(folder: Path) -> Callable[[str], Path]:
    """``folder / name`` for a name os.walk listed: pathlib's own fast path where it has one
    (``iterdir`` uses it; ``/`` parses the name again: 3 us a file, a tenth of discovery)."""
    fast = getattr(folder, "_make_child_relpath", None)
    return fast if callable(fast) else folder.joinpath


def group_headers(headers: list[DicomHeader]) -> list[SeriesInfo]:
    """Split headers into series and series into stackable parts."""
    by_uid: dict[str, list[DicomHeader]] = defaultdict(list)
    for header in _unique_instances(headers):
        by_uid[header.series_uid or f"no-uid:{header.path.parent}"].append(header)
    result: list[SeriesInfo] = []
    for uid, members in by_uid.items():
        parts = _split_series(members)
        parts.sort(key=lambda p: (not p.loadable, -len(p.files)))
        if len(parts) == 1:
            result.append(replace(parts[0], key=uid))
        else:
            result.extend(replace(p, key=f"{uid}#{n}") for n, p in enumerate(parts, start=1))
    result.sort(key=lambda s: (s.metadata.study_uid, _series_number(s), s.key))
    return result


def _series_number(series: SeriesInfo) -> float:
    try:
        return float(series.metadata.series_number)
    except ValueError:
        return float("inf")


def _unique_instances(headers: list[DicomHeader]) -> list[DicomHeader]:
    """Drop copies of the same instance (the same SOPInstanceUID in two files)."""
    seen: set[str] = set()
    unique = []
    for header in headers:
        uid = header.sop_instance_uid
        if uid and uid in seen:
            continue
        seen.add(uid)
        unique.append(header)
    return unique


def metadata_of(header: DicomHeader) -> ScanMetadata:
    return ScanMetadata(
        modality=header.modality,
        patient_name=header.patient_name.replace("^", " ").strip(),
        patient_id=header.patient_id,
        patient_birth_date=header.patient_birth_date,
        patient_sex=header.patient_sex,
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        study_date=header.study_date,
        series_date=header.series_date,
        study_description=header.study_description,
        series_description=header.series_description,
        body_part_examined=header.body_part_examined.strip(),
        protocol_name=header.protocol_name,
        series_number=header.series_number,
        institution=header.institution,
        manufacturer=header.manufacturer,
        manufacturer_model=header.manufacturer_model,
    )


def _split_series(members: list[DicomHeader]) -> list[SeriesInfo]:
    """Classify each file and group the stackable slices by orientation, size and echo."""
    parts: list[SeriesInfo] = []
    not_stackable: dict[tuple[SeriesKind, str], list[DicomHeader]] = defaultdict(list)
    stackable: dict[tuple, list[int]] = defaultdict(list)  # indices into members
    positions, points = _positions(members)
    # NaN positions, zero pixel spacing...: no volume can be built with such slices
    unusable = unusable_slices(members, positions, points)
    left_out: list[tuple[DicomHeader, str]] = []
    # The files of a series share nearly every field classify() reads (most as the very same
    # objects, from HeaderReader's layout): work each distinct combination out once.
    known: dict[tuple, tuple[SeriesKind, str, tuple | None]] = {}
    for index, (header, position) in enumerate(zip(members, positions, strict=True)):
        fields = _CLASSIFIED_FIELDS(header)
        key = (fields, len(position))
        found = known.get(key)
        if found is None:
            found = known[key] = _classified(fields, len(position))
        kind, reason, stack_key = found
        if index in unusable and (stack_key is not None or reason in _GEOMETRY_REASONS):
            left_out.append((header, unusable[index]))
        elif stack_key is not None:
            stackable[stack_key].append(index)
        elif kind is SeriesKind.MULTI_FRAME:
            parts.append(multiframe.describe(header, metadata_of(header)))
        elif kind is SeriesKind.SEGMENTATION:
            size = (header.columns, header.rows, frame_count(header.number_of_frames))
            parts.append(seg_headers.describe(header.path, metadata_of(header), size))
        else:
            not_stackable[(kind, reason)].append(header)
    for (kind, reason), group in not_stackable.items():
        parts.append(_unstackable_part(group, kind, reason))
    multi_plane = len({key[0] for key in stackable}) > 1
    for indices in stackable.values():
        unlike = unlike_their_series([members[i] for i in indices])
        odd = [(members[i].path.name, unlike[n]) for n, i in enumerate(indices) if n in unlike]
        if unlike:  # one 32-bit slice among 16-bit ones: it cannot be read the series' way
            indices = [i for n, i in enumerate(indices) if n not in unlike]
        if points is None:
            group_points = None
        else:
            group_points = points if len(indices) == len(members) else points[indices]
        part = _stack_part(
            [members[i] for i in indices],
            [positions[i] for i in indices],
            group_points,
            multi_plane,
        )
        if odd:
            part = _with_left_out(part, odd)
        parts.append(part)
    if left_out:
        parts = _with_unusable(parts, left_out)
    parts = _with_strays(parts)
    damaged = [h for h in members if h.damage]
    if damaged:
        # Loading around a damaged slice would silently interpolate over it: refuse instead.
        reason = f"{_damage_text(damaged)}; copy the series again from its source"
        parts = [
            replace(p, loadable=False, reason=reason, warnings=())
            if p.loadable or p.kind is SeriesKind.UNREADABLE
            else p
            for p in parts
        ]
    return parts


def _with_left_out(part: SeriesInfo, left_out: list[tuple[str, str]]) -> SeriesInfo:
    """``part`` with a warning that names the slices (file name, why) left out of it, first:
    it explains the gap an uneven-spacing warning may report."""
    note = left_out_warning(left_out, len(part.files))
    return replace(part, warnings=(note, *part.warnings))


# Parts that are no scan of their own but may be slices of the series' volume gone astray (a
# damaged header that hides the pixel data, a flipped SamplesPerPixel): the volume says so.
# Localizers and screen captures often share a series with its slices, by design.
_STRAY_KINDS = (SeriesKind.NON_IMAGE, SeriesKind.COLOUR, SeriesKind.UNREADABLE)
_STACKS = (SeriesKind.VOLUME, SeriesKind.TIME_SERIES, SeriesKind.SINGLE_IMAGE)
_COUNT_PREFIX = re.compile(r"^\d+ (files?|damaged or unreadable DICOM file\(s\)): ")


def _with_strays(parts: list[SeriesInfo]) -> list[SeriesInfo]:
    """The parts of one series, the loadable stacks warned of files of the same series that
    are in none of them."""
    strays = [p for p in parts if not p.loadable and p.kind in _STRAY_KINDS]
    if not strays or not any(p.loadable and p.kind in _STACKS for p in parts):
        return parts
    files = [
        (path.name, _COUNT_PREFIX.sub("", part.reason)) for part in strays for path in part.files
    ]
    shown = "; ".join(f"{name} ({reason})" for name, reason in files[:3])
    more = f" (and {len(files) - 3} more)" if len(files) > 3 else ""
    note = (
        f"This series also holds {len(files)} file(s) that are not part of this volume: "
        f"{shown}{more}. If they are its slices, the volume lacks them."
    )
    return [
        replace(p, warnings=(*p.warnings, note)) if p.loadable and p.kind in _STACKS else p
        for p in parts
    ]


def _with_unusable(
    parts: list[SeriesInfo], left_out: list[tuple[DicomHeader, str]]
) -> list[SeriesInfo]:
    """The parts of a series whose slices ``left_out`` (header, why) were unusable: the
    loadable ones say which slices they lack; with none loadable, those slices are a refused
    part of their own that says why."""
    named = [(header.path.name, why) for header, why in left_out]
    if any(p.loadable and p.kind in _STACKS for p in parts):
        return [_with_left_out(p, named) if p.loadable and p.kind in _STACKS else p for p in parts]
    shown = "; ".join(f"{name}: {why}" for name, why in named[:3])
    more = f" (and {len(named) - 3} more)" if len(named) > 3 else ""
    first = left_out[0][0]
    refused = SeriesInfo(
        key="",
        kind=SeriesKind.VOLUME,
        metadata=metadata_of(first),
        files=tuple(header.path for header, _why in left_out),
        size_xyz=(first.columns, first.rows, len(left_out)),
        loadable=False,
        reason=f"{len(named)} file(s) without usable geometry, so no volume: {shown}{more}",
    )
    return [*parts, refused]


# What classify() reads (but the position, parsed apart) and what splits stackable slices.
_CLASSIFIED_FIELDS = operator.attrgetter(
    "damage",
    "sop_class_uid",
    "has_pixels",
    "samples_per_pixel",
    "photometric",
    "image_type",
    "number_of_frames",
    "shared_functional_groups",
    "series_description",
    "image_orientation",
    "pixel_spacing",
    "rows",
    "columns",
    "echo_numbers",
)


def _classified(fields: tuple, position_values: int) -> tuple[SeriesKind, str, tuple | None]:
    """(kind, reason, key of the stack it joins when it is a stackable slice) from the
    fields of :data:`_CLASSIFIED_FIELDS` and the number of position values."""
    (damage, sop_class, has_pixels, samples, photometric, image_type, frames, shared,
     description, orientation, spacing, rows, columns, echo) = fields  # fmt: skip
    kind, reason = _classify(
        damage,
        sop_class,
        has_pixels,
        samples,
        photometric,
        image_type,
        frames,
        shared,
        description,
        position_values,
        orientation,
        spacing,
    )
    if kind is not SeriesKind.VOLUME:
        return kind, reason, None
    return kind, reason, (_rounded_orientation(orientation), rows, columns, echo)


def _positions(
    headers: list[DicomHeader],
) -> tuple[list[tuple[float, ...]], np.ndarray | None]:
    """Every header's ImagePositionPatient as ``header.floats`` gives it, and all of them as
    an (n, 3) array when each has three values (None otherwise): numpy makes that array from
    one flat list in half the time it takes from a list of tuples."""
    positions = [decimal_values(h.image_position) for h in headers]
    flat = list(itertools.chain.from_iterable(positions))
    if not positions or len(flat) != 3 * len(positions) or min(map(len, positions)) != 3:
        return positions, None
    return positions, np.array(flat).reshape(-1, 3)


@functools.lru_cache(maxsize=256)
def _rounded_orientation(text: str) -> tuple[float, ...]:
    """ImageOrientationPatient to 0.001, as the key that splits a series by plane."""
    return tuple(round(v, 3) for v in decimal_values(text))


def _damage_text(damaged: list[DicomHeader]) -> str:
    """Which files are damaged and how, for a reason shown to the user."""
    shown = "; ".join(f"{h.path.name} {h.damage}" for h in damaged[:3])
    more = f" (and {len(damaged) - 3} more)" if len(damaged) > 3 else ""
    noun = "file is" if len(damaged) == 1 else "files are"
    return f"{len(damaged)} {noun} damaged: {shown}{more}"


def classify(header: DicomHeader) -> tuple[SeriesKind, str]:
    """What one file is; VOLUME means 'a slice that may be stacked'."""
    return _classify(
        header.damage,
        header.sop_class_uid,
        header.has_pixels,
        header.samples_per_pixel,
        header.photometric,
        header.image_type,
        header.number_of_frames,
        header.shared_functional_groups,
        header.series_description,
        len(header.floats("image_position")),
        header.image_orientation,  # the same text in most files: a cache hit
        header.pixel_spacing,
    )


@functools.lru_cache(maxsize=512)
def _classify(
    damage: str,
    sop_class_uid: str,
    has_pixels: bool,
    samples_per_pixel: int,
    photometric: str,
    image_type: str,
    number_of_frames: str,
    shared_functional_groups: str,
    series_description: str,
    position_values: int,
    orientation: str,
    pixel_spacing: str,
) -> tuple[SeriesKind, str]:
    """:func:`classify` from exactly the fields it reads: the files of a series share them,
    so each combination is worked out once."""
    if damage:
        return SeriesKind.UNREADABLE, "damaged (truncated or corrupt): cannot be read"
    if sop_classes.is_segmentation(sop_class_uid):
        return SeriesKind.SEGMENTATION, ""  # labels for another series (seg_headers)
    non_image = sop_classes.non_image_reason(sop_class_uid)
    if non_image:
        return SeriesKind.NON_IMAGE, non_image
    if not has_pixels:
        return SeriesKind.NON_IMAGE, "holds no image (no pixel data)"
    if samples_per_pixel != 1 or photometric.startswith(("RGB", "YBR", "PALETTE")):
        return SeriesKind.COLOUR, (
            "colour images (such as screenshots or reports) cannot be read as a greyscale scan"
        )
    if sop_classes.is_secondary_capture(sop_class_uid):
        return SeriesKind.SECONDARY_CAPTURE, (
            "secondary capture (a picture of a screen or a report), not an acquired scan"
        )
    image_types = image_type_words(image_type)
    if "MOSAIC" in image_types:
        return SeriesKind.MOSAIC, (
            "Siemens mosaic (fMRI/diffusion slices tiled into one image): "
            "not supported; convert with a research tool such as dcm2niix"
        )
    if (
        frame_count(number_of_frames) > 1
        or shared_functional_groups
        or sop_classes.is_enhanced(sop_class_uid)
    ):
        return SeriesKind.MULTI_FRAME, ""
    if _is_localizer(image_types, series_description):
        return SeriesKind.LOCALIZER, (
            "scout/localizer (a 2-D planning image taken before the scan), not a 3-D volume"
        )
    if "PROJECTION IMAGE" in image_types:
        return SeriesKind.SECONDARY_CAPTURE, (
            "projection images (MIP/MinIP renderings made "
            "from another series), not an acquired volume"
        )
    if position_values != 3 or len(decimal_values(orientation)) != 6:
        return SeriesKind.NON_IMAGE, _NO_POSITION
    if len(decimal_values(pixel_spacing)) != 2:
        return SeriesKind.NON_IMAGE, _NO_SPACING
    return SeriesKind.VOLUME, ""


_NO_POSITION = (
    "images without position in the patient (no ImagePositionPatient/ImageOrientationPatient)"
)
_NO_SPACING = "images without pixel spacing: sizes would be unknown"
# A slice whose geometry is present but damaged is classified as having none: it is named
# as left out of its series instead (slice_checks.unusable_slices says why).
_GEOMETRY_REASONS = (_NO_POSITION, _NO_SPACING)


_LOCALIZER_WORDS = ("LOCALIZER", "LOCALISER", "SCOUT", "SURVEY", "TOPOGRAM", "SCANOGRAM", "PILOT")


def _is_localizer(image_types: tuple[str, ...], series_description: str) -> bool:
    """ImageType says so on most scanners; older MR only names it in the description."""
    if any(word in image_types for word in ("LOCALIZER", "SCOUT")):
        return True
    description = series_description.upper()
    return any(word in description for word in _LOCALIZER_WORDS)


def _unstackable_part(group: list[DicomHeader], kind: SeriesKind, reason: str) -> SeriesInfo:
    first = group[0]
    count = len(group)
    noun = "file" if count == 1 else "files"
    return SeriesInfo(
        key="",
        kind=kind,
        metadata=metadata_of(first),
        files=tuple(h.path for h in group),
        size_xyz=(first.columns, first.rows, count if first.rows else 0),
        loadable=False,
        reason=f"{count} {noun}: {reason}",
    )


def _stack_part(
    group: list[DicomHeader],
    group_positions: list[tuple[float, ...]],
    points: np.ndarray | None,
    multi_plane: bool,
) -> SeriesInfo:
    """Geometry of compatible slices; repeated positions mean time points (or echoes).

    ``points`` are the positions as an (n, 3) array, when the caller has them.
    """
    first = group[0]
    metadata = metadata_of(first)
    orientation = first.floats("image_orientation")
    spacing_row, spacing_col = first.floats("pixel_spacing")
    # classify() made sure every position has three values
    positions = cast("list[Vector3]", group_positions)
    geometry = analyse_stack(positions if points is None else points, orientation)
    if geometry.duplicates or geometry.closest_gap_mm <= _KEY_APART_MM:
        time_points, chosen = _first_time_point(group, positions)
    else:  # no two slices can share a rounded position: one time point (the usual case)
        time_points, chosen = 1, group
    warnings: list[str] = []
    if multi_plane:
        warnings.append(
            "This series holds images in several orientations; this part is one of them."
        )
    if time_points == 0:
        return SeriesInfo(
            key="",
            kind=SeriesKind.TIME_SERIES,
            metadata=metadata,
            files=tuple(h.path for h in group),
            size_xyz=(first.columns, first.rows, len(group)),
            loadable=False,
            reason=(
                f"{len(group)} files repeat slice positions unevenly (an incomplete time "
                "series or duplicated slices): it cannot be stacked into one volume"
            ),
        )
    chosen_positions = positions
    if chosen is not group:
        chosen_positions = cast("list[Vector3]", [h.floats("image_position") for h in chosen])
        geometry = analyse_stack(chosen_positions, orientation)
    if geometry.duplicates:
        return SeriesInfo(
            key="",
            kind=SeriesKind.VOLUME,
            metadata=metadata,
            files=tuple(h.path for h in group),
            size_xyz=(first.columns, first.rows, len(group)),
            loadable=False,
            reason=(
                "two or more slices lie at (almost) the same position: duplicated or "
                "overlapping slices cannot be stacked into one volume"
            ),
        )
    if time_points > 1:
        warnings.append(
            f"{time_points} time points (or repetitions) at the same positions: the "
            "first is loaded."
        )
    elif not geometry.regular:
        # Uneven or tilted may be one damaged position: resampling across it would stretch
        # the volume over metres. Leave such a slice out, and say so.
        outliers = outlying_slices(
            points if points is not None else np.asarray(positions), orientation
        )
        if outliers:
            named = [(group[i].path.name, why) for i, why in sorted(outliers.items())]
            keep = [i for i in range(len(group)) if i not in outliers]
            group = chosen = [group[i] for i in keep]
            chosen_positions = positions = [positions[i] for i in keep]
            geometry = analyse_stack(chosen_positions, orientation)
            warnings.append(left_out_warning(named, len(group)))
    warnings.extend(geometry.describe_problems())
    stacked = slice_count = len(geometry.order)
    if slice_count == 1:
        spacing_z = first.number("slice_thickness", 0.0)
        if not 0 < spacing_z < PLAUSIBLE_PIXEL_MM:  # absent, zero, NaN...
            if first.slice_thickness:
                warnings.append(
                    f"SliceThickness ({first.slice_thickness[:40]}) is not a usable size: "
                    "1 mm assumed."
                )
            spacing_z = 1.0
        warnings.append("A single slice: shown as a volume one slice thick.")
    else:
        spacing_z = geometry.spacing_mm
    if not geometry.regular:
        slice_count = geometry.slice_count
    kind = (
        SeriesKind.SINGLE_IMAGE
        if stacked == 1
        else (SeriesKind.TIME_SERIES if time_points > 1 else SeriesKind.VOLUME)
    )
    return SeriesInfo(
        key="",
        kind=kind,
        metadata=metadata,
        files=tuple(h.path for h in group),
        size_xyz=(first.columns, first.rows, slice_count),
        spacing_xyz_mm=(spacing_col, spacing_row, spacing_z),
        loadable=True,
        warnings=tuple(warnings),
        time_points=time_points,
        slices=_slice_refs(chosen, chosen_positions, geometry.order),
        orientation=orientation,
        pixel_format=PixelFormat(
            rows=first.rows,
            columns=first.columns,
            bits_allocated=first.bits_allocated,
            bits_stored=first.bits_stored or first.bits_allocated,
            signed=first.pixel_representation == 1,
            transfer_syntax=first.transfer_syntax,
        ),
    )


def _slice_refs(
    headers: list[DicomHeader], positions: list[Vector3], order: Sequence[int]
) -> tuple[SliceRef, ...]:
    """The slices in ``order``. The files of a series share the fields that decide how their
    pixels are read and rescaled: each combination is worked out once."""
    known: dict[tuple, tuple[float, float, bool]] = {}
    new = object.__new__
    refs = []
    for index in order:
        header = headers[index]
        key = _PIXEL_FIELDS(header)
        terms = known.get(key)
        if terms is None:
            terms = known[key] = _pixel_terms(header)
        offset = header.pixel_offset
        # SliceRef's own __init__ stores its five fields through the frozen dataclass's
        # object.__setattr__, three times the cost of the rest of this loop: store them in the
        # instance's __dict__ as that __init__ does (tests/scans/test_discovery_shortcuts.py
        # checks both give equal objects).
        ref = new(SliceRef)
        fields = ref.__dict__
        fields["path"] = header.path
        fields["position_lps_mm"] = positions[index]
        fields["rescale_slope"] = terms[0]
        fields["rescale_intercept"] = terms[1]
        fields["pixel_offset"] = offset if terms[2] and offset >= 0 else -1
        refs.append(ref)
    return tuple(refs)


# What _pixel_terms reads: the fields that decide how a slice's pixels are read and rescaled.
_PIXEL_FIELDS = operator.attrgetter(
    "rows",
    "columns",
    "bits_allocated",
    "bits_stored",
    "high_bit",
    "transfer_syntax",
    "pixel_length",
    "rescale_slope",
    "rescale_intercept",
)


def _pixel_terms(header: DicomHeader) -> tuple[float, float, bool]:
    """(rescale slope, intercept, whether the pixels can be read raw from their offset)."""
    expected = header.rows * header.columns * max(header.bits_allocated // 8, 1)
    slope = decimal_values(header.rescale_slope)  # header.number(), without its per-file cache
    intercept = decimal_values(header.rescale_intercept)
    # The raw path keeps the low BitsStored bits: high-aligned values (HighBit above
    # BitsStored - 1, old ACR-NEMA files) are left to the decoder, which shifts them.
    low_aligned = header.high_bit in (-1, (header.bits_stored or header.bits_allocated) - 1)
    return (
        (slope[0] if slope else 1.0) or 1.0,
        intercept[0] if intercept else 0.0,
        header.uncompressed and header.pixel_length == expected and low_aligned,
    )


# Two positions rounded to 0.01 mm per coordinate can only be equal when the slices lie
# within 0.01 * sqrt(3) mm of each other along any direction, the slice normal included.
_KEY_APART_MM = 0.02


def _first_time_point(
    group: list[DicomHeader], positions: Sequence[tuple[float, ...]]
) -> tuple[int, list[DicomHeader]]:
    """(number of time points, slices of the first); 0 time points when repeats are uneven."""
    counts: dict[tuple[float, ...], list[DicomHeader]] = defaultdict(list)
    for header, (x, y, z) in zip(group, positions, strict=True):
        counts[(round(x, 2), round(y, 2), round(z, 2))].append(header)
    repeats = {len(v) for v in counts.values()}
    if repeats == {1}:
        return 1, group
    if len(repeats) != 1:
        return 0, group
    first = [min(hs, key=_acquisition_order) for hs in counts.values()]
    return repeats.pop(), first


def _acquisition_order(header: DicomHeader) -> tuple[float, float, float, float]:
    return (
        header.number("temporal_position", 0.0),
        header.number("acquisition_number", 0.0),
        header.number("trigger_time", 0.0),
        header.number("instance_number", 0.0),
    )


def _unreadable_series(errors: list[ScanError]) -> SeriesInfo:
    shown = "; ".join(f"{e.path.name}: {e.reason}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return SeriesInfo(
        key="unreadable",
        kind=SeriesKind.UNREADABLE,
        metadata=ScanMetadata(series_description="files that could not be read"),
        files=tuple(e.path for e in errors),
        loadable=False,
        reason=f"{len(errors)} damaged or unreadable DICOM file(s): {shown}{more}",
    )
