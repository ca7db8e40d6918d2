"""Damaged copies of the shared real scans, made from a fixed seed, each with the oracle it is
judged by (issue 16: "never a plausible wrong volume").

A mutant is one base (a few real files, copied or losslessly re-encoded) with one change. What a
reader can be asked to notice depends on where the change lands, so every mutant is classified:

- ``strict``: the damage is detectable in principle (a structure byte, a field that must agree
  with the data or with the other slices, a CRC-protected stream, a truncation). A load that
  succeeds without a new warning must give the undamaged volume.
- ``expected``: a valid file that is honestly different (e.g. PixelSpacing changed on *every*
  slice). A load without a new warning must give the undamaged volume changed as expected.
- ``undetectable``: no reader can tell the damage from a real scan: DICOM, raw NIfTI, MHA and NRRD
  carry no checksum, so a flipped bit inside raw pixel data, inside a JPEG 2000 codestream, or in
  a header value that may legitimately differ (a slope, a UID, a position in a per-frame sequence,
  a NIfTI pixdim or sform float) gives a valid, different file. Only "no crash, no hang, no
  traceback, finite geometry" is asserted, and these are counted apart.

Everything here is plain byte and header surgery (pydicom only to locate elements and to write
consistent series-wide edits), so a mutant is reproducible from its seed and its description.
"""

from __future__ import annotations

import gzip
import io
import math
import random
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pydicom
from pydicom.filereader import data_element_generator
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

STRICT = "strict"
EXPECTED = "expected"
UNDETECTABLE = "undetectable"

Overrides = dict[str, bytes]  # file name in the mutant folder -> its new bytes


@dataclass(frozen=True)
class Base:
    """A few real files that load as one volume: the undamaged reference of its mutants."""

    name: str
    fmt: str  # dicom | dicom_mf | nifti | nifti_gz | mha_raw | mha_zlib | nrrd_raw | nrrd_gz
    sources: tuple[str, ...]  # paths below the shared data root
    derive: str = ""  # "" (copy) | gunzip | raw_mha | raw_nrrd: lossless re-encodings
    file_name: str = ""  # single-file bases: the name in the folder
    mutants: int = 30

    @property
    def single_file(self) -> bool:
        return self.fmt not in ("dicom",)


@dataclass(frozen=True)
class Mutant:
    ident: str
    base: str
    kind: str  # the mutation class, e.g. "dicom.truncate"
    oracle: str
    description: str
    build: Callable[[], Overrides] = field(repr=False, compare=False)
    expect: dict = field(default_factory=dict)  # for EXPECTED: spacing_xy / origin_shift


BASES: tuple[Base, ...] = (
    Base("ct5n", "dicom", ("dicom/several_series_tiny/98892001/CT5N/*",), mutants=256),
    Base("hitachi", "dicom", ("dicom/dicom2nifti/hitachi/anatomical/001/*.dcm",), mutants=176),
    Base("ct3", "dicom", ("dicom/ct_3slice_with_seg/*.dcm",), mutants=144),
    Base(
        "philips6",
        "dicom",
        tuple(f"dicom/ct_philips_mixed_folder/S2010_I{n}0" for n in range(1, 7)),
        mutants=160,
    ),
    Base(
        "j2k5",
        "dicom",
        tuple(
            f"dicom/ct_siemens_j2k/CT.1.3.12.2.1107.5.1.4.60064.300000221208081134280000165{n}"
            for n in range(73, 78)
        ),
        mutants=120,
    ),
    Base(
        "multiframe",
        "dicom_mf",
        ("dicom/dicom2nifti/hyperfine/anatomical/001/001.dcm",),
        file_name="001.dcm",
        mutants=104,
    ),
    Base(
        "t2_gz", "nifti_gz", ("volumes/mr_spine_t2/t2.nii.gz",), file_name="t2.nii.gz", mutants=160
    ),
    Base(
        "t2_nii",
        "nifti",
        ("volumes/mr_spine_t2/t2.nii.gz",),
        derive="gunzip",
        file_name="t2.nii",
        mutants=160,
    ),
    Base(
        "mr_abd_gz",
        "nifti_gz",
        ("volumes/mr_abdomen_small/example_mr_sm.nii.gz",),
        file_name="mr.nii.gz",
        mutants=56,
    ),
    Base("mha_zlib", "mha_zlib", ("volumes/formats/mha.mha",), file_name="mha.mha", mutants=88),
    Base(
        "mha_raw",
        "mha_raw",
        ("volumes/formats/mha.mha",),
        derive="raw_mha",
        file_name="raw.mha",
        mutants=88,
    ),
    Base(
        "nrrd_gz",
        "nrrd_gz",
        ("dicom/ct_3slice_with_seg_refs/liver_seg.nrrd",),
        file_name="liver.nrrd",
        mutants=64,
    ),
    Base(
        "nrrd_raw",
        "nrrd_raw",
        ("dicom/ct_3slice_with_seg_refs/liver_seg.nrrd",),
        derive="raw_nrrd",
        file_name="raw.nrrd",
        mutants=64,
    ),
)


# ---------------------------------------------------------------- the undamaged copies


def write_pristine(base: Base, data_root: Path, folder: Path) -> Path:
    """Copy (or losslessly re-encode) the base's files into ``folder``; the path to load."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for pattern in base.sources for p in data_root.glob(pattern))
    if not sources:
        raise FileNotFoundError(f"{base.name}: no files match {base.sources} in {data_root}")
    if base.fmt == "dicom":
        for source in sources:
            shutil.copyfile(source, folder / source.name)
        return folder
    raw = sources[0].read_bytes()
    if base.derive == "gunzip":
        raw = gzip.decompress(raw)
    elif base.derive == "raw_mha":
        raw = _uncompressed_mha(raw)
    elif base.derive == "raw_nrrd":
        raw = _uncompressed_nrrd(raw)
    target = folder / base.file_name
    target.write_bytes(raw)
    return target


def _uncompressed_mha(data: bytes) -> bytes:
    header, payload = _split_mha(data)
    lines = [line for line in header.split(b"\n") if not line.startswith(b"CompressedDataSize")]
    text = b"\n".join(lines).replace(b"CompressedData = True", b"CompressedData = False")
    return text + zlib.decompress(payload)


def _uncompressed_nrrd(data: bytes) -> bytes:
    header, payload = _split_nrrd(data)
    return header.replace(b"encoding: gzip", b"encoding: raw") + gzip.decompress(payload)


def _split_mha(data: bytes) -> tuple[bytes, bytes]:
    marker = b"ElementDataFile = LOCAL\n"
    end = data.index(marker) + len(marker)
    return data[:end], data[end:]


def _split_nrrd(data: bytes) -> tuple[bytes, bytes]:
    end = data.index(b"\n\n") + 2
    return data[:end], data[end:]


# ---------------------------------------------------------------- DICOM structure


@dataclass(frozen=True)
class Element:
    """Where one top-level DICOM element sits in its file."""

    tag: int
    vr: str
    start: int  # first byte of the tag
    value_start: int
    end: int  # one past its value
    length_at: int  # where its length field is
    length_size: int  # 2 or 4

    @property
    def keyword(self) -> str:
        return (
            pydicom.datadict.keyword_for_tag(self.tag)
            or f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"
        )


_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def _elements_from(data: bytes, pos: int, implicit: bool, stop: int | None) -> list[Element]:
    fp = io.BytesIO(data if stop is None else data[:stop])
    fp.seek(pos)
    found = []
    for raw in data_element_generator(fp, implicit, True):
        vr = str(raw.VR or "")
        long_form = implicit or vr in _LONG_VRS
        header = 8 if implicit or not long_form else 12
        value_tell = raw.value_tell if hasattr(raw, "value_tell") else raw.file_tell  # SQ
        start = value_tell - header
        length_at = start + 4 if implicit else start + (8 if long_form else 6)
        found.append(
            Element(
                tag=int(raw.tag),
                vr=vr,
                start=start,
                value_start=value_tell,
                end=fp.tell(),
                length_at=length_at,
                length_size=4 if long_form else 2,
            )
        )
    return found


@cache
def dicom_layout(data: bytes) -> tuple[tuple[Element, ...], bool]:
    """The file meta and top-level dataset elements; whether the dataset is implicit VR."""
    (group_length,) = struct.unpack_from("<I", data, 140)
    meta_end = 144 + group_length
    meta = _elements_from(data, 132, False, meta_end)
    syntax = next(e for e in meta if e.tag == 0x00020010)
    uid = data[syntax.value_start : syntax.end].rstrip(b"\0 ").decode()
    implicit = uid == ImplicitVRLittleEndian
    return tuple(meta + _elements_from(data, meta_end, implicit, None)), implicit


def element(data: bytes, tag: int) -> Element:
    elements, _implicit = dicom_layout(data)
    return next(e for e in elements if e.tag == tag)


def set_value(data: bytes, tag: int, value: bytes) -> bytes:
    """Replace one top-level element's value (and its length; the meta group length too)."""
    item = element(data, tag)
    if len(value) % 2:
        value += b"\0" if item.vr == "UI" else b" "
    size = struct.pack("<H" if item.length_size == 2 else "<I", len(value))
    out = bytearray(data)
    out[item.value_start : item.end] = value
    out[item.length_at : item.length_at + item.length_size] = size
    if tag >> 16 == 2:
        (old,) = struct.unpack_from("<I", data, 140)
        struct.pack_into("<I", out, 140, old + len(value) - (item.end - item.value_start))
    return bytes(out)


PIXEL_DESCRIPTION = {
    0x00280002: "SamplesPerPixel",
    0x00280004: "PhotometricInterpretation",
    0x00280008: "NumberOfFrames",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280100: "BitsAllocated",
    0x00280101: "BitsStored",
    0x00280102: "HighBit",
    0x00280103: "PixelRepresentation",
    0x00020010: "TransferSyntaxUID",
}
GEOMETRY = {
    0x00200032: "ImagePositionPatient",
    0x00200037: "ImageOrientationPatient",
    0x00280030: "PixelSpacing",
}
# Values the loader may legitimately use that differ between real slices or series (rescale,
# identity, ordering, classification): a changed value is a valid, different file.
MAY_VARY = {
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID",
    "ImageType",
    "Modality",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionNumber",
    "EchoNumbers",
    "EchoTime",
    "TemporalPositionIdentifier",
    "TriggerTime",
    "AcquisitionTime",
    "ContentTime",
    "SeriesDescription",
    "DiffusionBValue",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "NumberOfTemporalPositions",
    "GantryDetectorTilt",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    "SpecificCharacterSet",
    "ImagesInAcquisition",
    "ProtocolName",
    "SequenceName",
    "ScanningSequence",
    "ImageComments",
    "WindowCenter",
    "WindowWidth",
    "LargestImagePixelValue",
    "SmallestImagePixelValue",
    "StudyDescription",
    "BodyPartExamined",
    "Manufacturer",
    "ConvolutionKernel",
    "ContrastBolusAgent",
}


def dicom_region(data: bytes, offset: int) -> tuple[str, str]:
    """(class, what) for a byte offset of a DICOM file: which oracle a flip there gets."""
    if offset < 128:
        return "preamble", "preamble"
    if offset < 132:
        return "structure", "DICM magic"
    elements, _implicit = dicom_layout(data)
    for item in elements:
        if item.start <= offset < item.end:
            break
    else:
        return "structure", "after the last element"
    if offset < item.value_start:
        return "structure", f"{item.keyword} tag/VR/length"
    if item.tag in PIXEL_DESCRIPTION:
        return "pixel_description", item.keyword
    if item.tag in GEOMETRY:
        return "geometry", item.keyword
    if item.tag == 0x7FE00010:
        return "pixel_data", "PixelData"
    if item.vr == "SQ" or item.tag >> 16 & 1 or item.keyword in MAY_VARY or item.vr == "UN":
        return "may_vary", item.keyword
    return "inert", item.keyword


def encapsulated_item_headers(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each 8-byte item tag + length inside encapsulated Pixel Data."""
    pixel = element(data, 0x7FE00010)
    spans, pos = [], pixel.value_start
    while pos + 8 <= pixel.end:
        (length,) = struct.unpack_from("<I", data, pos + 4)
        spans.append((pos, pos + 8))
        pos += 8 + (0 if length == 0xFFFFFFFF else length)
    return spans


# ---------------------------------------------------------------- NIfTI / MHA / NRRD structure

# NIfTI-1 header fields: (name, offset, size, class). "structure" fields must agree with the
# data; "value" fields may hold any valid number (geometry, scaling): a flip there is a valid,
# different file; "inert" fields are text or unused numbers a reader must ignore.
NIFTI_FIELDS = (
    ("sizeof_hdr", 0, 4, "structure"),
    ("data_type", 4, 10, "inert"),
    ("db_name", 14, 18, "inert"),
    ("extents", 32, 4, "inert"),
    ("session_error", 36, 2, "inert"),
    ("regular", 38, 1, "inert"),
    ("dim_info", 39, 1, "value"),
    ("dim", 40, 16, "structure"),
    ("intent_p", 56, 12, "inert"),
    ("intent_code", 68, 2, "value"),
    ("datatype", 70, 2, "structure"),
    ("bitpix", 72, 2, "structure"),
    ("slice_start", 74, 2, "value"),
    ("pixdim", 76, 32, "value"),
    ("vox_offset", 108, 4, "structure"),
    ("scl_slope", 112, 4, "value"),
    ("scl_inter", 116, 4, "value"),
    ("slice_end", 120, 2, "value"),
    ("slice_code", 122, 1, "value"),
    ("xyzt_units", 123, 1, "value"),
    ("cal_max", 124, 4, "inert"),
    ("cal_min", 128, 4, "inert"),
    ("slice_duration", 132, 4, "inert"),
    ("toffset", 136, 4, "value"),
    ("glmax", 140, 4, "inert"),
    ("glmin", 144, 4, "inert"),
    ("descrip", 148, 80, "inert"),
    ("aux_file", 228, 24, "inert"),
    ("qform_code", 252, 2, "value"),
    ("sform_code", 254, 2, "value"),
    ("quatern", 256, 12, "value"),
    ("qoffset", 268, 12, "value"),
    ("srow", 280, 48, "value"),
    ("intent_name", 328, 16, "inert"),
    ("magic", 344, 4, "structure"),
    ("extension", 348, 4, "structure"),
)


def nifti_region(data: bytes, offset: int) -> tuple[str, str]:
    vox_offset = int(struct.unpack_from("<f", data, 108)[0])
    if offset >= vox_offset:
        return "payload", "voxel data"
    for name, start, size, region in NIFTI_FIELDS:
        if start <= offset < start + size:
            return region, name
    return "structure", "between header and data"


_MHA_STRUCTURE = {
    "ObjectType",
    "NDims",
    "BinaryData",
    "BinaryDataByteOrderMSB",
    "CompressedData",
    "CompressedDataSize",
    "DimSize",
    "ElementType",
    "ElementDataFile",
    "HeaderSize",
    "ElementNumberOfChannels",
}
_NRRD_STRUCTURE = {"NRRD0004", "type", "dimension", "sizes", "endian", "encoding", "", "#"}


def text_header_region(header: bytes, offset: int, fmt: str) -> tuple[str, str]:
    """For MHA/NRRD: a flip in a line (or its newline, which joins it to the next) that says
    how to read the data is structural; one in a geometry line gives a valid, different file."""
    lines = header.split(b"\n")
    pos = 0
    for index, line in enumerate(lines):
        end = pos + len(line) + 1
        if pos <= offset < end:
            touched = [line] + (
                [lines[index + 1]] if offset == end - 1 and index + 1 < len(lines) else []
            )
            keys = [_line_key(t, fmt) for t in touched]
            structure = _MHA_STRUCTURE if fmt.startswith("mha") else _NRRD_STRUCTURE
            region = "structure" if any(k in structure for k in keys) else "value"
            return region, "/".join(k or "(blank line)" for k in keys)
        pos = end
    return "structure", "end of header"


def _line_key(line: bytes, fmt: str) -> str:
    text = line.decode("latin-1")
    if fmt.startswith("nrrd"):
        if text.startswith("#"):
            return "#"
        return text.split(":", 1)[0].strip() if ":" in text else text.strip()
    return text.split("=", 1)[0].strip()


# ---------------------------------------------------------------- the plan


def plan(bases: dict[str, tuple[Base, Path]], seed: int, scale: float = 1.0) -> list[Mutant]:
    """Every mutant, in a fixed order from ``seed``: each base cycles through the mutations
    that apply to its format, so every class is exercised on every base."""
    rng = random.Random(seed)
    mutants: list[Mutant] = []
    for base, pristine in bases.values():
        makers = _MAKERS[base.fmt]
        count = max(len(makers), round(base.mutants * scale))
        for index in range(count):
            maker = makers[index % len(makers)]
            made = maker(rng, base, pristine)
            ident = f"{len(mutants):03d}-{base.name}-{made.kind.split('.', 1)[1]}"
            mutants.append(
                Mutant(
                    ident,
                    base.name,
                    made.kind,
                    made.oracle,
                    made.description,
                    made.build,
                    made.expect,
                )
            )
    return mutants


@dataclass(frozen=True)
class _Made:
    kind: str
    oracle: str
    description: str
    build: Callable[[], Overrides]
    expect: dict = field(default_factory=dict)


def _flip(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


# --- DICOM series and files


def _slice_files(pristine: Path) -> list[Path]:
    return sorted(pristine.iterdir()) if pristine.is_dir() else [pristine]


def _pick_slice(rng: random.Random, pristine: Path) -> tuple[int, Path]:
    files = _slice_files(pristine)
    # Ends matter most: a lost first or last slice leaves no gap behind.
    index = rng.choice([0, len(files) - 1, rng.randrange(len(files))])
    return index, files[index]


def _slice_name(index: int, path: Path, pristine: Path) -> str:
    return f"slice file {path.name} (#{index + 1} of {len(_slice_files(pristine))} by name)"


def _dicom_header_flip(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    pixel = element(data, 0x7FE00010)
    # Choose the kind of byte first, so the rare structural bytes are hit as often as values.
    wanted = rng.choice(["structure", "pixel_description", "geometry", "inert", "may_vary", "any"])
    offsets = list(range(0, pixel.value_start))
    rng.shuffle(offsets)
    offset = offsets[0]
    for candidate in offsets[:4000]:
        if wanted == "any" or dicom_region(data, candidate)[0] == wanted:
            offset = candidate
            break
    bit = rng.randrange(8)
    region, what = dicom_region(data, offset)
    if region == "geometry" and base.fmt == "dicom_mf":
        region = "may_vary"  # a multi-frame file's positions live in per-frame sequences
    oracle = UNDETECTABLE if region == "may_vary" else STRICT
    return _Made(
        f"dicom.header_flip.{region}",
        oracle,
        f"{_slice_name(index, path, pristine)}: bit {bit} of byte {offset} flipped ({what})",
        lambda: {path.name: _flip(data, offset, bit)},
    )


def _dicom_payload_flip(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    pixel = element(data, 0x7FE00010)
    offset = rng.randrange(pixel.value_start, pixel.end)
    bit = rng.randrange(8)
    kind, oracle, what = "dicom.payload_flip.raw_pixels", UNDETECTABLE, "raw pixel data"
    items = _item_headers_or_empty(data)
    if any(a <= offset < b for a, b in items):
        kind, oracle, what = "dicom.payload_flip.encapsulation", STRICT, "encapsulation item header"
    elif items:
        kind, what = "dicom.payload_flip.compressed_stream", "JPEG 2000 codestream (no checksum)"
    return _Made(
        kind,
        oracle,
        f"{_slice_name(index, path, pristine)}: bit {bit} of byte {offset} flipped ({what})",
        lambda: {path.name: _flip(data, offset, bit)},
    )


def _item_headers_or_empty(data: bytes) -> list[tuple[int, int]]:
    pixel = element(data, 0x7FE00010)
    length = struct.unpack_from("<I", data, pixel.length_at)[0] if pixel.length_size == 4 else 0
    return encapsulated_item_headers(data) if length == 0xFFFFFFFF else []


def _dicom_encapsulation_flip(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    spans = _item_headers_or_empty(data)
    if not spans:
        return _dicom_payload_flip(rng, base, pristine)
    start, end = rng.choice(spans)
    offset, bit = rng.randrange(start, end), rng.randrange(8)
    return _Made(
        "dicom.payload_flip.encapsulation",
        STRICT,
        f"{_slice_name(index, path, pristine)}: bit {bit} of byte {offset} flipped "
        "(encapsulation item tag/length)",
        lambda: {path.name: _flip(data, offset, bit)},
    )


def _dicom_truncate(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    pixel = element(data, 0x7FE00010)
    where = rng.choice(["header", "pixels", "pixels", "last bytes"])
    if where == "header":
        cut = rng.randrange(1, pixel.value_start)
    elif where == "pixels":
        cut = rng.randrange(pixel.value_start, len(data))
    else:
        cut = len(data) - rng.choice([1, 2, 7])
    return _Made(
        # A cut inside the 128-byte preamble leaves nothing that says "DICOM": kept apart.
        "dicom.truncate.before_magic" if cut < 132 else "dicom.truncate",
        STRICT,
        f"{_slice_name(index, path, pristine)}: cut to {cut} of {len(data)} bytes ({where})",
        lambda: {path.name: data[:cut]},
    )


def _dicom_zero_length(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    return _Made(
        "dicom.zero_length",
        STRICT,
        f"{_slice_name(index, path, pristine)}: emptied (0 bytes)",
        lambda: {path.name: b""},
    )


def _dicom_field_edit(rng: random.Random, base: Base, pristine: Path) -> _Made:
    """One field changed on one slice (or the one multi-frame file), bytes otherwise untouched."""
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    choices = [
        "rows",
        "columns",
        "bits_allocated",
        "bits_stored",
        "pixel_representation",
        "transfer_syntax",
        "samples_per_pixel",
    ]
    if base.fmt == "dicom":
        choices += ["pixel_spacing", "position", "position", "orientation"]
    else:
        choices += ["number_of_frames"]
    edit = rng.choice(choices)
    if edit in ("rows", "columns"):
        tag, old = (0x00280010, ds.Rows) if edit == "rows" else (0x00280011, ds.Columns)
        new = rng.choice([old + 1, old - 1, old * 2, old // 2, 0, 65535])
        value, what = struct.pack("<H", new), f"{edit.title()} {old} -> {new}"
    elif edit == "bits_allocated":
        new = rng.choice([8, 32, 12, 0])
        tag, value, what = (
            0x00280100,
            struct.pack("<H", new),
            f"BitsAllocated {ds.BitsAllocated} -> {new}",
        )
    elif edit == "bits_stored":
        new = rng.choice([8, 17, 0, 4])
        tag, value, what = (
            0x00280101,
            struct.pack("<H", new),
            f"BitsStored {ds.BitsStored} -> {new}",
        )
    elif edit == "pixel_representation":
        new = 1 - int(ds.PixelRepresentation)
        tag, value = 0x00280103, struct.pack("<H", new)
        what = f"PixelRepresentation {ds.PixelRepresentation} -> {new}"
    elif edit == "samples_per_pixel":
        tag, value, what = 0x00280002, struct.pack("<H", 3), "SamplesPerPixel 1 -> 3"
    elif edit == "number_of_frames":
        old = int(ds.NumberOfFrames)
        new = rng.choice([old + 1, old - 1, 0, 10**9])
        tag, value, what = 0x00280008, str(new).encode(), f"NumberOfFrames {old} -> {new}"
    elif edit == "transfer_syntax":
        new_uid = rng.choice(
            [
                ImplicitVRLittleEndian,
                ExplicitVRLittleEndian,
                ExplicitVRBigEndian,
                JPEGBaseline8Bit,
                RLELossless,
                DeflatedExplicitVRLittleEndian,
            ]
        )
        if new_uid == ds.file_meta.TransferSyntaxUID:
            new_uid = ExplicitVRBigEndian
        tag, value = 0x00020010, str(new_uid).encode()
        old_name = ds.file_meta.TransferSyntaxUID.name
        what = f"TransferSyntaxUID {old_name} -> {new_uid.name} (data unchanged)"
    elif edit == "pixel_spacing":
        row, col = (float(v) for v in ds.PixelSpacing)
        new_ps = rng.choice(
            [(row * 1.25, col * 1.25), (0.0, col), (float("nan"), col), (-row, col)]
        )
        tag, value = 0x00280030, "\\".join(_ds(v) for v in new_ps).encode()
        what = f"PixelSpacing {row:g}\\{col:g} -> {value.decode()} on this slice only"
    elif edit == "orientation":
        tag, value = 0x00200037, b"1\\0\\0\\0\\0.9\\0.4359"
        what = "ImageOrientationPatient tilted (column 0.9, 0.436) on this slice only"
    else:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        new_pos, label = rng.choice(
            [
                ((x, y, float("nan")), "z NaN"),
                ((float("nan"),) * 3, "all NaN"),
                ((0.0, 0.0, 0.0), "0,0,0"),
                ((x, y, 1e308), "z 1e308"),
                ((x, y, z + 0.4 * _gap(pristine)), "z moved 0.4 gaps"),
                ((x + 3.0, y, z), "x moved 3 mm"),
                ((x, y, z + 1000.0), "z moved 1000 mm"),
            ]
        )
        tag, value = 0x00200032, "\\".join(_ds(v) for v in new_pos).encode()
        what = f"ImagePositionPatient -> {label} on this slice only"
    return _Made(
        f"dicom.field_edit.{edit}",
        STRICT,
        f"{_slice_name(index, path, pristine)}: {what}",
        lambda: {path.name: set_value(data, tag, value)},
    )


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters) for any float, NaN included."""
    if math.isnan(value):
        return "NaN"
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6g}"


@cache
def _gap(pristine: Path) -> float:
    zs = sorted(
        float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
        for p in _slice_files(pristine)
    )
    return (zs[-1] - zs[0]) / max(1, len(zs) - 1) or 1.0


def _dicom_huge_length(rng: random.Random, base: Base, pristine: Path) -> _Made:
    index, path = _pick_slice(rng, pristine)
    data = path.read_bytes()
    elements, _implicit = dicom_layout(data)
    pick = rng.choice([e for e in elements if e.tag >> 16 != 2] + [element(data, 0x7FE00010)] * 3)
    huge = 0xFFFF if pick.length_size == 2 else rng.choice([0xFFFFFFF0, 0x7FFFFFF0, len(data) * 2])
    out = bytearray(data)
    out[pick.length_at : pick.length_at + pick.length_size] = huge.to_bytes(
        pick.length_size, "little"
    )
    return _Made(
        "dicom.huge_length",
        STRICT,
        f"{_slice_name(index, path, pristine)}: length of {pick.keyword} set to {huge:#x}",
        lambda: {path.name: bytes(out)},
    )


def _dicom_transcode(rng: random.Random, base: Base, pristine: Path) -> _Made:
    """One slice re-encoded by pydicom in another valid little-endian syntax: the same content."""
    index, path = _pick_slice(rng, pristine)

    def build() -> Overrides:
        ds = pydicom.dcmread(path)
        implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.PatientComments = "re-written"  # keep the codestream; change only the header
            target = ds.file_meta.TransferSyntaxUID
        else:
            target = ExplicitVRLittleEndian if implicit else ImplicitVRLittleEndian
            ds.file_meta.TransferSyntaxUID = target
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=target == ImplicitVRLittleEndian, little_endian=True)
        return {path.name: buffer.getvalue()}

    return _Made(
        "dicom.transcoded",
        STRICT,
        f"{_slice_name(index, path, pristine)}: re-written by pydicom (implicit <-> explicit VR)",
        build,
    )


def _dicom_series_edit(rng: random.Random, base: Base, pristine: Path) -> _Made:
    """A valid change on every slice: the volume must change exactly as the files now say."""
    files = _slice_files(pristine)
    edit = rng.choice(["pixel_spacing", "shift"])
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    row, col = (float(v) for v in first.PixelSpacing)
    new_row, new_col = round(row * 0.8, 4), round(col * 1.3, 4)
    shift = (12.5, -7.25, 30.0)

    def build() -> Overrides:
        out = {}
        for path in files:
            ds = pydicom.dcmread(path)
            if edit == "pixel_spacing":
                ds.PixelSpacing = [new_row, new_col]
            else:
                ds.ImagePositionPatient = [
                    round(float(v) + d, 4)
                    for v, d in zip(ds.ImagePositionPatient, shift, strict=True)
                ]
            buffer = io.BytesIO()
            ds.save_as(buffer)
            out[path.name] = buffer.getvalue()
        return out

    if edit == "pixel_spacing":
        # PixelSpacing is (row spacing = y, column spacing = x).
        expect, what = {"spacing_xy": (new_col, new_row)}, f"PixelSpacing -> {new_row}\\{new_col}"
    else:
        expect, what = {"origin_shift": shift}, f"every ImagePositionPatient moved by {shift} mm"
    return _Made("dicom.series_edit", EXPECTED, f"all {len(files)} files: {what}", build, expect)


# --- NIfTI


def _nifti_bytes(base: Base, pristine: Path) -> tuple[bytes, bool]:
    raw = pristine.read_bytes()
    compressed = base.fmt == "nifti_gz"
    return (gzip.decompress(raw) if compressed else raw), compressed


def _pack(data: bytes, compressed: bool) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0) if compressed else data


def _nifti_flip(rng: random.Random, base: Base, pristine: Path) -> _Made:
    raw = pristine.read_bytes()
    name = pristine.name
    if base.fmt == "nifti_gz":
        where = rng.choice(["gzip header", "deflate stream", "deflate stream", "trailer"])
        if where == "gzip header":
            offset = rng.randrange(0, 10)
        elif where == "trailer":
            offset = rng.randrange(len(raw) - 8, len(raw))
        else:
            offset = rng.randrange(10, len(raw) - 8)
        bit = rng.randrange(8)
        kind = "nifti_gz.flip." + where.replace(" ", "_")
        return _Made(
            kind,
            STRICT,
            f"{name}: bit {bit} of byte {offset} of {len(raw)} flipped ({where})",
            lambda: {name: _flip(raw, offset, bit)},
        )
    wanted = rng.choice(["structure", "inert", "value", "payload"])
    vox = int(struct.unpack_from("<f", raw, 108)[0])
    offset = rng.randrange(vox, len(raw)) if wanted == "payload" else rng.randrange(0, vox)
    for _ in range(2000):
        if wanted == "payload" or nifti_region(raw, offset)[0] == wanted:
            break
        offset = rng.randrange(0, vox)
    region, what = nifti_region(raw, offset)
    bit = rng.randrange(8)
    oracle = UNDETECTABLE if region in ("payload", "value") else STRICT
    needed = _nifti_needs(_flip(raw, offset, bit)) if region == "structure" else None
    return _Made(
        f"nifti.flip.{region}{_less_suffix(needed, len(raw))}",
        oracle,
        f"{name}: bit {bit} of byte {offset} flipped ({what}){_declared_vs_held(needed, len(raw))}",
        lambda: {name: _flip(raw, offset, bit)},
    )


def _file_truncate(rng: random.Random, base: Base, pristine: Path) -> _Made:
    raw = pristine.read_bytes()
    name = pristine.name
    where = rng.choice(["anywhere", "anywhere", "early", "last bytes"])
    if where == "early":
        cut = rng.randrange(150, 420)  # just after a (compressed) header, as in the issue
    elif where == "last bytes":
        cut = len(raw) - rng.choice([1, 4, 9, 100])
    else:
        cut = rng.randrange(1, len(raw))
    return _Made(
        f"{base.fmt}.truncate",
        STRICT,
        f"{name}: cut to {cut} of {len(raw)} bytes ({where})",
        lambda: {name: raw[:cut]},
    )


def _file_zero_length(rng: random.Random, base: Base, pristine: Path) -> _Made:
    name = pristine.name
    return _Made(
        f"{base.fmt}.zero_length",
        STRICT,
        f"{name}: emptied (0 bytes)",
        lambda: {name: b""},
    )


def _nifti_field_edit(rng: random.Random, base: Base, pristine: Path) -> _Made:
    data, compressed = _nifti_bytes(base, pristine)
    name = pristine.name
    dims = struct.unpack_from("<8h", data, 40)
    pixdim = struct.unpack_from("<8f", data, 76)
    datatype, bitpix = struct.unpack_from("<2h", data, 70)
    edit = rng.choice(
        [
            "dim",
            "dim0",
            "datatype",
            "bitpix",
            "datatype_and_bitpix",
            "pixdim",
            "pixdim",
            "vox_offset",
            "scl_slope",
            "sizeof_hdr",
            "magic",
        ]
    )
    out = bytearray(data)
    if edit == "dim":
        axis = rng.randrange(1, 4)
        new = rng.choice([dims[axis] + 1, dims[axis] - 1, dims[axis] * 2, dims[axis] // 2, 0, -3])
        struct.pack_into("<h", out, 40 + 2 * axis, new)
        what = f"dim[{axis}] {dims[axis]} -> {new}"
    elif edit == "dim0":
        new = rng.choice([0, 2, 8, -1])
        struct.pack_into("<h", out, 40, new)
        what = f"dim[0] {dims[0]} -> {new}"
    elif edit in ("datatype", "bitpix", "datatype_and_bitpix"):
        # (datatype, bitpix) pairs: uint8, int16, int32, float32, float64, int8, uint16.
        pairs = [(2, 8), (4, 16), (8, 32), (16, 32), (64, 64), (256, 8), (512, 16)]
        # Only pairs of another width: int16 -> uint16 with bitpix 16 is a valid, different file
        # (no reader can tell), not a disagreement.
        other_type, other_bits = rng.choice([p for p in pairs if p[1] != bitpix])
        if edit == "datatype":
            struct.pack_into("<h", out, 70, other_type)
            what = f"datatype {datatype} -> {other_type}, bitpix {bitpix} kept"
        elif edit == "bitpix":
            other_bits = rng.choice([b for b in (8, 32, 64, 12) if b != bitpix])
            struct.pack_into("<h", out, 72, other_bits)
            what = f"bitpix {bitpix} -> {other_bits}, datatype {datatype} kept"
        else:
            struct.pack_into("<2h", out, 70, other_type, other_bits)
            what = (
                f"datatype/bitpix {datatype}/{bitpix} -> {other_type}/{other_bits} (data unchanged)"
            )
    elif edit == "pixdim":
        axis = rng.randrange(1, 4)
        new_f = rng.choice([float("nan"), 0.0, -pixdim[axis] * 1.5, float("inf")])
        struct.pack_into("<f", out, 76 + 4 * axis, new_f)
        what = f"pixdim[{axis}] {pixdim[axis]:g} -> {new_f:g}"
    elif edit == "vox_offset":
        new_f = rng.choice([0.0, 344.0, 352.0 + 64, 1e9, float("nan"), -352.0])
        struct.pack_into("<f", out, 108, new_f)
        what = f"vox_offset -> {new_f:g}"
    elif edit == "scl_slope":
        new_f = rng.choice([float("nan"), float("inf")])
        struct.pack_into("<f", out, 112, new_f)
        what = f"scl_slope -> {new_f:g}"
    elif edit == "sizeof_hdr":
        new = rng.choice([0, 349, 540])
        struct.pack_into("<i", out, 0, new)
        what = f"sizeof_hdr 348 -> {new}"
    else:
        new_magic = rng.choice([b"ni1\0", b"n+2\0", b"xyz\0"])
        out[344:348] = new_magic
        what = f"magic -> {new_magic!r}"
    packed = _pack(bytes(out), compressed)
    needed = _nifti_needs(bytes(out))
    return _Made(
        f"{base.fmt}.field_edit.{edit}{_less_suffix(needed, len(data))}",
        STRICT,
        f"{name}: {what}{_declared_vs_held(needed, len(data))}",
        lambda: {name: packed},
    )


def _nifti_needs(header: bytes) -> int | None:
    """Bytes a NIfTI-1 header says the file holds (offset + voxels), when it says so sanely."""
    dims = struct.unpack_from("<8h", header, 40)
    bitpix = struct.unpack_from("<h", header, 72)[0]
    offset = struct.unpack_from("<f", header, 108)[0]
    used = dims[1 : dims[0] + 1] if 1 <= dims[0] <= 7 else ()
    if not used or min(used) <= 0 or bitpix <= 0 or bitpix % 8 or not math.isfinite(offset):
        return None
    return int(offset) + math.prod(used) * bitpix // 8


def _less_suffix(needed: int | None, held: int) -> str:
    """Kept apart in the counts: whether a reader must refuse a file that holds *more* data than
    its header declares (trailing bytes) is a judgement the formats leave open."""
    return ".declares_less" if needed is not None and needed < held else ""


def _declared_vs_held(needed: int | None, held: int) -> str:
    """Says when a header edit leaves a header that declares *less* data than the file holds:
    such a file reads without any shortage, so only a reader that compares the two notices."""
    if needed is None or needed == held:
        return ""
    return f" [header declares {needed} bytes, the file holds {held}]"


# --- MHA and NRRD


def _compressed_burst(rng: random.Random, base: Base, pristine: Path) -> _Made:
    """64 bytes changed in the middle of a gzip/zlib stream (size trailer intact), as a bad
    copy does: the stream's CRC-32/Adler-32 no longer matches, which a reader must notice."""
    raw = pristine.read_bytes()
    name = pristine.name
    start = 10 if base.fmt == "nifti_gz" else len(_text_split(base, raw)[0])
    end = len(raw) - (8 if base.fmt.endswith("gz") else 4)
    middle = (start + end) // 2
    offset = rng.randrange(middle - (end - start) // 4, middle + (end - start) // 4 - 64)
    noise = bytes(rng.randrange(1, 256) for _ in range(64))
    changed = bytearray(raw)
    for i, value in enumerate(noise):
        changed[offset + i] ^= value
    return _Made(
        f"{base.fmt}.flip.compressed_burst64",
        STRICT,
        f"{name}: 64 bytes at {offset} of {len(raw)} changed (inside the compressed stream)",
        lambda: {name: bytes(changed)},
    )


def _text_split(base: Base, raw: bytes) -> tuple[bytes, bytes]:
    return _split_mha(raw) if base.fmt.startswith("mha") else _split_nrrd(raw)


def _text_flip(rng: random.Random, base: Base, pristine: Path) -> _Made:
    raw = pristine.read_bytes()
    name = pristine.name
    header, _payload = _text_split(base, raw)
    compressed = base.fmt.endswith(("zlib", "gz"))
    family = base.fmt
    if rng.random() < 0.5:
        offset = rng.randrange(0, len(header))
        region, what = text_header_region(header, offset, base.fmt)
        oracle = STRICT if region == "structure" else UNDETECTABLE
        kind = f"{family}.flip.header_{region}"
    else:
        offset = rng.randrange(len(header), len(raw))
        if compressed:
            kind, oracle, what = (
                f"{family}.flip.compressed_stream",
                STRICT,
                "compressed data (checksummed)",
            )
        else:
            kind, oracle, what = f"{family}.flip.payload", UNDETECTABLE, "raw voxel data"
    bit = rng.randrange(8)
    return _Made(
        kind,
        oracle,
        f"{name}: bit {bit} of byte {offset} flipped ({what})",
        lambda: {name: _flip(raw, offset, bit)},
    )


_TYPE_BYTES = {
    "MET_SHORT": 2,
    "MET_INT": 4,
    "MET_UCHAR": 1,
    "MET_DOUBLE": 8,
    "short": 2,
    "int": 4,
    "uchar": 1,
    "double": 8,
}


def _text_needs(lines: list[str], sep: str, base: Base) -> int | None:
    """Voxel bytes an MHA/NRRD header declares (sizes x type size)."""
    fields = {line.split(sep, 1)[0]: line.split(sep, 1)[1] for line in lines if sep in line}
    sizes = fields.get("DimSize" if base.fmt.startswith("mha") else "sizes", "")
    kind = fields.get("ElementType" if base.fmt.startswith("mha") else "type", "").strip()
    try:
        return math.prod(int(v) for v in sizes.split()) * _TYPE_BYTES[kind]
    except (KeyError, ValueError):
        return None


def _payload_bytes(base: Base, payload: bytes) -> int:
    if base.fmt == "mha_zlib":
        return len(zlib.decompress(payload))
    if base.fmt == "nrrd_gz":
        return len(gzip.decompress(payload))
    return len(payload)


def _text_field_edit(rng: random.Random, base: Base, pristine: Path) -> _Made:
    raw = pristine.read_bytes()
    name = pristine.name
    header, payload = _text_split(base, raw)
    text = header.decode("latin-1")
    if base.fmt.startswith("mha"):
        sizes_key, sep, type_key, spacing_key = "DimSize", " = ", "ElementType", "ElementSpacing"
        types = ["MET_INT", "MET_UCHAR", "MET_DOUBLE", "MET_BOGUS"]
    else:
        sizes_key, sep, type_key, spacing_key = "sizes", ": ", "type", "space directions"
        types = ["int", "uchar", "double", "bogus"]
    lines = text.split("\n")
    edit = rng.choice(["sizes", "sizes", "element_type", "spacing", "huge_sizes", "encoding"])
    for i, line in enumerate(lines):
        key = line.split(sep, 1)[0]
        if edit in ("sizes", "huge_sizes") and key == sizes_key:
            values = line.split(sep, 1)[1].split()
            if edit == "huge_sizes":
                values = ["100000", "100000", "100000"]
            else:
                axis = rng.randrange(3)
                values[axis] = str(
                    rng.choice(
                        [int(values[axis]) + 1, int(values[axis]) - 1, int(values[axis]) * 2]
                    )
                )
            lines[i] = f"{key}{sep}{' '.join(values)}"
        elif edit == "element_type" and key == type_key:
            lines[i] = f"{key}{sep}{rng.choice(types)}"
        elif edit == "spacing" and key == spacing_key:
            # A negative NRRD direction vector is a valid flipped axis; a negative MHA spacing
            # is not (its directions live in TransformMatrix).
            bad = rng.choice(["nan", "0", "-2"] if base.fmt.startswith("mha") else ["nan", "0"])
            if base.fmt.startswith("mha"):
                values = line.split(sep, 1)[1].split()
                values[rng.randrange(3)] = bad
                lines[i] = f"{key}{sep}{' '.join(values)}"
            else:
                lines[i] = f"{key}{sep}({bad},0,0) (0,{bad},0) (0,0,1)"
        elif edit == "encoding" and key in ("CompressedData", "encoding"):
            flipped = {"True": "False", "False": "True", "gzip": "raw", "raw": "gzip"}
            lines[i] = f"{key}{sep}{flipped.get(line.split(sep, 1)[1].strip(), 'raw')}"
    changed = "\n".join(lines).encode("latin-1")
    what = next((new for new, old in zip(lines, text.split("\n"), strict=True) if new != old), edit)
    held = _payload_bytes(base, payload)
    needed = _text_needs(lines, sep, base)
    return _Made(
        f"{base.fmt}.field_edit.{edit}{_less_suffix(needed, held)}",
        STRICT,
        f"{name}: header line -> {what!r}{_declared_vs_held(needed, held)}",
        lambda: {name: changed + payload},
    )


_DICOM = [
    _dicom_header_flip,
    _dicom_truncate,
    _dicom_field_edit,
    _dicom_payload_flip,
    _dicom_zero_length,
    _dicom_huge_length,
    _dicom_header_flip,
    _dicom_field_edit,
    _dicom_encapsulation_flip,
    _dicom_transcode,
    _dicom_series_edit,
    _dicom_truncate,
    _dicom_field_edit,
]
_MAKERS: dict[str, list[Callable[[random.Random, Base, Path], _Made]]] = {
    "dicom": _DICOM,
    "dicom_mf": [m for m in _DICOM if m not in (_dicom_series_edit, _dicom_encapsulation_flip)],
    "nifti": [
        _nifti_flip,
        _file_truncate,
        _nifti_field_edit,
        _nifti_flip,
        _file_zero_length,
        _nifti_field_edit,
        _file_truncate,
    ],
    "nifti_gz": [
        _compressed_burst,
        _nifti_flip,
        _file_truncate,
        _nifti_field_edit,
        _nifti_flip,
        _file_zero_length,
        _nifti_field_edit,
        _file_truncate,
    ],
    "mha_raw": [_text_flip, _file_truncate, _text_field_edit, _file_zero_length, _text_flip],
    "mha_zlib": [
        _text_flip,
        _compressed_burst,
        _file_truncate,
        _text_field_edit,
        _file_zero_length,
        _text_flip,
    ],
    "nrrd_raw": [_text_flip, _file_truncate, _text_field_edit, _file_zero_length, _text_flip],
    "nrrd_gz": [
        _text_flip,
        _compressed_burst,
        _file_truncate,
        _text_field_edit,
        _file_zero_length,
        _text_flip,
    ],
}


def materialize(mutant: Mutant, pristine: Path, folder: Path) -> Path:
    """Write the mutant into ``folder`` (a fresh one); the path to hand to the loader."""
    folder.mkdir(parents=True)
    overrides = mutant.build()
    for source in _slice_files(pristine):
        target = folder / source.name
        if source.name in overrides:
            target.write_bytes(overrides[source.name])
        else:
            shutil.copyfile(source, target)
    return folder if pristine.is_dir() else folder / pristine.name
