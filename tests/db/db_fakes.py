"""Small stand-ins for what the scan loader and the pipeline hand the database.

The database takes an inference result by shape (``runs.InferenceOutput``), so a frozen
dataclass with the same attributes is a faithful stand-in and keeps these tests free of ONNX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meddiag_desktop.domain import (
    Finding,
    FindingSource,
    ScanMetadata,
    Segmentation,
    SeriesInfo,
    SeriesKind,
    Volume,
)

SHAPE_ZYX = (6, 12, 10)


@dataclass(frozen=True)
class FakeCard:
    name: str = "fake-model"
    version: str = "1.0"
    sha256: str = "ab" * 32


@dataclass(frozen=True)
class FakeProvider:
    used: str = "CPUExecutionProvider"
    short_name: str = "cpu"
    attempts: tuple[tuple[str, str], ...] = (("CUDAExecutionProvider", "no GPU"),)


@dataclass(frozen=True)
class FakeResult:
    segmentation: Segmentation
    findings: tuple[Finding, ...]
    card: FakeCard = field(default_factory=FakeCard)
    provider: FakeProvider = field(default_factory=FakeProvider)
    timings_s: dict[str, float] = field(default_factory=lambda: {"model": 0.5, "total": 0.75})
    warnings: tuple[str, ...] = ()


def metadata(index: int, **changes: str) -> ScanMetadata:
    values = {
        "modality": "CT",
        "patient_name": f"DOE^PATIENT{index:05d}",
        "patient_id": f"PID{index:05d}",
        "patient_birth_date": "19600101",
        "patient_sex": "F",
        "study_uid": f"1.2.3.{index}",
        "series_uid": f"1.2.3.{index}.1",
        "study_date": f"2024{1 + index % 12:02d}{1 + index % 28:02d}",
        "study_description": "CT CHEST",
        "series_description": f"AXIAL {index}",
        "institution": "GENERAL HOSPITAL",
    }
    values.update(changes)
    return ScanMetadata(**values)


def series(index: int, files: tuple[Path, ...] = (), **changes: str) -> SeriesInfo:
    meta = metadata(index, **changes)
    return SeriesInfo(
        key=meta.series_uid,
        kind=SeriesKind.VOLUME,
        metadata=meta,
        files=files,
        size_xyz=(SHAPE_ZYX[2], SHAPE_ZYX[1], SHAPE_ZYX[0]),
        spacing_xyz_mm=(0.8, 0.8, 2.0),
        loadable=True,
    )


def series_with_files(folder: Path, index: int, count: int = 3, **changes: str) -> SeriesInfo:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(count):
        path = folder / f"IM{number:04d}.dcm"
        path.write_bytes(f"slice {number} of series {index}".encode() * 20)
        files.append(path)
    return series(index, tuple(files), **changes)


def volume(index: int = 0, **changes: str) -> Volume:
    array = np.full(SHAPE_ZYX, -1000, dtype=np.int16)
    return Volume(
        array,
        (0.8, 0.8, 2.0),
        (-4.0, -5.0, 100.0 + index),
        metadata=metadata(index, **changes),
    )


def finding(number: int, source: FindingSource = FindingSource.AI) -> Finding:
    return Finding(
        finding_id=number,
        label=1,
        label_name="nodule",
        volume_ml=0.1 * number,
        long_axis_mm=5.0 + number,
        short_axis_mm=3.0 + number / 2,
        centroid_lps_mm=(1.0 * number, 2.0, 103.0),
        centroid_index_xyz=(float(number), 2.0, 1.5),
        bbox_index_xyz=(number, 1, 1, number + 1, 3, 2),
        voxel_count=10 * number,
        mean_intensity=30.5,
        max_intensity=80.0,
        mean_probability=0.7,
        max_probability=0.95,
        source=source,
    )


def result(vol: Volume, findings: int = 3, seed: int = 0) -> FakeResult:
    labels = np.zeros(vol.shape_zyx, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    labels[rng.random(vol.shape_zyx) > 0.9] = 1  # a distinct mask (and sha256) per seed
    segmentation = Segmentation(labels, {1: "nodule"}, {1: "#ff0000"})
    return FakeResult(segmentation, tuple(finding(n) for n in range(1, findings + 1)))
