"""Domain objects shared by every layer: plain frozen dataclasses and enums, numpy only.

Geometry follows DICOM/ITK conventions so nothing is lost between file formats: arrays are
indexed ``[z, y, x]`` (slice, row, column); spacing and origin are ``(x, y, z)`` in millimetres;
the direction matrix is row-major 3x3 whose *columns* are the patient-space (LPS) unit vectors of
the x, y and z index axes (the layout SimpleITK's ``GetDirection`` uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from meddiag_desktop.safe_text import printable

Vector3 = tuple[float, float, float]
Matrix3 = tuple[float, float, float, float, float, float, float, float, float]

IDENTITY_DIRECTION: Matrix3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def vector3(values: Iterable[float]) -> Vector3:
    """Three floats from any sequence (SimpleITK tuples, numpy rows), checked."""
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def matrix3(values: Iterable[float]) -> Matrix3:
    """A row-major 3x3 direction from nine numbers, checked."""
    m = tuple(float(v) for v in values)
    if len(m) != 9:
        raise ValueError(f"a direction matrix needs 9 values, got {len(m)}")
    return (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8])


@dataclass(frozen=True)
class ScanMetadata:
    """Who and what a scan is about; empty strings where the file says nothing."""

    modality: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_uid: str = ""
    series_uid: str = ""
    study_date: str = ""
    series_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: str = ""
    institution: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    body_part_examined: str = ""  # DICOM BodyPartExamined (a defined term such as CHEST)
    protocol_name: str = ""
    # What the modality was inferred from when the file does not record it (NIfTI, MHA, NRRD),
    # e.g. "voxel values"; empty when the file says. Text, like every field here.
    modality_guessed_from: str = ""

    def __post_init__(self) -> None:
        # Every field comes from a file header or a database row someone else wrote: make it
        # printable once here (no terminal escapes, controls or bidi overrides), so no screen,
        # log or report downstream shows it raw.
        for name, value in vars(self).items():
            if isinstance(value, str) and value != (clean := printable(value)):
                object.__setattr__(self, name, clean)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D scan with the geometry needed to place every voxel in the patient (LPS, mm)."""

    array_zyx: np.ndarray
    spacing_xyz_mm: Vector3
    origin_lps_mm: Vector3
    direction_lps: Matrix3 = IDENTITY_DIRECTION
    metadata: ScanMetadata = field(default_factory=ScanMetadata)
    warnings: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if self.array_zyx.ndim != 3:
            raise ValueError(f"a Volume needs a 3-D array, got shape {self.array_zyx.shape}")
        if any(s <= 0 for s in self.spacing_xyz_mm):
            raise ValueError(f"voxel spacing must be positive, got {self.spacing_xyz_mm}")

    @property
    def modality(self) -> str:
        return self.metadata.modality

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        z, y, x = self.array_zyx.shape
        return (z, y, x)

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        z, y, x = self.array_zyx.shape
        return (x, y, z)

    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction_lps, dtype=float).reshape(3, 3)

    def index_to_lps(self, index_xyz: tuple[float, float, float]) -> Vector3:
        """Patient position (LPS mm) of a continuous voxel index given as (x, y, z)."""
        scaled = np.asarray(index_xyz, dtype=float) * np.asarray(self.spacing_xyz_mm)
        point = np.asarray(self.origin_lps_mm) + self.direction_matrix() @ scaled
        return (float(point[0]), float(point[1]), float(point[2]))

    def lps_to_index(self, point_lps: tuple[float, float, float]) -> Vector3:
        """Continuous voxel index (x, y, z) of a patient position (LPS mm)."""
        offset = np.asarray(point_lps, dtype=float) - np.asarray(self.origin_lps_mm)
        index = np.linalg.solve(self.direction_matrix(), offset) / np.asarray(self.spacing_xyz_mm)
        return (float(index[0]), float(index[1]), float(index[2]))

    def with_array(self, array_zyx: np.ndarray) -> Volume:
        """The same geometry and metadata around another array (a label map, a filtered copy)."""
        if array_zyx.shape != self.array_zyx.shape:
            raise ValueError(f"shape {array_zyx.shape} differs from {self.array_zyx.shape}")
        return replace(self, array_zyx=array_zyx)


class SeriesKind(StrEnum):
    """What a group of DICOM files is, as far as a reading workstation cares."""

    VOLUME = "volume"
    SINGLE_IMAGE = "single image"
    TIME_SERIES = "time series"
    MULTI_FRAME = "multi-frame"
    LOCALIZER = "localizer"
    SECONDARY_CAPTURE = "secondary capture"
    MOSAIC = "mosaic"
    COLOUR = "colour image"
    NON_IMAGE = "non-image object"
    UNREADABLE = "unreadable"
    FILE = "image file"
    SEGMENTATION = "segmentation"  # a DICOM SEG: labels for another series, opened over it


@dataclass(frozen=True)
class SliceRef:
    """Where one slice's pixels are and how to turn them into scanner units."""

    path: Path
    position_lps_mm: Vector3
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    pixel_offset: int = -1  # byte offset of raw little-endian pixels; -1 = needs a decoder


@dataclass(frozen=True)
class PixelFormat:
    """How the stored pixel values of a DICOM series are laid out."""

    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    transfer_syntax: str


@dataclass(frozen=True)
class SegmentationReference:
    """What a DICOM SEG labels, from its header: the series it was drawn on, its segments, and
    (within one discovery) the key of that series when the same folder holds it."""

    referenced_series_uid: str  # empty when the SEG names no series and no scanned file has it
    segment_labels: tuple[tuple[int, str], ...] = ()  # (segment number, label), as stored
    referenced_instance_uids: tuple[str, ...] = ()  # the source images its frames name
    reference_key: str = ""  # SeriesInfo.key of the referenced series in this discovery

    @property
    def reference_found(self) -> bool:
        return bool(self.reference_key)


@dataclass(frozen=True)
class SeriesInfo:
    """One loadable (or explained unloadable) unit found in a folder, known from headers only.

    ``key`` identifies it within a discovery: the SeriesInstanceUID, with a ``#n`` suffix when one
    DICOM series had to be split (several orientations or image sizes under one UID).
    ``files`` are in slice order for volumes.
    """

    key: str
    kind: SeriesKind
    metadata: ScanMetadata
    files: tuple[Path, ...]
    size_xyz: tuple[int, int, int] = (0, 0, 0)
    spacing_xyz_mm: Vector3 = (0.0, 0.0, 0.0)
    loadable: bool = False
    reason: str = ""
    warnings: tuple[str, ...] = ()
    time_points: int = 1
    slices: tuple[SliceRef, ...] = ()
    orientation: tuple[float, ...] = ()  # DICOM ImageOrientationPatient: row then column cosines
    pixel_format: PixelFormat | None = None
    segmentation: SegmentationReference | None = None  # for a DICOM SEG (SEGMENTATION) only

    @property
    def uid(self) -> str:
        return self.metadata.series_uid

    @property
    def modality(self) -> str:
        return self.metadata.modality

    @property
    def description(self) -> str:
        return self.metadata.series_description

    @property
    def file_count(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class Progress:
    """How far a long task has come; ``fraction`` is 0..1."""

    fraction: float
    stage: str
    message: str = ""


class FindingSource(StrEnum):
    AI = "ai"
    MANUAL = "manual"


@dataclass(frozen=True)
class Finding:
    """One lesion: the numbers a radiologist reports, in the scan's own geometry.

    Diameters follow RECIST: the longest diameter within one axial slice and the longest
    diameter perpendicular to it in that slice, measured between outer voxel edges.
    """

    finding_id: int
    label: int
    label_name: str
    volume_ml: float
    long_axis_mm: float
    short_axis_mm: float
    centroid_lps_mm: Vector3
    centroid_index_xyz: Vector3
    bbox_index_xyz: tuple[int, int, int, int, int, int]  # min x, y, z then max x, y, z
    voxel_count: int
    mean_intensity: float
    max_intensity: float
    mean_probability: float
    max_probability: float
    source: FindingSource = FindingSource.AI


@dataclass(frozen=True, eq=False)
class Segmentation:
    """A label map on a volume's grid, with the model's lesion probability where it has one."""

    labels_zyx: np.ndarray  # uint8 label values, same shape as the volume
    label_names: dict[int, str]
    label_colours: dict[int, str]
    probability_zyx: np.ndarray | None = None  # float32 probability of any lesion label
