"""Single-file volumes (NIfTI, MHA/MHD, NRRD) through SimpleITK, and SimpleITK <-> Volume.

SimpleITK already reports these formats in LPS, so geometry passes through unchanged. What it
does not do is explain failures: its messages are generic, so every failure here becomes a
:class:`ScanError` naming the file and the likely cause.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, Volume, matrix3, vector3
from meddiag_desktop.scans.errors import ScanError

_SUPPORTED = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
_KNOWN_UNSUPPORTED = {
    ".mgz": "FreeSurfer MGZ is not supported: convert it to NIfTI first "
    "(for example 'mri_convert in.mgz out.nii.gz')",
    ".mgh": "FreeSurfer MGH is not supported: convert it to NIfTI first "
    "(for example 'mri_convert in.mgh out.nii.gz')",
    ".img": "Analyze .img/.hdr pairs are not supported: convert them to NIfTI first",
}
SUPPORTED_TEXT = "DICOM, NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd), NRRD (.nrrd, .nhdr)"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def is_volume_file(path: Path) -> bool:
    """Whether the file name says it is one of the single-file formats (or a known foreign one)."""
    suffix = _suffix(path)
    return suffix in _SUPPORTED or suffix in _KNOWN_UNSUPPORTED


def describe(path: Path) -> SeriesInfo:
    """Size and spacing of an image file, read from its header only."""
    metadata = ScanMetadata(series_description=path.name, series_uid=str(path))
    base = SeriesInfo(key=str(path), kind=SeriesKind.FILE, metadata=metadata, files=(path,))
    suffix = _suffix(path)
    if suffix in _KNOWN_UNSUPPORTED:
        return _replace_reason(base, _KNOWN_UNSUPPORTED[suffix])
    if not os.access(path, os.R_OK):  # SimpleITK would call it damaged
        return _replace_reason(base, "cannot be read (permission denied)")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return _replace_reason(base, "the file is damaged or not a valid image of its type")
    size = (*reader.GetSize(), 1, 1)
    spacing = (*reader.GetSpacing(), 1.0, 1.0)
    warnings: list[str] = []
    loadable, reason = True, ""
    if reader.GetNumberOfComponents() != 1:
        loadable, reason = False, _colour_reason(reader.GetNumberOfComponents())
    elif reader.GetDimension() > 3 and size[3] > 1:
        warnings.append(f"4-D image with {size[3]} volumes: the first is loaded.")
    return SeriesInfo(
        key=str(path),
        kind=SeriesKind.FILE,
        metadata=metadata,
        files=(path,),
        size_xyz=(int(size[0]), int(size[1]), int(size[2])),
        spacing_xyz_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        loadable=loadable,
        reason=reason,
        warnings=tuple(warnings),
    )


def _replace_reason(series: SeriesInfo, reason: str) -> SeriesInfo:
    return SeriesInfo(
        key=series.key,
        kind=series.kind,
        metadata=series.metadata,
        files=series.files,
        loadable=False,
        reason=reason,
    )


def _colour_reason(components: int) -> str:
    return (
        f"a colour or multi-component image ({components} values per voxel); only greyscale "
        "scans can be reviewed"
    )


def load_file(path: Path) -> Volume:
    """Read a NIfTI/MHA/MHD/NRRD file into a Volume, first 3-D volume of a 4-D file."""
    suffix = _suffix(path)
    if suffix in _KNOWN_UNSUPPORTED:
        raise ScanError(path, _KNOWN_UNSUPPORTED[suffix])
    if not path.is_file():
        raise ScanError(path, "does not exist")
    image = _read_image(path)
    warnings: list[str] = []
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ScanError(path, _colour_reason(image.GetNumberOfComponentsPerPixel()))
    if image.GetDimension() == 4:
        count = image.GetSize()[3]
        if count > 1:
            warnings.append(f"4-D image with {count} volumes: the first is loaded.")
        size = list(image.GetSize())
        size[3] = 0
        image = sitk.Extract(image, size, [0, 0, 0, 0])
    elif image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
        warnings.append("A 2-D image: shown as a volume one slice thick.")
    elif image.GetDimension() != 3:
        raise ScanError(path, f"has {image.GetDimension()} dimensions; a scan needs 3")
    metadata = ScanMetadata(
        series_description=path.name, series_uid=str(path), modality=_modality_hint(image)
    )
    return volume_from_image(image, metadata, tuple(warnings), str(path))


def _read_image(path: Path) -> sitk.Image:
    if not os.access(path, os.R_OK):
        raise ScanError(path, "cannot be read (permission denied)")
    if _suffix(path) in (".nii", ".nii.gz"):
        problem = _nifti_data_problem(path)
        if problem:
            raise ScanError(path, problem)
    # SimpleITK silently reads X.nii when asked for X.nii.gz and both exist (PITFALLS.md):
    # read such a file from a folder of its own.
    twin = path.with_name(path.name[:-3]) if path.name.lower().endswith(".nii.gz") else None
    try:
        if twin is not None and twin.exists():
            with tempfile.TemporaryDirectory(prefix="meddiag-") as folder:
                alone = Path(folder) / path.name
                shutil.copyfile(path, alone)
                return sitk.ReadImage(str(alone))
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ScanError(path, _explain_itk_error(path, exc)) from exc


_INCOMPLETE_DATA_MARKERS = ("fread got only", "but received", "File cannot be read")


def _explain_itk_error(path: Path, exc: RuntimeError) -> str:
    text = str(exc)
    if "Unable to determine ImageIO reader" in text:
        return f"is not in a supported format ({SUPPORTED_TEXT})"
    if path.name.lower().endswith(".gz") or "gz" in text.lower():
        return "is damaged or truncated (the compressed data ends early or is corrupt)"
    if any(marker in text for marker in _INCOMPLETE_DATA_MARKERS):
        # MetaImage says "No such file or directory" for a file that is there but too short.
        return "is damaged or truncated (its image data is incomplete)"
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    return f"is damaged or not a valid image ({last[:160]})"


def _nifti_data_problem(path: Path) -> str:
    """Why a NIfTI file cannot hold all its voxels; empty when it may.

    SimpleITK 2.5 reads a truncated .nii or .nii.gz without complaint and fills the missing
    voxels with zeros, so a half-copied scan would look like a scan with a blank half.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as handle:
            needed = _nifti_data_end(handle.read(540))
        if needed is None:
            return ""  # not a NIfTI header we know: the reader will say what is wrong
        if not compressed:
            size = path.stat().st_size
            return "" if size >= needed else f"is truncated: {size} of {needed} bytes"
        if _gzip_trailer_size(path) == needed % 2**32:
            return ""  # the usual single-member file, complete
        inflated = _inflated_size(path)
    except (OSError, EOFError, zlib.error, struct.error):
        return ""
    if inflated is None:
        return "is damaged or truncated (the compressed data ends early or is corrupt)"
    return "" if inflated >= needed else f"is truncated: {inflated} of {needed} bytes"


def _nifti_data_end(header: bytes) -> int | None:
    """Byte offset where a NIfTI-1/2 file's voxel data ends, from its header."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack_from(order + "i", header)[0] == 348:
            dims = struct.unpack_from(order + "8h", header, 40)
            bitpix = struct.unpack_from(order + "h", header, 72)[0]
            offset = int(struct.unpack_from(order + "f", header, 108)[0])
            break
        if len(header) >= 540 and struct.unpack_from(order + "i", header)[0] == 540:
            bitpix = struct.unpack_from(order + "h", header, 14)[0]
            dims = struct.unpack_from(order + "8q", header, 16)
            offset = struct.unpack_from(order + "q", header, 168)[0]
            break
    else:
        return None
    used = dims[1 : dims[0] + 1] if 1 <= dims[0] <= 7 else ()
    if not used or any(d <= 0 for d in used) or bitpix <= 0 or bitpix % 8:
        return None
    return offset + math.prod(used) * (bitpix // 8)


def _gzip_trailer_size(path: Path) -> int:
    """The uncompressed size (mod 2**32) a gzip file's last member declares."""
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return struct.unpack("<I", handle.read(4))[0]


def _inflated_size(path: Path) -> int | None:
    """Full uncompressed size (all gzip members), or None when the stream ends early."""
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                total += len(block)
    except (OSError, EOFError, zlib.error):
        return None
    return total


def _modality_hint(image: sitk.Image) -> str:
    """NIfTI has no modality; values far below zero are CT's air (-1000 HU)."""
    try:
        stats = sitk.MinimumMaximumImageFilter()
        stats.Execute(image)
        return "CT" if stats.GetMinimum() <= -900 else ""
    except RuntimeError:
        return ""


def volume_from_image(
    image: sitk.Image, metadata: ScanMetadata, warnings: tuple[str, ...], source: str
) -> Volume:
    return Volume(
        array_zyx=sitk.GetArrayFromImage(image),
        spacing_xyz_mm=vector3(image.GetSpacing()),
        origin_lps_mm=vector3(image.GetOrigin()),
        direction_lps=matrix3(image.GetDirection()),
        metadata=metadata,
        warnings=warnings,
        source=source,
    )


def image_from_volume(volume: Volume, array_zyx: np.ndarray | None = None) -> sitk.Image:
    """A SimpleITK image with the volume's geometry (and optionally another array)."""
    image = sitk.GetImageFromArray(volume.array_zyx if array_zyx is None else array_zyx)
    image.SetSpacing(volume.spacing_xyz_mm)
    image.SetOrigin(volume.origin_lps_mm)
    image.SetDirection(volume.direction_lps)
    return image
