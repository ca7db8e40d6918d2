"""Where a MetaImage (.mha/.mhd) or NRRD (.nrrd/.nhdr) file keeps its voxels, and how many bytes
its header says they take, checked against what the file holds.

SimpleITK (ITK 5.4) reads these formats by their header alone (found by the fuzz test, issue 16):
a compressed MetaImage's zlib stream is inflated without its Adler-32 being checked and an NRRD's
gzip data without its CRC, so flipped bits loaded as wrong voxels; a ``DimSize``/``sizes`` that
promises more than the data holds was zero-filled, one that promises less read the first bytes
and dropped the rest; raw voxels marked ``CompressedData = True`` loaded as garbage. The header
says exactly how many bytes the voxels take (sizes x element size x channels), so any other
amount is refused, naming what disagrees.

Only layouts whose size is certain are checked: ASCII data, lists or patterns of slice files,
skipped header bytes and unknown element types are left to the reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from meddiag_desktop.scans import gzip_stream, payload_size, text_image_headers
from meddiag_desktop.scans.gzip_stream import DamagedStream

# MetaIO element types whose size is fixed (MET_LONG is left out: its size is the platform's).
_METAIMAGE_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
# NRRD type names (the spec's synonyms), by size in bytes.
_NRRD_NAMES = {
    1: "signed char, int8, int8_t, uchar, unsigned char, uint8, uint8_t",
    2: "short, short int, signed short, signed short int, int16, int16_t, ushort, "
    "unsigned short, unsigned short int, uint16, uint16_t",
    4: "int, signed int, int32, int32_t, uint, unsigned int, uint32, uint32_t, float",
    8: "longlong, long long, long long int, signed long long, signed long long int, int64, "
    "int64_t, ulonglong, unsigned long long, unsigned long long int, uint64, uint64_t, double",
}
_NRRD_BYTES = {name: size for size, names in _NRRD_NAMES.items() for name in names.split(", ")}
_NRRD_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip"}


@dataclass(frozen=True)
class Payload:
    """What a header says about its voxel data, and where that data is."""

    data_file: Path  # the file itself, or the .raw/.zraw/.gz a .mhd/.nhdr names
    start: int  # offset of the voxels (or of their compressed stream) in ``data_file``
    declared: int  # voxel bytes the header's sizes and element type call for
    encoding: str  # "raw", "zlib" (MetaImage) or "gzip" (NRRD)
    compressed_size: int | None = None  # MetaImage CompressedDataSize, when given


def declared_payload(path: Path) -> Payload | None:
    """The voxel data the header of ``path`` declares; None when its size is not certain."""
    try:
        head = text_image_headers.read_head(path)
    except OSError:
        return None
    name = path.name.lower()
    if name.endswith((".mha", ".mhd")):
        return _metaimage(path, head)
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd(path, head)
    return None


def quick_problem(payload: Payload) -> str:
    """What a listing can afford to tell: a raw payload of the wrong size, a compressed one of
    another size than its CompressedDataSize or whose first bytes are not zlib data. Empty when
    they agree (or cannot be read)."""
    try:
        held = payload.data_file.stat().st_size - payload.start
    except OSError:
        return ""  # a missing data file: the reader names it
    if payload.encoding == "raw":
        return payload_size.size_problem(max(held, 0), payload.declared, compressed=False)
    if payload.compressed_size is not None and payload.compressed_size != held:
        truncated = "is truncated: it " if held < payload.compressed_size else ""
        return (
            f"{truncated}has CompressedDataSize = {payload.compressed_size}, but "
            f"{max(held, 0):,} bytes of compressed data follow its header"
        )
    if payload.encoding == "zlib":  # raw voxels marked compressed fail at once
        try:
            gzip_stream.verify_zlib_start(payload.data_file, payload.start)
        except DamagedStream as exc:
            return str(exc)
    return ""


def full_problem(payload: Payload) -> str:
    """:func:`quick_problem`, then the compressed stream inflated once in full: its checksum
    (Adler-32 or CRC-32) and the length it holds against what the header declares."""
    problem = quick_problem(payload)
    if problem or payload.encoding == "raw":
        return problem
    try:
        if payload.encoding == "zlib":
            held = gzip_stream.verify_zlib_stream(payload.data_file, payload.start)
        else:
            held = gzip_stream.verify_whole_stream(
                payload.data_file, payload.declared, start=payload.start
            )
    except DamagedStream as exc:
        return str(exc)
    except OSError:
        return ""  # the reader says what is wrong with the file itself
    return payload_size.size_problem(held, payload.declared, compressed=True)


def _metaimage(path: Path, head: str) -> Payload | None:
    fields = text_image_headers.metaimage_fields(head)
    element = _METAIMAGE_BYTES.get(fields.get("ElementType", ""))
    sizes = _integers(fields.get("DimSize", ""))
    channels = _integers(fields.get("ElementNumberOfChannels", "1"))
    data_file = fields.get("ElementDataFile", "")
    if (
        element is None
        or not sizes
        or not channels
        or fields.get("BinaryData", "").lower() != "true"
        or fields.get("HeaderSize", "0") != "0"
        or not data_file
        or " " in data_file
        or "%" in data_file
        or data_file.upper() == "LIST"
    ):
        return None
    compressed = fields.get("CompressedData", "false").lower() == "true"
    compressed_size = _integers(fields.get("CompressedDataSize", ""))
    if data_file.upper() == "LOCAL":
        marker = head.find("ElementDataFile")
        end = head.find("\n", marker)
        if end < 0:
            return None  # the header does not end within what was read
        target, start = path, end + 1
    else:
        target, start = path.parent / data_file, 0
    return Payload(
        data_file=target,
        start=start,
        declared=math.prod(sizes) * channels[0] * element,
        encoding="zlib" if compressed else "raw",
        compressed_size=compressed_size[0] if compressed and len(compressed_size) == 1 else None,
    )


def _nrrd(path: Path, head: str) -> Payload | None:
    if not head.startswith("NRRD"):
        return None
    fields = text_image_headers.nrrd_fields(head)
    element = _NRRD_BYTES.get(" ".join(fields.get("type", "").lower().split()))
    sizes = _integers(fields.get("sizes", ""))
    encoding = _NRRD_ENCODINGS.get(fields.get("encoding", "").lower())
    data_file = fields.get("data file", fields.get("datafile"))
    skips = (fields.get(k, "0") for k in ("line skip", "lineskip", "byte skip", "byteskip"))
    if element is None or not sizes or encoding is None or any(s != "0" for s in skips):
        return None
    if data_file is None:
        end = _blank_line_end(head)
        if end is None or path.name.lower().endswith(".nhdr"):
            return None
        target, start = path, end
    elif " " in data_file or "%" in data_file or data_file.upper().startswith("LIST"):
        return None
    else:
        target, start = path.parent / data_file, 0
    return Payload(target, start, math.prod(sizes) * element, encoding)


def _blank_line_end(head: str) -> int | None:
    """Offset just after the blank line that ends an NRRD header (``\\n`` or ``\\r\\n`` lines)."""
    position = 0
    lines = head.split("\n")
    for line in lines[:-1]:  # the last piece has no newline: the header may go on past it
        position += len(line) + 1
        if line in ("", "\r"):
            return position
    return None


def _integers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split()]
    except ValueError:
        return []
    return values if all(v > 0 for v in values) else []
