"""The few NIfTI-1/2 header fields that decide whether a file can be trusted, read with ``struct``.

SimpleITK (ITK 5.4) reads NIfTI headers generously where a reviewer needs it strict (measured,
PITFALLS.md): it reads voxels by ``datatype`` whatever ``bitpix`` says, zero-fills data that ends
early, turns a NaN, infinite or zero ``pixdim`` into 1 mm, takes a negative one as its absolute
value and mirrors that axis (nibabel refuses it: "pixdims[1,2,3] should be positive"), and
replaces a NaN ``qoffset`` with 0, and reads a 348-byte header without the NIfTI magic as
ANALYZE 7.5 (origin 0, another direction). Each of those gives a plausible but wrong scan, so
the header is checked here first and each becomes a reason naming the field.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

# NIfTI datatype code -> (name, bits per voxel), from nifti1.h.
DATATYPES: dict[int, tuple[str, int]] = {
    2: ("uint8", 8),
    4: ("int16", 16),
    8: ("int32", 32),
    16: ("float32", 32),
    32: ("complex64", 64),
    64: ("float64", 64),
    128: ("RGB24", 24),
    256: ("int8", 8),
    512: ("uint16", 16),
    768: ("uint32", 32),
    1024: ("int64", 64),
    1280: ("uint64", 64),
    1536: ("float128", 128),
    1792: ("complex128", 128),
    2048: ("complex256", 256),
    2304: ("RGBA32", 32),
}
HEADER_BYTES = 540  # enough for either version
# magic: NIfTI-1 at bytes 344-347, NIfTI-2 at 4-11 (its first four bytes are what is checked)
_MAGIC = {1: (b"n+1\0", b"ni1\0"), 2: (b"n+2\0", b"ni2\0")}
_MAGIC_AT = {1: "bytes 344-347", 2: "bytes 4-7"}


@dataclass(frozen=True)
class NiftiHeader:
    """What a NIfTI header promises about its voxels and where they sit in space."""

    version: int
    magic: bytes  # four bytes: b"n+1\0" (one file), b"ni1\0" (.hdr/.img pair), or the -2 forms
    dims: tuple[int, ...]  # the used dimensions, dim[1..dim[0]]
    datatype: int
    bitpix: int
    pixdim: tuple[float, ...]  # pixdim[1..dim[0]]
    vox_offset: float
    qform_code: int
    sform_code: int
    qform: tuple[float, ...]  # quatern_b, c, d, qoffset_x, y, z
    sform: tuple[float, ...]  # srow_x, srow_y, srow_z (12 values)

    @property
    def data_bytes(self) -> int:
        """Bytes of voxel data the dimensions and datatype call for."""
        bits = DATATYPES.get(self.datatype, ("", self.bitpix))[1]
        return math.prod(self.dims) * bits // 8

    @property
    def data_end(self) -> int:
        """Byte offset where the voxel data ends: what a complete file holds at least."""
        return int(self.vox_offset) + self.data_bytes


def parse_header(raw: bytes) -> NiftiHeader | None:
    """The header at the start of ``raw``; None when it is not a NIfTI-1/2 header (or too short)."""
    for order in "<>":
        if len(raw) >= 348 and struct.unpack_from(order + "i", raw)[0] == 348:
            return _nifti1(raw, order)
        if len(raw) >= 540 and struct.unpack_from(order + "i", raw)[0] == 540:
            return _nifti2(raw, order)
    return None


def _nifti1(raw: bytes, order: str) -> NiftiHeader:
    dim = struct.unpack_from(order + "8h", raw, 40)
    used = dim[0] if 1 <= dim[0] <= 7 else 0
    return NiftiHeader(
        version=1,
        magic=raw[344:348],
        dims=tuple(dim[1 : used + 1]),
        datatype=struct.unpack_from(order + "h", raw, 70)[0],
        bitpix=struct.unpack_from(order + "h", raw, 72)[0],
        pixdim=struct.unpack_from(order + "8f", raw, 76)[1 : used + 1],
        vox_offset=struct.unpack_from(order + "f", raw, 108)[0],
        qform_code=struct.unpack_from(order + "h", raw, 252)[0],
        sform_code=struct.unpack_from(order + "h", raw, 254)[0],
        qform=struct.unpack_from(order + "6f", raw, 256),
        sform=struct.unpack_from(order + "12f", raw, 280),
    )


def _nifti2(raw: bytes, order: str) -> NiftiHeader:
    dim = struct.unpack_from(order + "8q", raw, 16)
    used = dim[0] if 1 <= dim[0] <= 7 else 0
    return NiftiHeader(
        version=2,
        magic=raw[4:8],
        dims=tuple(dim[1 : used + 1]),
        datatype=struct.unpack_from(order + "h", raw, 12)[0],
        bitpix=struct.unpack_from(order + "h", raw, 14)[0],
        pixdim=struct.unpack_from(order + "8d", raw, 104)[1 : used + 1],
        vox_offset=float(struct.unpack_from(order + "q", raw, 168)[0]),
        qform_code=struct.unpack_from(order + "i", raw, 344)[0],
        sform_code=struct.unpack_from(order + "i", raw, 348)[0],
        qform=struct.unpack_from(order + "6d", raw, 352),
        sform=struct.unpack_from(order + "12d", raw, 400),
    )


def header_problem(header: NiftiHeader) -> str:
    """Why the header cannot describe a trustworthy volume; empty when it can."""
    if header.magic not in _MAGIC[header.version]:
        expected = " or ".join(repr(m.rstrip(b"\0").decode()) for m in _MAGIC[header.version])
        return (
            f"has no valid NIfTI-{header.version} magic ({_MAGIC_AT[header.version]} are "
            f"{header.magic!r}, not {expected}): it would be read as an old ANALYZE file "
            "with a made-up orientation and origin"
        )
    if not header.dims or any(d <= 0 for d in header.dims):
        return f"has no valid image dimensions in its header (dim {list(header.dims)})"
    known = DATATYPES.get(header.datatype)
    if known is None:
        return f"has an unknown NIfTI datatype code {header.datatype}"
    name, bits = known
    if header.bitpix != bits:
        return (
            f"has an inconsistent header: datatype {header.datatype} ({name}) implies {bits} "
            f"bits per voxel, but bitpix says {header.bitpix}"
        )
    if not math.isfinite(header.vox_offset) or header.vox_offset < header_size(header):
        return f"has an invalid data offset in its header (vox_offset {header.vox_offset})"
    return _geometry_problem(header)


def header_size(header: NiftiHeader) -> int:
    return 348 if header.version == 1 else 540


def _geometry_problem(header: NiftiHeader) -> str:
    for axis, size in enumerate(header.pixdim[:3], start=1):
        if not (math.isfinite(size) and size > 0):
            return (
                f"has an invalid voxel size in its header: pixdim[{axis}] is {size:g} "
                "(it must be a positive number of millimetres)"
            )
    if header.qform_code > 0 and not all(math.isfinite(v) for v in header.qform):
        return "has a non-finite value (NaN or infinity) in its qform orientation or origin"
    if header.sform_code > 0 and not all(math.isfinite(v) for v in header.sform):
        return "has a non-finite value (NaN or infinity) in its sform orientation or origin"
    return ""
