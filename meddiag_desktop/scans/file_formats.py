"""Single-file volumes (NIfTI, MHA/MHD, NRRD) through SimpleITK, and SimpleITK <-> Volume.

SimpleITK already reports these formats in LPS, so geometry passes through unchanged. What it
does not do is explain failures: its messages are generic, so every failure here becomes a
:class:`ScanError` naming the file and the likely cause.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, Volume, matrix3, vector3
from meddiag_desktop.scans import (
    gzip_stream,
    nifti_header,
    payload_size,
    text_image_headers,
    text_image_payload,
    volume_geometry,
)
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.gzip_stream import DamagedStream

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
    problem = _header_problem(path).problem
    if problem:
        return _replace_reason(base, problem)
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
    elif problem := _listed_geometry_problem(reader):
        loadable, reason = False, problem
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


def _listed_geometry_problem(reader: sitk.ImageFileReader) -> str:
    """The geometry check a loaded volume gets, on the header SimpleITK read (3-D and 4-D)."""
    dimension = reader.GetDimension()
    if dimension not in (3, 4):
        return ""  # a 2-D image is checked once it is a volume one slice thick
    matrix = np.asarray(reader.GetDirection(), dtype=float).reshape(dimension, dimension)
    return volume_geometry.geometry_problem(
        tuple(reader.GetSpacing()[:3]),
        tuple(reader.GetOrigin()[:3]),
        tuple(matrix[:3, :3].ravel()),
    )


def verified_for_import(series: SeriesInfo) -> SeriesInfo:
    """``series``, marked not loadable when its file's full contents fail their check.

    Listing trusts a gzip trailer that matches the header and a zlib stream of the size its
    header gives (cheap); a case should not be made from a file whose compressed data fails
    its checksum or holds another amount than declared, so import inflates it once in full.
    """
    if series.kind is not SeriesKind.FILE or not series.loadable or not series.files:
        return series
    path = series.files[0]
    check = _header_problem(path)
    problem = check.problem or _inflated_problem(path, check)
    return replace(series, loadable=False, reason=problem) if problem else series


def _inflated_problem(path: Path, check: _HeaderCheck) -> str:
    """What a full inflate of the file's compressed data finds that the listing did not look
    for (see :class:`_HeaderCheck`); empty for sound or uncompressed data."""
    if check.deferred is not None:
        return text_image_payload.full_problem(check.deferred)
    if check.trailer is None:
        return ""
    try:
        gzip_stream.verify_whole_stream(
            check.data_file or path, check.data_end, start=check.stream_start
        )
    except DamagedStream as exc:
        return str(exc)
    return ""


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
    modality = _modality_hint(image)
    metadata = ScanMetadata(
        series_description=path.name,
        series_uid=str(path),
        modality=modality,
        modality_guessed_from="voxel values (air at -1000 HU)" if modality else "",
    )
    volume = volume_from_image(image, metadata, tuple(warnings), str(path))
    return volume_geometry.checked(volume, path)


def _read_image(path: Path) -> sitk.Image:
    if not os.access(path, os.R_OK):
        raise ScanError(path, "cannot be read (permission denied)")
    check = _header_problem(path)
    problem = check.problem
    if not problem and check.deferred is not None:  # before SimpleITK reads a bad stream
        problem = text_image_payload.full_problem(check.deferred)
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
                image = sitk.ReadImage(str(alone))
        else:
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ScanError(path, _explain_itk_error(path, exc)) from exc
    if check.trailer is not None:
        _verify_inflated(path, check, image)
    return image


@dataclass(frozen=True)
class _HeaderCheck:
    """What a file's header promises, checked against what the file holds.

    ``trailer`` is set for a gzip stream whose contents still need their CRC checked (its
    trailer matched the header's size, so the data was not inflated in full here): the NIfTI
    file itself, or an NRRD's data from ``stream_start`` on, in ``data_file`` when detached.
    ``deferred`` is a compressed MetaImage's zlib stream, whose Adler-32 and inflated length
    only a full inflate can check; the loader and import do that, the listing does not.
    """

    problem: str = ""
    data_end: int = 0  # uncompressed offset where the voxels end
    vox_offset: int = 0  # uncompressed offset where they start
    trailer: gzip_stream.Trailer | None = None
    stream_start: int = 0
    data_file: Path | None = None
    deferred: text_image_payload.Payload | None = None


def _header_problem(path: Path) -> _HeaderCheck:
    """Header fields SimpleITK would silently accept, and data that ends before the header says."""
    try:
        if _suffix(path) in (".nii", ".nii.gz"):
            return _nifti_check(path)
        return _text_image_check(path)
    except OSError:
        return _HeaderCheck()  # unreadable: the reader says why


def _text_image_check(path: Path) -> _HeaderCheck:
    """MetaImage/NRRD geometry fields, then the voxel data's size against the header's.

    A gzip NRRD whose trailer matches the declared size gets its CRC checked by the loader
    over SimpleITK's own buffer (as ``.nii.gz``); any other trailer means a full inflate here.
    """
    problem = text_image_headers.header_problem(path)
    payload = None if problem else text_image_payload.declared_payload(path)
    if payload is None:
        return _HeaderCheck(problem)
    problem = text_image_payload.quick_problem(payload)
    if problem:
        return _HeaderCheck(problem)
    if payload.encoding == "zlib":
        return _HeaderCheck(deferred=payload)
    if payload.encoding != "gzip":
        return _HeaderCheck()
    trailer = gzip_stream.read_trailer(payload.data_file)
    if trailer is not None and trailer.size_mod_2_32 == payload.declared % 2**32:
        return _HeaderCheck(
            data_end=payload.declared,
            trailer=trailer,
            stream_start=payload.start,
            data_file=payload.data_file,
        )
    return _HeaderCheck(text_image_payload.full_problem(payload))


def _nifti_check(path: Path) -> _HeaderCheck:
    """NIfTI header consistency and size (SimpleITK zero-fills a file whose data ends early).

    An uncompressed file's size is exact. For ``.nii.gz`` the gzip trailer declares the size
    (mod 2**32): a cut file's last four bytes are compressed data that match the expected size
    by a 1-in-2**32 chance, so a matching trailer is taken as "complete" for the listing and the
    CRC is checked by the loader; any other trailer (cut, several gzip members, extra bytes)
    means the stream is inflated in full here, which checks every member's CRC and length.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        if compressed:
            raw = gzip_stream.inflate_prefix(path, nifti_header.HEADER_BYTES)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(nifti_header.HEADER_BYTES)
    except DamagedStream as exc:
        return _HeaderCheck(str(exc))
    header = nifti_header.parse_header(raw)
    if header is None:
        if len(raw) < 348 and raw[:4] in _NIFTI_SIZES:
            return _HeaderCheck(f"is truncated: it ends inside its header (after {len(raw)} bytes)")
        return _HeaderCheck()  # not a NIfTI header we know: the reader will say what is wrong
    problem = nifti_header.header_problem(header)
    if problem:
        return _HeaderCheck(problem)
    needed = header.data_end
    if not compressed:
        size = path.stat().st_size
        held = "" if size >= needed else f"is truncated: {size:,} of {needed:,} bytes"
        if size > needed:  # bytes between the header and vox_offset are extensions, not data
            held = payload_size.surplus_problem(size - int(header.vox_offset), header.data_bytes)
        return _HeaderCheck(held, needed)
    trailer = gzip_stream.read_trailer(path)
    if trailer is not None and trailer.size_mod_2_32 == needed % 2**32:
        return _HeaderCheck("", needed, int(header.vox_offset), trailer)
    try:
        inflated = gzip_stream.verify_whole_stream(path, needed)
    except DamagedStream as exc:
        return _HeaderCheck(str(exc), needed)
    held = "" if inflated >= needed else f"is truncated: {inflated:,} of {needed:,} bytes"
    if inflated > needed:
        held = payload_size.surplus_problem(inflated - int(header.vox_offset), header.data_bytes)
    return _HeaderCheck(held, needed)


_NIFTI_SIZES = {(348).to_bytes(4, "little"), (348).to_bytes(4, "big")}


def _verify_inflated(path: Path, check: _HeaderCheck, image: sitk.Image) -> None:
    """Raise ScanError unless the voxels SimpleITK inflated are the ones written.

    One inflate pass: the CRC-32 of the header bytes plus SimpleITK's own voxel buffer is
    compared with the gzip trailer. Only when they differ (damage, or a reader that scaled or
    byte-swapped the voxels) is the stream inflated again, whose CRC check then decides.
    """
    assert check.trailer is not None
    voxels = sitk.GetArrayViewFromImage(image)  # ``image`` stays referenced while it is used
    stream = check.data_file or path
    try:
        head = gzip_stream.inflate_prefix(stream, check.vox_offset, start=check.stream_start)
        parts = [memoryview(head), np.ascontiguousarray(voxels).data.cast("B")]
        if gzip_stream.crc_matches(check.trailer, parts):
            return
        gzip_stream.verify_whole_stream(stream, check.data_end, start=check.stream_start)
    except DamagedStream as exc:
        raise ScanError(path, str(exc)) from exc


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
