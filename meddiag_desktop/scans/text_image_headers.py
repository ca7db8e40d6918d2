"""Size and geometry fields of the text-header formats (MetaImage .mha/.mhd, NRRD .nrrd/.nhdr).

SimpleITK accepts nonsense here without a word (measured with ITK 5.4): a ``DimSize`` or
``sizes`` with a damaged digit is read up to that digit; a MetaImage ``Offset`` of NaN or
infinity becomes 0, a negative ``ElementSpacing`` its absolute value with the axis left
unmirrored; an NRRD ``spacings: nan`` or a ``space directions`` entry of ``none`` for an image
axis becomes 1 mm. The header is read as text and such values refused, naming the field.
Non-orthonormal directions are left to :mod:`volume_geometry`, which checks what was read;
whether the data holds what the sizes declare, to :mod:`text_image_payload`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

_MAX_HEADER = 1 << 16
_METAIMAGE_ORIGIN = ("Offset", "Origin", "Position")
_METAIMAGE_DIRECTION = ("TransformMatrix", "Rotation", "Orientation")
_NRRD_VECTOR = re.compile(r"\(([^)]*)\)|none")
_NRRD_SPATIAL_KINDS = {"domain", "space"}


def read_head(path: Path) -> str:
    """The file's first bytes as text (latin-1 keeps every byte): its header and maybe data."""
    with open(path, "rb") as handle:
        return handle.read(_MAX_HEADER).decode("latin-1")


def header_problem(path: Path) -> str:
    """Why the file's geometry fields cannot be trusted; empty when they can (or are absent)."""
    name = path.name.lower()
    try:
        head = read_head(path)
    except OSError:
        return ""  # the reader says what is wrong with the file itself
    if name.endswith((".mha", ".mhd")):
        return _metaimage_problem(metaimage_fields(head))
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd_problem(nrrd_fields(head))
    return ""


def metaimage_fields(head: str) -> dict[str, str]:
    """``Key = value`` lines up to ``ElementDataFile`` (after which a .mha holds its data)."""
    fields: dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break  # binary data follows in a .mha
    return fields


def _numbers(text: str) -> list[float] | None:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        return None


def _sizes_problem(key: str, text: str | None) -> str:
    """ITK reads the digits before a damaged byte (``37`` with a flipped ``7`` became 3
    slices): sizes must be positive whole numbers, all of them."""
    if text is None:
        return ""
    values = text.split()
    if values and all(re.fullmatch(r"[0-9]+", v) and int(v) > 0 for v in values):
        return ""
    return f"has an invalid {key} in its header: {text!r} (each must be a positive whole number)"


def _metaimage_problem(fields: dict[str, str]) -> str:
    if problem := _sizes_problem("DimSize", fields.get("DimSize")):
        return problem
    spacing_text = fields.get("ElementSpacing")
    if spacing_text is not None:
        spacing = _numbers(spacing_text)
        if not spacing or not all(math.isfinite(v) and v > 0 for v in spacing):
            return (
                f"has an invalid voxel size in its header: ElementSpacing = {spacing_text!r} "
                "(each must be a positive number of millimetres)"
            )
    for key in _METAIMAGE_ORIGIN + _METAIMAGE_DIRECTION:
        if key in fields:
            values = _numbers(fields[key])
            if not values or not all(math.isfinite(v) for v in values):
                return f"has an invalid {key} in its header: {fields[key]!r} (not finite numbers)"
    return ""


def nrrd_fields(head: str) -> dict[str, str]:
    """``field: value`` lines (keys lower-cased) up to the blank line that ends the header."""
    fields: dict[str, str] = {}
    for line in head.splitlines()[1:]:  # the first line is the magic NRRD000x
        if not line.strip():
            break  # end of the header in an attached-data .nrrd
        if line.startswith("#") or ":=" in line:
            continue  # comments and key/value pairs carry no geometry
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _nrrd_problem(fields: dict[str, str]) -> str:
    if problem := _sizes_problem("sizes", fields.get("sizes")):
        return problem
    kinds = fields.get("kinds", "").split()
    spatial = [(k.lower() in _NRRD_SPATIAL_KINDS) for k in kinds]
    if "spacings" in fields:
        for axis, text in enumerate(fields["spacings"].split()):
            if spatial and axis < len(spatial) and not spatial[axis]:
                continue  # nan is how NRRD says "no spacing" for a vector or list axis
            value = _numbers(text)
            if not value or not (math.isfinite(value[0]) and value[0] != 0):
                return (
                    f"has an invalid voxel size in its header: spacings {fields['spacings']!r} "
                    f"(axis {axis} is {text})"
                )
    directions = fields.get("space directions")
    if directions is not None:
        vectors = [m.group(1) for m in _NRRD_VECTOR.finditer(directions)]
        for axis, vector in enumerate(vectors):
            is_spatial = spatial[axis] if axis < len(spatial) else True
            if vector is None:
                if is_spatial:
                    return (
                        f"has no voxel size or direction for image axis {axis} in its header "
                        f"(space directions: {directions})"
                    )
                continue
            values = _numbers(vector)
            if not values or not all(math.isfinite(v) for v in values) or not any(values):
                return f"has an invalid space direction for axis {axis}: ({vector})"
    origin = fields.get("space origin")
    if origin is not None:
        values = _numbers(origin.strip("() "))
        if not values or not all(math.isfinite(v) for v in values):
            return f"has an invalid space origin in its header: {origin}"
    return ""
