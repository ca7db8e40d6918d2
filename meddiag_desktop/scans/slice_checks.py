"""Which slices of a DICOM series cannot be stacked with the rest, and why, in words.

A header can hold numbers no volume can be built from (a NaN or astronomically far position, a
zero pixel spacing, a degenerate orientation, a NaN rescale) or a pixel layout unlike the rest
of its series (one slice stored in 32 bits among 16-bit ones). Stacked anyway, such a slice
gives NaN spacing, a volume resampled across metres, or a slice of garbage that looks like an
image. Discovery leaves such slices out, names them in a warning on the series, and refuses a
series none of whose slices is usable.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Sequence

import numpy as np

from meddiag_desktop.scans.dicom_header import DicomHeader, decimal_values

# Scanner coordinates stay within a few metres of the isocentre; anything beyond 100 m is a
# damaged value (1e308 is finite and would overflow every later computation).
PLAUSIBLE_POSITION_MM = 1e5
# A pixel larger than a metre is no scan either.
PLAUSIBLE_PIXEL_MM = 1e3
# ImageOrientationPatient holds two unit vectors at right angles; stored rounding leaves them a
# little off, a damaged value far off.
_UNIT_TOLERANCE = 0.1
_RIGHT_ANGLE_COSINE = 0.1

_TEXT_FIELDS = operator.attrgetter(
    "image_orientation", "pixel_spacing", "rescale_slope", "rescale_intercept"
)


def unusable_slices(
    headers: Sequence[DicomHeader],
    positions: Sequence[tuple[float, ...]],
    points: np.ndarray | None,
) -> dict[int, str]:
    """Index -> why, for the slices whose geometry or rescale is not a usable number.

    ``positions`` are each header's ImagePositionPatient values and ``points`` all of them as
    an (n, 3) array when each has three (what discovery has at hand): the usual series is
    checked with one numpy call and one cached look-up per file.
    """
    found: dict[int, str] = {}
    if points is None or not _plausible(points):
        for index, position in enumerate(positions):
            text = headers[index].image_position
            if text and (len(position) != 3 or not _plausible(np.asarray(position))):
                found[index] = _value_problem("ImagePositionPatient", text)
    known: dict[tuple[str, ...], str] = {}
    for index, header in enumerate(headers):
        if index in found:
            continue
        texts = _TEXT_FIELDS(header)
        problem = known.get(texts)
        if problem is None:
            problem = known[texts] = _text_problem(*texts)
        if problem:
            found[index] = problem
    return found


def _plausible(points: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(points) < PLAUSIBLE_POSITION_MM))  # False for NaN too


def _value_problem(field: str, text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"its {field} ({shown}) is not a valid, finite, plausible value"


def _text_problem(orientation: str, spacing: str, slope: str, intercept: str) -> str:
    """Why one of these header texts is unusable (present, but not the numbers it must hold);
    empty when none is. Absent values are not judged here: classification explains those."""
    values = decimal_values(orientation)
    if orientation and (len(values) != 6 or not _orthonormal(values)):
        return _value_problem("ImageOrientationPatient", orientation)
    values = decimal_values(spacing)
    if spacing and (len(values) != 2 or not all(0 < v < PLAUSIBLE_PIXEL_MM for v in values)):
        return _value_problem("PixelSpacing", spacing)
    for field, text in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
        values = decimal_values(text)
        if values and not math.isfinite(values[0]):
            return _value_problem(field, text)
    return ""


def frame_problem(
    position: Sequence[float],
    orientation: Sequence[float],
    spacing: Sequence[float],
    rescale: Sequence[float],
) -> str:
    """:func:`unusable_slices`' judgement of one frame of a multi-frame file, from its values
    (the functional groups are read by pydicom, not as texts); empty when usable."""
    if len(position) != 3 or len(orientation) != 6 or len(spacing) != 2:
        return "has no complete position, orientation and pixel spacing"
    if not _plausible(np.asarray(position, dtype=float)):
        return _value_problem("ImagePositionPatient", _joined(position))
    if not _orthonormal(tuple(orientation)):
        return _value_problem("ImageOrientationPatient", _joined(orientation))
    if not all(0 < v < PLAUSIBLE_PIXEL_MM for v in spacing):
        return _value_problem("PixelSpacing", _joined(spacing))
    if not all(math.isfinite(v) for v in rescale):
        return _value_problem("RescaleSlope/RescaleIntercept", _joined(rescale))
    return ""


def _joined(values: Sequence[float]) -> str:
    return "\\".join(f"{v:g}" for v in values)


def _orthonormal(values: tuple[float, ...]) -> bool:
    """Two unit vectors at right angles, within stored rounding (NaN is neither)."""
    row, column = np.asarray(values[:3]), np.asarray(values[3:])
    with np.errstate(invalid="ignore", over="ignore"):
        lengths = [float(np.linalg.norm(row)), float(np.linalg.norm(column))]
        if not all(abs(length - 1) < _UNIT_TOLERANCE for length in lengths):
            return False
        return abs(float(row @ column)) < _RIGHT_ANGLE_COSINE


# The fields that decide how a slice's stored values are read and shown, beyond the size and
# orientation that split a series already: a slice that differs cannot be read with the
# series' layout. Transfer syntax and rescale may differ: each slice is decoded and rescaled
# by its own.
_LAYOUT_FIELDS = (
    ("BitsAllocated", "bits_allocated"),
    ("BitsStored", "bits_stored"),
    ("HighBit", "high_bit"),
    ("PixelRepresentation", "pixel_representation"),
    ("PhotometricInterpretation", "photometric"),
    ("PlanarConfiguration", "planar_configuration"),
    ("PixelSpacing", "pixel_spacing"),
)
_LAYOUT = operator.attrgetter(*(name for _field, name in _LAYOUT_FIELDS))


def unlike_their_series(headers: Sequence[DicomHeader]) -> dict[int, str]:
    """Index -> why, for the slices whose pixel layout differs from the one most slices of
    ``headers`` (one stack: same orientation and size) share."""
    if len(set(map(_LAYOUT, headers))) == 1:  # the usual series, as stored: one layout
        return {}
    layouts = [_layout(header) for header in headers]
    counts = Counter(layouts)
    if len(counts) == 1:
        return {}
    common, _count = counts.most_common(1)[0]
    found = {}
    for index, layout in enumerate(layouts):
        if layout != common:
            differences = [
                f"{field} {_shown(own)}, not {_shown(usual)}"
                for (field, _name), own, usual in zip(_LAYOUT_FIELDS, layout, common, strict=True)
                if own != usual
            ]
            found[index] = (
                f"its pixels are stored unlike the other slices' ({'; '.join(differences)})"
            )
    return found


def _layout(header: DicomHeader) -> tuple:
    layout = list(_LAYOUT(header))
    layout[-1] = tuple(round(v, 4) for v in decimal_values(layout[-1]))  # PixelSpacing
    return tuple(layout)


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return "\\".join(f"{v:g}" for v in value) or "(none)"
    return str(value) if value != "" else "(none)"


def left_out_warning(left_out: Sequence[tuple[str, str]], kept: int) -> str:
    """One warning for the slices (file name, why) left out of a series of ``kept`` slices."""
    shown = "; ".join(f"{name} ({why})" for name, why in left_out[:3])
    more = f" (and {len(left_out) - 3} more)" if len(left_out) > 3 else ""
    noun = "slice" if len(left_out) == 1 else "slices"
    return (
        f"{len(left_out)} {noun} left out: {shown}{more}. The {kept} other slices are shown; "
        "the series may be incomplete."
    )
