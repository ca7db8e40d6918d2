"""The database suite's cases: the shared fakes (``tests/shared_fakes.py``) with every patient
field filled, series with files on disk, and model results whose masks differ by seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shared_fakes

from meddiag_desktop.domain import ScanMetadata, Segmentation, SeriesInfo, Volume

SHAPE_ZYX = (6, 12, 10)
FakeCard = shared_fakes.FakeCard
finding = shared_fakes.finding
# A run that wanted the GPU and fell back: the database keeps why.
FELL_BACK = shared_fakes.FakeProvider(attempts=(("CUDAExecutionProvider", "no GPU"),))
TIMINGS_S = {"model": 0.5, "total": 0.75}


def metadata(index: int, **changes: str) -> ScanMetadata:
    """The shared case metadata with every patient field a database row can hold."""
    values = {
        "patient_name": f"DOE^PATIENT{index:05d}",
        "patient_birth_date": "19600101",
        "patient_sex": "F",
        "institution": "GENERAL HOSPITAL",
    }
    return shared_fakes.metadata(index, **{**values, **changes})


def series(index: int, files: tuple[Path, ...] = (), **changes: str) -> SeriesInfo:
    return shared_fakes.series_info(
        metadata(index, **changes), files, size_xyz=(SHAPE_ZYX[2], SHAPE_ZYX[1], SHAPE_ZYX[0])
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


def result(vol: Volume, findings: int = 3, seed: int = 0) -> shared_fakes.FakeResult:
    labels = np.zeros(vol.shape_zyx, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    labels[rng.random(vol.shape_zyx) > 0.9] = 1  # a distinct mask (and sha256) per seed
    segmentation = Segmentation(labels, {1: "nodule"}, {1: "#ff0000"})
    return shared_fakes.FakeResult(
        segmentation,
        tuple(finding(n) for n in range(1, findings + 1)),
        provider=FELL_BACK,
        timings_s=dict(TIMINGS_S),
    )
