"""Read the few DICOM header fields discovery needs, fast, without decoding pixels.

pydicom parses every element of every file (about 0.6 ms for even a tiny header here), which
makes a 300-file folder slower to list than to load. Discovery needs about forty top-level
fields, so :func:`read_header` walks the element stream itself with ``struct`` (little-endian
transfer syntaxes, where nearly all files are) and falls back to pydicom for everything else.
It also notes where the pixel bytes start, so loading can read them straight into the volume.

Walking every element in Python still cost about 150 us a file; :class:`HeaderReader` (what
discovery uses) keeps the layout of a file walked and checks the next files of the series
against it run by run, parsing only the elements whose bytes differ (about 15 us a file on a
300-slice CT, bench/load_series.py). Its results are those of the walk: see its docstring.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pydicom.charset

from meddiag_desktop.scans import sop_classes
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
_U16 = struct.Struct("<H")
_TAG = struct.Struct("<HH")
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
    0x00180015: "body_part_examined",
    0x00180050: "slice_thickness",
    0x00180081: "echo_time",
    0x00180086: "echo_numbers",
    0x00181030: "protocol_name",
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
    0x00280006: "planar_configuration",
    0x00280008: "number_of_frames",
    0x00280010: "rows",
    0x00280011: "columns",
    0x00280030: "pixel_spacing",
    0x00280100: "bits_allocated",
    0x00280101: "bits_stored",
    0x00280102: "high_bit",
    0x00280103: "pixel_representation",
    0x00281052: "rescale_intercept",
    0x00281053: "rescale_slope",
    0x52009229: "shared_functional_groups",
}
_BINARY_US = {
    0x00280002,
    0x00280006,
    0x00280010,
    0x00280011,
    0x00280100,
    0x00280101,
    0x00280102,
    0x00280103,
}
_SEQUENCES = {0x52009229}
_NOT_TEXT = _SEQUENCES | _BINARY_US


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
    body_part_examined: str = ""
    slice_thickness: str = ""
    echo_time: str = ""
    echo_numbers: str = ""
    trigger_time: str = ""
    protocol_name: str = ""
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
    planar_configuration: int = 0
    number_of_frames: str = ""
    rows: int = 0
    columns: int = 0
    pixel_spacing: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    high_bit: int = -1  # -1: absent (BitsStored - 1 is then assumed)
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
        return frame_count(self.number_of_frames)

    @property
    def image_types(self) -> tuple[str, ...]:
        cached = self._parsed.get("image_types")
        if cached is None:
            cached = image_type_words(self.image_type)
            self._parsed["image_types"] = cached
        return cached

    def floats(self, name: str) -> tuple[float, ...]:
        """A backslash-separated decimal string as floats; empty when absent or malformed.

        Grouping asks for the same fields many times per file: parse each once.
        """
        cached = self._parsed.get(name)
        if cached is None:
            cached = self._parsed[name] = decimal_values(getattr(self, name))
        return cached

    def number(self, name: str, default: float) -> float:
        values = self.floats(name)
        return values[0] if values else default

    @property
    def uncompressed(self) -> bool:
        return self.transfer_syntax in UNCOMPRESSED_LE and self.pixel_length != _UNDEFINED


def frame_count(number_of_frames: str) -> int:
    """NumberOfFrames as a count (1 when absent or malformed)."""
    try:
        return max(1, int(float(number_of_frames))) if number_of_frames else 1
    except ValueError:
        return 1


def image_type_words(image_type: str) -> tuple[str, ...]:
    """ImageType's values, upper case."""
    return tuple(part.strip().upper() for part in image_type.split("\\"))


_DECIMALS: dict[str, tuple[float, ...]] = {}  # the files of a series repeat most texts


def decimal_values(text: str) -> tuple[float, ...]:
    """A backslash-separated decimal string as floats; empty when absent or malformed."""
    values = _DECIMALS.get(text)
    if values is None:
        try:
            values = tuple(float(part) for part in text.split("\\")) if text.strip() else ()
        except ValueError:
            values = ()
        if len(_DECIMALS) >= 4096:
            _DECIMALS.clear()
        _DECIMALS[text] = values
    return values


class _NeedsPydicom(Exception):
    """The fast reader met something it does not handle; pydicom will."""

    def __init__(self, truncated: bool = False) -> None:
        super().__init__()
        self.truncated = truncated  # the file ended inside an element


_TRUNCATED_HEADER = "is truncated: the file ends before its pixel data"
_UNREADABLE_HEADER = (
    "is damaged: it is marked as DICOM but its header reads as noise (no SOP class or series "
    "UID; a damaged transfer syntax?)"
)
_DIRECTORY_CLASS = "1.2.840.10008.1.3.10"  # a DICOMDIR: an index of files, no scan
# Storage classes whose files always hold pixel data: one without is cut or damaged (the walk
# can end cleanly at an element boundary; a damaged length can skip over the pixel data).
_PIXEL_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",  # legacy converted enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.4",  # legacy converted enhanced MR
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.128.1",  # legacy converted enhanced PET
    "1.2.840.10008.5.1.4.1.1.130",  # enhanced PET
}


def _missing_pixels(header: DicomHeader) -> str:
    """Why a file without pixel data is damaged; empty when it may have none."""
    if header.sop_class_uid in _PIXEL_CLASSES:
        return "has no pixel data although it is an image (truncated or damaged)"
    return ""


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate line ends


def read_header(path: Path) -> DicomHeader:
    """Header of one file; raises :class:`ScanError` when it is not readable DICOM."""
    return HeaderReader().read(path)


class HeaderReader:
    """Reads the headers of many files; faster when they share a layout, as a series does.

    The files of one series hold the same elements in the same order, most with the same
    bytes. After walking a file element by element, the reader keeps that walk as a
    :class:`_Layout`. A later file is checked against it with one bytes comparison per run of
    elements that were identical so far; only elements whose bytes differ are parsed. The walk
    depends on nothing but the bytes it steps over, so identical bytes give identical elements
    and values: the header is the one the element-by-element walk gives. Anything else (another
    tag, an undefined length, an element beyond the first read) walks the file element by
    element. ``tests/scans/test_header_layouts.py`` compares both ways on real and mutated files.
    """

    _MAX_LAYOUTS = 4
    _MAX_FIRST_READ = 64 * 1024

    def __init__(self) -> None:
        self._layouts: list[_Layout] = []
        self._leader: tuple[bytes, bool, str] | None = None  # the last file walked
        self._first_read = _FIRST_READ
        self._hits = 0
        self._misses = 0

    def read(self, path: Path, location: str | None = None) -> DicomHeader:
        """Header of one file; raises :class:`ScanError` when it is not readable DICOM.

        ``location`` is ``str(path)`` when the caller has it at hand (a folder walk does).
        """
        try:
            handle = os.open(path if location is None else location, os.O_RDONLY | _O_BINARY)
        except OSError as exc:
            raise ScanError(path, f"cannot be read ({exc.strerror or exc})") from exc
        try:
            header = self._fast_header(path, handle)
        except _NeedsPydicom as exc:
            header = self._pydicom_read(path, exc.truncated)
        except OSError as exc:
            raise ScanError(path, f"cannot be read ({exc.strerror or exc})") from exc
        finally:
            os.close(handle)
        if not header.has_pixels and not header.damage:
            header.damage = _missing_pixels(header)
        return header

    @staticmethod
    def _pydicom_read(path: Path, truncated: bool) -> DicomHeader:
        # pydicom reads a truncated file leniently, as if it had no pixels: a damaged slice
        # would then drop out of its series unnoticed, so say it is truncated.
        try:
            header = _pydicom_header(path)
        except NotDicomError:
            if truncated:
                raise ScanError(path, _TRUNCATED_HEADER) from None
            raise
        if truncated and not header.has_pixels:
            header.damage = _TRUNCATED_HEADER
        return header

    def _fast_header(self, path: Path, handle: int) -> DicomHeader:
        size = self._first_read
        data = os.read(handle, size)
        if 0 < len(data) < size:  # the end of the file, or a short read
            data += _read_up_to(handle, size - len(data))
        if not data.startswith(b"DICM", 128):
            if _looks_like_raw_dicom(data):
                raise _NeedsPydicom
            damage = _damaged_start(path, data)
            if damage:
                raise ScanError(path, damage)
            raise NotDicomError(path, "is not a DICOM file")
        # Layouts pay off when most files share one; stop when files keep differing.
        use_layouts = self._misses <= 32 or self._hits >= self._misses
        if use_layouts:
            header = self._apply_layouts(path, data, handle)
            if header is not None:
                return header
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
        if use_layouts and header.has_pixels:
            # Its layout is made when a next file needs one: a single file costs nothing more.
            self._leader = (walker.data, walker.explicit, header.transfer_syntax)
        return header

    def _apply_layouts(self, path: Path, data: bytes, handle: int) -> DicomHeader | None:
        layouts = self._layouts
        if self._leader is not None:
            made = _Layout.build(*self._leader)
            self._leader = None
            if made is not None:
                layouts.insert(0, made)
                del layouts[self._MAX_LAYOUTS :]
                # Later files are read far enough for the layout to apply (it holds the
                # elements up to the pixel data's header), in one read.
                wanted = -(-made.end // _FIRST_READ) * _FIRST_READ
                self._first_read = max(self._first_read, min(wanted, self._MAX_FIRST_READ))
        for index, layout in enumerate(layouts):
            header = layout.apply(path, data, handle)
            if header is not None:
                self._hits += 1
                if index:
                    layouts.insert(0, layouts.pop(index))
                if header.character_set not in _PLAIN_CHARSETS:  # the call, only when needed
                    _apply_character_set(header)
                return header
            self._misses += 1
        return None


def _read_up_to(handle: int, size: int) -> bytes:
    """``size`` bytes from the file position on, fewer only at the end of the file."""
    data = os.read(handle, size)
    while 0 < len(data) < size:
        more = os.read(handle, size - len(data))
        if not more:
            break
        data += more
    return data


_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".dc3", ".ima")
_PREAMBLE = bytes(128)


def _damaged_start(path: Path, data: bytes) -> str:
    """Why a file without the 'DICM' marker is still a damaged DICOM file; empty when it may
    simply be something else.

    Discovery skips files that are not DICOM quietly; an emptied or cut slice would then vanish
    from its series without a word (an end slice leaves no gap to see).
    """
    if not data:
        return "is empty (0 bytes)"
    short = len(data) < 132 and data[:128] == _PREAMBLE[: len(data[:128])]
    if short and b"DICM".startswith(data[128:]):
        return f"is truncated: the file ends after {len(data)} bytes, inside its preamble"
    if data.startswith(_PREAMBLE) and len(data) >= 132:
        return "is damaged: it has a DICOM preamble but no 'DICM' marker after it"
    if path.name.lower().endswith(_DICOM_SUFFIXES):
        return "is named as a DICOM file but is not one (damaged, or not a scan)"
    return ""


_RAW_FIRST_ELEMENTS = (0x0000, 0x0005, 0x0008, 0x0016)


def _looks_like_raw_dicom(head: bytes) -> bool:
    """Old files without the 128-byte preamble start with a group 0008 element, in either
    byte order."""
    if len(head) < 8:
        return False
    little = struct.unpack_from("<HH", head)
    big = struct.unpack_from(">HH", head)
    return any(g == 0x0008 and e in _RAW_FIRST_ELEMENTS for g, e in (little, big))


# Free-text fields whose bytes depend on SpecificCharacterSet (UIDs and codes are ASCII).
_TEXT_FIELDS = (
    "patient_name",
    "institution",
    "study_description",
    "series_description",
    "protocol_name",
    "manufacturer",
    "manufacturer_model",
)


_PLAIN_CHARSETS = ("", "ISO_IR 100")  # what the walk's Latin-1 reading gets right


def _apply_character_set(header: DicomHeader) -> None:
    """The walk decodes text as Latin-1 (byte for byte); re-decode with the declared charset."""
    if header.character_set in _PLAIN_CHARSETS:
        return
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


def _element_at(data: bytes, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value start) of a meta or nested element at ``pos``; the caller
    makes sure ``data`` holds its 12 header bytes (8 for a 16-bit length)."""
    group, elem = _TAG.unpack_from(data, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:
        (length,) = _U32.unpack_from(data, pos + 4)
        return tag, b"", length, pos + 8
    if explicit:
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = _U32.unpack_from(data, pos + 8)
            return tag, vr, length, pos + 12
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            raise _NeedsPydicom
        (length,) = _U16.unpack_from(data, pos + 6)
        return tag, vr, length, pos + 8
    (length,) = _U32.unpack_from(data, pos + 4)
    return tag, b"", length, pos + 8


def _dataset_element(data: bytes, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value start) of a top-level data set element at ``pos``, by the
    rules of :meth:`_Walker.walk_dataset`; the caller makes sure ``data`` holds 12 bytes."""
    if explicit:
        group, elem, vr, length = _EXPLICIT_HEAD.unpack_from(data, pos)
        if vr in _LONG_VRS:
            length = _U32.unpack_from(data, pos + 8)[0]
            start = pos + 12
        elif vr in _SHORT_VRS:
            start = pos + 8
        else:
            raise _NeedsPydicom  # not an explicit-VR element: malformed or odd
    else:
        group, elem, length = _IMPLICIT_HEAD.unpack_from(data, pos)
        vr = b""
        start = pos + 8
    if group == 0xFFFE:
        raise _NeedsPydicom  # an item outside a sequence: malformed
    return (group << 16) | elem, vr, length, start


def _value(tag: int, vr: bytes, raw: bytes) -> str | int:
    """A wanted value as :class:`DicomHeader` keeps it (not for sequences)."""
    if tag in _BINARY_US:
        if len(raw) != 2 or vr not in (b"US", b""):
            raise _NeedsPydicom
        return int(_U16.unpack(raw)[0])
    return raw.decode("latin-1").strip("\x00 ")


def _transfer_syntax(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip("\x00 ")


class _Walker:
    """Steps over top-level elements, keeping only the wanted values."""

    def __init__(self, data: bytes, handle: int, header: DicomHeader) -> None:
        self.data = data
        self.handle = handle
        self.header = header
        self.explicit = True

    def _ensure(self, end: int) -> None:
        if end <= len(self.data):
            return
        more = _read_up_to(self.handle, max(end - len(self.data), _FIRST_READ * 4))
        self.data += more
        if end > len(self.data):
            raise _NeedsPydicom(truncated=True)  # let pydicom read what is there

    def _element(self, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
        """(tag, VR, value length, value start) of the element at ``pos``."""
        self._ensure(pos + 8)
        data = self.data
        if explicit and data[pos : pos + 2] != b"\xfe\xff" and data[pos + 4 : pos + 6] in _LONG_VRS:
            self._ensure(pos + 12)
        return _element_at(self.data, pos, explicit)

    def walk_meta(self, pos: int) -> int:
        while True:
            self._ensure(pos + 8)
            if self.data[pos : pos + 2] != b"\x02\x00":
                return pos
            tag, _vr, length, start = self._element(pos, explicit=True)
            if tag == 0x00020010:
                self._ensure(start + length)
                self.header.transfer_syntax = _transfer_syntax(self.data[start : start + length])
            pos = start + length

    def walk_dataset(self, pos: int) -> None:
        """The element-by-element walk: kept flat, with locals, because it runs per element."""
        header = self.header
        explicit = self.explicit
        head = _EXPLICIT_HEAD.unpack_from
        implicit_head = _IMPLICIT_HEAD.unpack_from
        u32 = _U32.unpack_from
        short_vrs = _SHORT_VRS
        wanted = _WANTED
        long_vrs = _LONG_VRS
        data = self.data
        while True:
            if pos + 12 > len(data):
                chunk = _read_up_to(self.handle, _FIRST_READ)
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
                header.damage = _pixel_data_problem(self.handle, start, length, header.__dict__)
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
                    setattr(header, name, _value(tag, vr, data[start : start + length]))
            pos = start + length

    def _skip_undefined(self, pos: int) -> int:
        """Skip a sequence or item of undefined length; returns the position after it."""
        while True:
            tag, _vr, length, start = self._element(pos, self.explicit)
            if tag in (_SEQ_END, _ITEM_END):
                return start
            pos = self._skip_undefined(start) if length == _UNDEFINED else start + length


def _pixel_data_problem(handle: int, start: int, length: int, fields: dict) -> str:
    """Why the pixel data cannot be complete, or not what the header says, from sizes alone;
    empty when it may be. ``fields`` are the header's, as read so far.

    Decoders fail slowly on truncated data (SimpleITK took 2-10 s for one small slice) and
    only say that decoding failed; the file size tells the real reason at once.
    """
    size = os.lseek(handle, 0, os.SEEK_END)  # a third of the cost of fstat
    if length != _UNDEFINED:
        if start + length > size:
            return f"is truncated: pixel data ends after {size - start} of {length} bytes"
        if fields["transfer_syntax"] in UNCOMPRESSED_LE:
            return _pixel_length_problem(fields, length)
        return ""
    pos = start  # encapsulated: items (offset table, fragments) up to a delimiter
    while pos + 8 <= size:
        group, elem, item_length = _IMPLICIT_HEAD.unpack(os.pread(handle, 8, pos))
        tag = (group << 16) | elem
        if tag == _SEQ_END:
            return ""
        if tag != _ITEM:
            return "has damaged compressed pixel data (a fragment is malformed)"
        pos += 8 + item_length
    if pos == size:
        return ""  # complete fragments, only the closing delimiter is missing
    return "is truncated: the compressed pixel data ends early"


def _pixel_length_problem(fields: dict, length: int) -> str:
    """Why uncompressed pixel data of ``length`` bytes cannot be what Rows, Columns,
    BitsAllocated, SamplesPerPixel and NumberOfFrames say; empty when it can.

    Read with a layout its bytes do not have, a slice is garbage that looks like an image
    (a BitsAllocated of 32 over 16-bit pixels gave values in the tens of millions).
    """
    rows, columns, bits = fields["rows"], fields["columns"], fields["bits_allocated"]
    photometric = fields["photometric"]
    if not (rows and columns and bits) or photometric.startswith(("YBR_FULL_42", "YBR_PARTIAL_42")):
        return ""  # no image to read, or subsampled colour (two samples a pixel, not three)
    if _not_an_image(fields["sop_class_uid"]):
        return ""  # never read as a scan (an RT dose, a radiograph...): its classification says so
    samples = fields["samples_per_pixel"] or 1
    frames = frame_count(fields["number_of_frames"])
    needed = -(-rows * columns * samples * frames * bits // 8)
    # Values are padded to an even length; some writers pad further (pydicom reads such files
    # and drops the excess): up to one row is padding, more means Rows or frames are wrong.
    if needed <= length <= needed + max(2, -(-columns * samples * bits // 8)):
        return ""
    return (
        f"has {length} bytes of pixel data where its header ({rows}x{columns} pixels, "
        f"BitsAllocated {bits}, {samples} sample(s), {frames} frame(s)) needs {needed}"
    )


@functools.lru_cache(maxsize=64)
def _not_an_image(sop_class_uid: str) -> bool:
    return bool(sop_classes.non_image_reason(sop_class_uid))


class _Abandon(Exception):
    """This file does not follow the layout (or the layout cannot be made): walk it."""


class _Element:
    """One top-level element of a layout's first file, with the bytes it was read from."""

    __slots__ = (
        "head",
        "length_at",
        "length_format",
        "meta",
        "name",
        "raw",
        "tag",
        "text",
        "value",
        "value_at",
        "vr",
    )

    def __init__(
        self,
        raw: bytes,
        tag: int,
        meta: bool,
        name: str | None,
        value: str | int | None,
        explicit: bool,
        value_at: int,
    ) -> None:
        self.raw = raw  # header and value
        self.tag = tag
        self.meta = meta  # in the file meta group (always explicit VR)
        self.name = name  # the DicomHeader field it fills, if wanted
        self.value = value
        self.vr = raw[4:6] if explicit else b""
        self.value_at = value_at  # 12 for explicit VRs with a 32-bit length, else 8
        # An element of another file that starts with the same tag (and VR) is read by the same
        # rules: only its length and value can differ, found here.
        self.head = raw[:6] if explicit else raw[:4]
        self.length_at = 4 if not explicit else (8 if value_at == 12 else 6)
        self.length_format = _U16 if explicit and value_at == 8 else _U32
        # A wanted text value, kept as _Layout._store keeps it: stored without the call.
        self.text = name is not None and not meta and tag not in _NOT_TEXT


class _Layout:
    """The walk of one file, to check later files against (see :class:`HeaderReader`).

    ``segments`` are runs of elements that were identical in every file checked so far,
    compared with one ``bytes.startswith`` each, and the elements that differed, parsed alone.
    ``steps`` are the same check with fewer calls (see :meth:`_follow_steps`).
    """

    def __init__(
        self, elements: list[_Element], pixels: _Element, explicit: bool, transfer_syntax: str
    ) -> None:
        self.elements = elements
        self.pixels = pixels  # the header of the first file's pixel data element
        self.end = 132 + sum(len(e.raw) for e in elements) + len(pixels.raw)
        self.explicit = explicit
        self.transfer_syntax = transfer_syntax
        self.varies = [False] * len(elements)
        self.segments: list[tuple[bytes, int, int, _Element | None]] = []
        self.steps: list[_Step] = []  # and the last, to the pixel data:
        self.pixel_step: _Step
        self.template: dict[str, object] = {}
        self._segment()

    @classmethod
    def build(cls, data: bytes, explicit: bool, transfer_syntax: str) -> _Layout | None:
        """The layout of a file whose element-by-element walk succeeded and ended at its pixel
        data, from the bytes of its first read only; None when those do not hold it all."""
        try:
            elements, pixels = cls._elements(data, explicit)
            return cls(elements, pixels, explicit, transfer_syntax)
        except (_Abandon, _NeedsPydicom, struct.error, RecursionError):
            return None

    @staticmethod
    def _elements(data: bytes, explicit: bool) -> tuple[list[_Element], _Element]:
        """The top-level elements before the pixel data, and the pixel data's header."""
        elements = []
        pos = 132
        while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":  # walk_meta
            _need(data, pos + 12)
            tag, _vr, length, start = _element_at(data, pos, True)
            end = _need(data, start + length)
            if tag == 0x00020010:
                syntax = _transfer_syntax(data[start:end])
                name: str | None = "transfer_syntax"
            else:
                name, syntax = None, None
            elements.append(_Element(data[pos:end], tag, True, name, syntax, True, start - pos))
            pos = end
        while True:  # walk_dataset
            _need(data, pos + 12)
            tag, vr, length, start = _dataset_element(data, pos, explicit)
            if tag == PIXEL_DATA:
                pixels = _Element(data[pos:start], tag, False, None, None, explicit, start - pos)
                return elements, pixels
            name = _WANTED.get(tag)
            value: str | int | None = None
            if length == _UNDEFINED:
                end = _skip_undefined_in(data, start, explicit)
                value = "present"
            else:
                end = _need(data, start + length)
                if name is not None:
                    value = "present" if tag in _SEQUENCES else _value(tag, vr, data[start:end])
            value = value if name else None
            elements.append(_Element(data[pos:end], tag, False, name, value, explicit, start - pos))
            pos = end

    def _segment(self) -> None:
        segments: list[tuple[bytes, int, int, _Element | None]] = []
        first = 0
        for index in range(len(self.elements) + 1):
            if index < len(self.elements) and not self.varies[index]:
                continue
            if first < index:  # a run of elements identical so far
                run = b"".join(e.raw for e in self.elements[first:index])
                segments.append((run, first, index, None))
            if index < len(self.elements):  # an element that differed
                element = self.elements[index]
                segments.append((element.raw, index, index + 1, element))
            first = index + 1
        self.segments = segments
        *self.steps, self.pixel_step = _steps(segments, self.pixels)
        # The fields of a file whose bytes match the first file's everywhere: a file that
        # differs overwrites each field it holds differently (every wanted element is set).
        template = dict(_HEADER_DEFAULTS)
        template.update((e.name, e.value) for e in self.elements if e.name and e.value is not None)
        self.template = template

    def apply(self, path: Path, data: bytes, handle: int) -> DicomHeader | None:
        """The header of a file that follows this layout; None when it does not.

        The hot path of discovery (once per file): kept flat, with locals.
        """
        header = DicomHeader.__new__(DicomHeader)
        fields = header.__dict__
        fields.update(self.template)
        fields["path"] = path
        for name, factory in _HEADER_FACTORIES:
            fields[name] = factory()
        pixels = self._follow_steps(data, fields)
        if pixels is not None:
            start, length = pixels
        else:  # some bytes differ where no file differed before, or the file is odd
            fields.update(self.template)  # as if the steps had not been taken
            try:
                pos = self._follow(data, fields)
                if pos + 12 > len(data):
                    return None
                tag, _vr, length, start = _dataset_element(data, pos, self.explicit)
            except (_Abandon, _NeedsPydicom, struct.error):
                return None
            if tag != PIXEL_DATA:
                return None
        fields["has_pixels"] = True
        fields["pixel_offset"] = start
        fields["pixel_length"] = length
        fields["damage"] = _pixel_data_problem(handle, start, length, fields)
        return header

    def _follow_steps(self, data: bytes, fields: dict) -> tuple[int, int] | None:
        """(start, length) of the pixel data of a file that differs from the layout only in
        the elements known to differ, having stored their values; None for any other file
        (which :meth:`_follow` then checks, from the start).

        Each step is one ``startswith`` over a run and the tag (and VR) of the element after
        it, whose length is read where the layout's rules put it: the checks of
        :meth:`_follow` and :func:`_dataset_element` for such a file, in half the calls.
        """
        startswith = data.startswith
        size = len(data)
        pos = 132
        try:
            for prefix, length_at, unpack, value_at, name, text, element in self.steps:
                if not startswith(prefix, pos):
                    return None
                length = unpack(data, pos + length_at)[0]  # struct.error beyond the data
                start = pos + value_at
                pos = start + length
                if length == _UNDEFINED or pos > size:
                    return None
                if text:
                    fields[name] = data[start:pos].decode("latin-1").strip("\x00 ")
                elif name is not None:
                    self._store(element, element.vr, data[start:pos], fields)
            prefix, length_at, unpack, value_at, _name, _text, pixels = self.pixel_step
            # _dataset_element wants 12 bytes at the pixel data, whatever its header holds
            if not startswith(prefix, pos) or pos + value_at - pixels.value_at + 12 > size:
                return None
            return pos + value_at, unpack(data, pos + length_at)[0]
        except (_Abandon, _NeedsPydicom, struct.error):
            return None

    def _follow(self, data: bytes, fields: dict) -> int:
        """Check the file segment by segment; returns where its pixel data's header starts.

        An element that differs for the first time splits its run (the layout is segmented
        again).
        """
        startswith = data.startswith
        pos = 132
        changed = False
        try:
            for run, first, stop, element in self.segments:
                if startswith(run, pos):  # identical bytes: the template's values
                    pos += len(run)
                    continue
                if element is not None:  # an element known to differ
                    if startswith(element.head, pos):  # same tag and VR: read its length
                        start = pos + element.value_at
                        length = element.length_format.unpack_from(data, pos + element.length_at)[0]
                        end = start + length
                        if length == _UNDEFINED or end > len(data):
                            raise _Abandon
                        if element.text:  # most varying elements (UIDs, positions)
                            fields[element.name] = data[start:end].decode("latin-1").strip("\x00 ")
                        elif element.name is not None:
                            self._store(element, element.vr, data[start:end], fields)
                        pos = end
                    else:
                        pos = self._parse(data, pos, element, fields)
                    continue
                for index in range(first, stop):  # a run that differs: find where
                    element = self.elements[index]
                    if startswith(element.raw, pos):
                        pos += len(element.raw)
                        if element.name is not None:
                            fields[element.name] = element.value
                        continue
                    pos = self._parse(data, pos, element, fields)
                    self.varies[index] = changed = True
        finally:
            if changed:
                self._segment()
        return pos

    def _parse(self, data: bytes, pos: int, element: _Element, fields: dict) -> int:
        """Read one element whose bytes differ from the layout's: same tag, own value, by the
        rules of :func:`_dataset_element` (of :func:`_element_at` in the meta group)."""
        if pos + 12 > len(data):
            raise _Abandon
        if element.meta:
            tag, vr, length, start = _element_at(data, pos, True)
        else:
            tag, vr, length, start = _dataset_element(data, pos, self.explicit)
        end = start + length
        if tag != element.tag or length == _UNDEFINED or end > len(data):
            raise _Abandon
        if element.name is not None:
            self._store(element, vr, data[start:end], fields)
        return end

    def _store(self, element: _Element, vr: bytes, raw: bytes, fields: dict) -> None:
        """The value of a wanted element, as the element-by-element walk keeps it."""
        if element.meta:
            syntax = _transfer_syntax(raw)
            if syntax != self.transfer_syntax:
                raise _Abandon  # explicit or implicit VR could change
            fields[element.name] = syntax
        elif element.tag in _SEQUENCES:
            fields[element.name] = "present"
        elif element.tag in _BINARY_US:
            fields[element.name] = _value(element.tag, vr, raw)
        else:
            fields[element.name] = raw.decode("latin-1").strip("\x00 ")  # as _value does


# (bytes to match at the position, where the element's length is from there, its unpack_from,
#  where its value starts from there, its DicomHeader field, whether that is text, the element)
_Step = tuple[bytes, int, Callable[[bytes, int], tuple[int, ...]], int, str | None, bool, _Element]


def _steps(
    segments: list[tuple[bytes, int, int, _Element | None]], pixels: _Element
) -> list[_Step]:
    """The segments as :meth:`_Layout._follow_steps` takes them: each run joined to the head
    (tag and VR) of the element after it, the last to that of the pixel data."""
    steps: list[_Step] = []
    run = b""
    for raw, _first, _stop, element in [*segments, (b"", 0, 0, pixels)]:
        if element is None:
            run += raw
            continue
        at = len(run)  # where the element starts, from the step's position
        steps.append(
            (
                run + element.head,
                at + element.length_at,
                element.length_format.unpack_from,
                at + element.value_at,
                element.name,
                element.text,
                element,
            )
        )
        run = b""
    return steps


def _need(data: bytes, end: int) -> int:
    if end > len(data):
        raise _Abandon
    return end


def _skip_undefined_in(data: bytes, pos: int, explicit: bool) -> int:
    """:meth:`_Walker._skip_undefined` within ``data`` only."""
    while True:
        _need(data, pos + 8)
        if explicit and data[pos : pos + 2] != b"\xfe\xff" and data[pos + 4 : pos + 6] in _LONG_VRS:
            _need(data, pos + 12)
        tag, _vr, length, start = _element_at(data, pos, explicit)
        if tag in (_SEQ_END, _ITEM_END):
            return start
        pos = _skip_undefined_in(data, start, explicit) if length == _UNDEFINED else start + length


_HEADER_FACTORIES = [
    (f.name, f.default_factory)
    for f in dataclasses.fields(DicomHeader)
    if f.default_factory is not dataclasses.MISSING
]
_HEADER_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(DicomHeader)
    if f.default is not dataclasses.MISSING
}


def _pydicom_header(path: Path) -> DicomHeader:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=False, defer_size=256, force=True)
    except OSError as exc:
        raise ScanError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except Exception as exc:  # pydicom raises many kinds (zlib.error on truncated deflate...)
        reason = f"is not a readable DICOM file ({type(exc).__name__}: {exc})"
        raise ScanError(path, reason) from exc
    if "SOPClassUID" not in ds and "SeriesInstanceUID" not in ds:
        try:
            stored_as = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
        except Exception:  # a damaged meta element: not a directory we could tell apart
            stored_as = ""
        # Marked as DICOM (preamble and 'DICM') yet no UIDs: a flipped transfer syntax reads
        # the rest as noise, and the slice would vanish from its series without a word.
        if getattr(ds, "preamble", None) is not None and stored_as != _DIRECTORY_CLASS:
            raise ScanError(path, _UNREADABLE_HEADER)
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
