"""Read the few DICOM header fields discovery needs, fast, without decoding pixels.

pydicom parses every element of every file (about 0.6 ms for even a tiny header here), which
makes a 300-file folder slower to list than to load. Discovery needs about forty top-level
fields, so :func:`read_header` walks the element stream itself with ``struct`` (little-endian
transfer syntaxes, where nearly all files are) and falls back to pydicom for everything else.
It also notes where the pixel bytes start, so loading can read them straight into the volume.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pydicom.charset

from meddiag_desktop.scans.errors import NotDicomError, ScanError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
UNCOMPRESSED_LE = {IMPLICIT_LE, EXPLICIT_LE}

PIXEL_DATA = 0x7FE00010
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_SHORT_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FD",
    b"FL",
    b"IS",
    b"LO",
    b"LT",
    b"PN",
    b"SH",
    b"SL",
    b"SS",
    b"ST",
    b"TM",
    b"UI",
    b"UL",
    b"US",
}
_EXPLICIT_HEAD = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_IMPLICIT_HEAD = struct.Struct("<HHI")  # group, element, 32-bit length
_U32 = struct.Struct("<I")
_FIRST_READ = 4096

# tag -> attribute name of DicomHeader; values are kept as text and converted once.
_WANTED: dict[int, str] = {
    0x00020010: "transfer_syntax",
    0x00080005: "character_set",
    0x00080008: "image_type",
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00080020: "study_date",
    0x00080021: "series_date",
    0x00080060: "modality",
    0x00080070: "manufacturer",
    0x00080080: "institution",
    0x00081030: "study_description",
    0x0008103E: "series_description",
    0x00081090: "manufacturer_model",
    0x00100010: "patient_name",
    0x00100020: "patient_id",
    0x00100030: "patient_birth_date",
    0x00100040: "patient_sex",
    0x00180050: "slice_thickness",
    0x00180081: "echo_time",
    0x00180086: "echo_numbers",
    0x00181060: "trigger_time",
    0x00181120: "gantry_tilt",
    0x0020000D: "study_uid",
    0x0020000E: "series_uid",
    0x00200011: "series_number",
    0x00200012: "acquisition_number",
    0x00200013: "instance_number",
    0x00200032: "image_position",
    0x00200037: "image_orientation",
    0x00200100: "temporal_position",
    0x00280002: "samples_per_pixel",
    0x00280004: "photometric",
    0x00280008: "number_of_frames",
    0x00280010: "rows",
    0x00280011: "columns",
    0x00280030: "pixel_spacing",
    0x00280100: "bits_allocated",
    0x00280101: "bits_stored",
    0x00280103: "pixel_representation",
    0x00281052: "rescale_intercept",
    0x00281053: "rescale_slope",
    0x52009229: "shared_functional_groups",
}
_BINARY_US = {0x00280002, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280103}
_SEQUENCES = {0x52009229}


@dataclass
class DicomHeader:
    """Header fields of one DICOM file (strings as stored, numbers parsed)."""

    path: Path
    transfer_syntax: str = ""
    character_set: str = ""
    image_type: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_date: str = ""
    series_date: str = ""
    modality: str = ""
    manufacturer: str = ""
    institution: str = ""
    study_description: str = ""
    series_description: str = ""
    manufacturer_model: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    slice_thickness: str = ""
    echo_time: str = ""
    echo_numbers: str = ""
    trigger_time: str = ""
    gantry_tilt: str = ""
    study_uid: str = ""
    series_uid: str = ""
    series_number: str = ""
    acquisition_number: str = ""
    instance_number: str = ""
    image_position: str = ""
    image_orientation: str = ""
    temporal_position: str = ""
    samples_per_pixel: int = 1
    photometric: str = ""
    number_of_frames: str = ""
    rows: int = 0
    columns: int = 0
    pixel_spacing: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    rescale_intercept: str = ""
    rescale_slope: str = ""
    shared_functional_groups: str = ""
    pixel_offset: int = -1
    pixel_length: int = -1
    has_pixels: bool = False
    _parsed: dict[str, tuple] = field(default_factory=dict, repr=False, compare=False)
    damage: str = ""  # why the file is unusable although its header was read ("is truncated...")

    @property
    def frames(self) -> int:
        try:
            return max(1, int(float(self.number_of_frames))) if self.number_of_frames else 1
        except ValueError:
            return 1

    @property
    def image_types(self) -> tuple[str, ...]:
        cached = self._parsed.get("image_types")
        if cached is None:
            cached = tuple(part.strip().upper() for part in self.image_type.split("\\"))
            self._parsed["image_types"] = cached
        return cached

    def floats(self, name: str) -> tuple[float, ...]:
        """A backslash-separated decimal string as floats; empty when absent or malformed.

        Grouping asks for the same fields many times per file: parse each once.
        """
        cached = self._parsed.get(name)
        if cached is not None:
            return cached
        text = getattr(self, name)
        try:
            values = tuple(float(part) for part in text.split("\\")) if text.strip() else ()
        except ValueError:
            values = ()
        self._parsed[name] = values
        return values

    def number(self, name: str, default: float) -> float:
        values = self.floats(name)
        return values[0] if values else default

    @property
    def uncompressed(self) -> bool:
        return self.transfer_syntax in UNCOMPRESSED_LE and self.pixel_length != _UNDEFINED


class _NeedsPydicom(Exception):
    """The fast reader met something it does not handle; pydicom will."""

    def __init__(self, truncated: bool = False) -> None:
        super().__init__()
        self.truncated = truncated  # the file ended inside an element


_TRUNCATED_HEADER = "is truncated: the file ends before its pixel data"


def read_header(path: Path) -> DicomHeader:
    """Header of one file; raises :class:`ScanError` when it is not readable DICOM."""
    try:
        return _fast_header(path)
    except _NeedsPydicom as exc:
        truncated = exc.truncated
    except OSError as exc:
        raise ScanError(path, f"cannot be read ({exc.strerror or exc})") from exc
    # pydicom reads a truncated file leniently, as if it had no pixels: a damaged slice would
    # then drop out of its series unnoticed, so say it is truncated.
    try:
        header = _pydicom_header(path)
    except NotDicomError:
        if truncated:
            raise ScanError(path, _TRUNCATED_HEADER) from None
        raise
    if truncated and not header.has_pixels:
        header.damage = _TRUNCATED_HEADER
    return header


_RAW_FIRST_ELEMENTS = (0x0000, 0x0005, 0x0008, 0x0016)


def _looks_like_raw_dicom(head: bytes) -> bool:
    """Old files without the 128-byte preamble start with a group 0008 element, in either
    byte order."""
    if len(head) < 8:
        return False
    little = struct.unpack_from("<HH", head)
    big = struct.unpack_from(">HH", head)
    return any(g == 0x0008 and e in _RAW_FIRST_ELEMENTS for g, e in (little, big))


def _fast_header(path: Path) -> DicomHeader:
    with open(path, "rb") as handle:
        data = handle.read(_FIRST_READ)
        if len(data) < 132 or data[128:132] != b"DICM":
            if _looks_like_raw_dicom(data):
                raise _NeedsPydicom
            raise NotDicomError(path, "is not a DICOM file")
        header = DicomHeader(path=path)
        walker = _Walker(data, handle, header)
        meta_end = walker.walk_meta(132)
        if header.transfer_syntax == EXPLICIT_LE:
            walker.explicit = True
        elif header.transfer_syntax == IMPLICIT_LE:
            walker.explicit = False
        elif header.transfer_syntax.startswith("1.2.840.10008.1.2.4") or header.transfer_syntax in (
            "1.2.840.10008.1.2.5",
        ):
            walker.explicit = True  # encapsulated syntaxes keep an explicit LE header
        else:
            raise _NeedsPydicom  # big endian, deflate, private syntaxes
        walker.walk_dataset(meta_end)
        _apply_character_set(header)
        return header


# Free-text fields whose bytes depend on SpecificCharacterSet (UIDs and codes are ASCII).
_TEXT_FIELDS = (
    "patient_name",
    "institution",
    "study_description",
    "series_description",
    "manufacturer",
    "manufacturer_model",
)


def _apply_character_set(header: DicomHeader) -> None:
    """The walk decodes text as Latin-1 (byte for byte); re-decode with the declared charset."""
    declared = [term.strip() for term in header.character_set.split("\\") if term.strip()]
    if not declared or declared == ["ISO_IR 100"]:
        return
    if len(declared) > 1 or "2022" in declared[0]:
        raise _NeedsPydicom  # code extensions (escape sequences): pydicom handles them
    codec = pydicom.charset.python_encoding.get(declared[0])
    if codec is None:
        return  # unknown term: keep the Latin-1 reading rather than fail the whole file
    for name in _TEXT_FIELDS:
        text = getattr(header, name)
        if text and not text.isascii():
            setattr(header, name, text.encode("latin-1").decode(codec, "replace"))


class _Walker:
    """Steps over top-level elements, keeping only the wanted values."""

    def __init__(self, data: bytes, handle, header: DicomHeader) -> None:
        self.data = data
        self.handle = handle
        self.header = header
        self.explicit = True
        self.file_size: int | None = None

    def _ensure(self, end: int) -> None:
        if end <= len(self.data):
            return
        more = self.handle.read(max(end - len(self.data), _FIRST_READ * 4))
        self.data += more
        if end > len(self.data):
            raise _NeedsPydicom(truncated=True)  # let pydicom read what is there

    def _element(self, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
        """(tag, VR, value length, value start) of the element at ``pos``."""
        self._ensure(pos + 8)
        group, elem = struct.unpack_from("<HH", self.data, pos)
        tag = (group << 16) | elem
        if group == 0xFFFE:
            (length,) = struct.unpack_from("<I", self.data, pos + 4)
            return tag, b"", length, pos + 8
        if explicit:
            vr = self.data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                self._ensure(pos + 12)
                (length,) = struct.unpack_from("<I", self.data, pos + 8)
                return tag, vr, length, pos + 12
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise _NeedsPydicom
            (length,) = struct.unpack_from("<H", self.data, pos + 6)
            return tag, vr, length, pos + 8
        (length,) = struct.unpack_from("<I", self.data, pos + 4)
        return tag, b"", length, pos + 8

    def walk_meta(self, pos: int) -> int:
        while True:
            self._ensure(pos + 8)
            if self.data[pos : pos + 2] != b"\x02\x00":
                return pos
            tag, _vr, length, start = self._element(pos, explicit=True)
            if tag == 0x00020010:
                self._ensure(start + length)
                self.header.transfer_syntax = (
                    self.data[start : start + length].decode("ascii", "replace").strip("\x00 ")
                )
            pos = start + length

    def walk_dataset(self, pos: int) -> None:
        """The hot loop of discovery: kept flat, with locals, because it runs per element."""
        header = self.header
        explicit = self.explicit
        unpack = struct.unpack_from
        head = _EXPLICIT_HEAD.unpack_from
        implicit_head = _IMPLICIT_HEAD.unpack_from
        u32 = _U32.unpack_from
        short_vrs = _SHORT_VRS
        wanted = _WANTED
        long_vrs = _LONG_VRS
        data = self.data
        while True:
            if pos + 12 > len(data):
                chunk = self.handle.read(_FIRST_READ)
                if chunk:
                    self.data = data = data + chunk
                    continue
                if pos == len(data):
                    return  # clean end of file without pixel data
                if pos + 8 > len(data) or (explicit and data[pos + 4 : pos + 6] in long_vrs):
                    raise _NeedsPydicom(truncated=True)
                # fewer than 12 bytes left: a short last element may still be complete
            if explicit:
                group, elem, vr, length = head(data, pos)
                if vr in long_vrs:
                    length = u32(data, pos + 8)[0]
                    start = pos + 12
                elif vr in short_vrs:
                    start = pos + 8
                else:
                    raise _NeedsPydicom  # not an explicit-VR element: malformed or odd
            else:
                group, elem, length = implicit_head(data, pos)
                vr = b""
                start = pos + 8
            if group == 0xFFFE:
                raise _NeedsPydicom  # an item outside a sequence: malformed
            tag = (group << 16) | elem
            if tag == PIXEL_DATA:
                header.has_pixels = True
                header.pixel_offset = start
                header.pixel_length = length
                header.damage = self._pixel_data_problem(start, length)
                return
            name = wanted.get(tag)
            if length == _UNDEFINED:
                if name is not None:
                    setattr(header, name, "present")
                self.data = data
                pos = self._skip_undefined(start)
                data = self.data
                continue
            if name is not None:
                if tag in _SEQUENCES:
                    setattr(header, name, "present")
                else:
                    if start + length > len(data):
                        self.data = data
                        self._ensure(start + length)
                        data = self.data
                    raw = data[start : start + length]
                    if tag in _BINARY_US:
                        if length != 2 or vr not in (b"US", b""):
                            raise _NeedsPydicom
                        setattr(header, name, unpack("<H", raw)[0])
                    else:
                        setattr(header, name, raw.decode("latin-1").strip("\x00 "))
            pos = start + length

    def _pixel_data_problem(self, start: int, length: int) -> str:
        """Why the pixel data cannot be complete, from sizes alone; empty when it may be.

        Decoders fail slowly on truncated data (SimpleITK took 2-10 s for one small slice) and
        only say that decoding failed; the file size tells the real reason at once.
        """
        size = os.fstat(self.handle.fileno()).st_size
        if length != _UNDEFINED:
            if start + length > size:
                return f"is truncated: pixel data ends after {size - start} of {length} bytes"
            return ""
        pos = start  # encapsulated: items (offset table, fragments) up to a delimiter
        while pos + 8 <= size:
            self.handle.seek(pos)
            group, elem, item_length = struct.unpack("<HHI", self.handle.read(8))
            tag = (group << 16) | elem
            if tag == _SEQ_END:
                return ""
            if tag != _ITEM:
                return "has damaged compressed pixel data (a fragment is malformed)"
            pos += 8 + item_length
        if pos == size:
            return ""  # complete fragments, only the closing delimiter is missing
        return "is truncated: the compressed pixel data ends early"

    def _skip_undefined(self, pos: int) -> int:
        """Skip a sequence or item of undefined length; returns the position after it."""
        while True:
            tag, _vr, length, start = self._element(pos, self.explicit)
            if tag in (_SEQ_END, _ITEM_END):
                return start
            if length == _UNDEFINED:
                pos = self._skip_undefined(start)
            elif tag == _ITEM:
                pos = start + length
            else:
                pos = start + length


def _pydicom_header(path: Path) -> DicomHeader:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=False, defer_size=256, force=True)
    except OSError as exc:
        raise ScanError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except Exception as exc:  # pydicom raises many kinds (zlib.error on truncated deflate...)
        reason = f"is not a readable DICOM file ({type(exc).__name__}: {exc})"
        raise ScanError(path, reason) from exc
    if "SOPClassUID" not in ds and "SeriesInstanceUID" not in ds:
        raise NotDicomError(path, "is not a DICOM file (no SOP class or series UID)")
    header = DicomHeader(path=path)
    meta = getattr(ds, "file_meta", None)
    header.transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta else ""
    for tag, name in _WANTED.items():
        if tag >> 16 == 0x0002 or tag not in ds:
            continue
        try:
            value = ds[tag].value
        except Exception:  # a broken element: treat as absent, pixels decide later
            continue
        if tag in _SEQUENCES:
            setattr(header, name, "present")
        elif tag in _BINARY_US:
            try:
                setattr(header, name, int(value))
            except (TypeError, ValueError):
                continue
        elif isinstance(value, list | tuple | pydicom.multival.MultiValue):
            setattr(header, name, "\\".join(str(v) for v in value))
        else:
            setattr(header, name, "" if value is None else str(value))
    header.has_pixels = "PixelData" in ds
    header.pixel_offset = -1  # pixels of these files are decoded by pydicom or SimpleITK
    return header
