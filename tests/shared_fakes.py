"""Stand-ins shared by the test suites: a model's result for the database, findings, a CT
phantom and the least a plane view is for a viewer tool.

The database takes an inference result by shape (``db.runs.InferenceOutput``), so frozen
dataclasses with the same attributes are faithful stand-ins and keep the database, panel and
review tests free of ONNX. Each suite kept its own copy of these before; one copy means a field
the database starts to read is added once. Imported as ``shared_fakes``: ``tests/`` is on
``sys.path`` because ``tests/conftest.py`` lives there (scripts run as subprocesses add it).

Nothing here imports Qt at module level, so the Qt-free suites can use it without a display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.viewer.plane_geometry import Plane, VoxelZYX

NODULE_LABELS = {"labels": [{"value": 1, "name": "nodule", "colour": "#ff5050"}]}


@dataclass(frozen=True)
class FakeCard:
    """The card fields a stored run keeps; ``output`` is where panels find label colours."""

    name: str = "fake-model"
    version: str = "1.0"
    sha256: str = "ab" * 32
    output: dict[str, Any] = field(default_factory=lambda: dict(NODULE_LABELS))


@dataclass(frozen=True)
class FakeProvider:
    used: str = "CPUExecutionProvider"
    short_name: str = "cpu"
    attempts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FakeResult:
    segmentation: Segmentation
    findings: tuple[Finding, ...]
    card: FakeCard = field(default_factory=FakeCard)
    provider: FakeProvider = field(default_factory=FakeProvider)
    timings_s: dict[str, float] = field(default_factory=lambda: {"total": 0.5})
    warnings: tuple[str, ...] = ()


def finding(number: int, source: FindingSource = FindingSource.AI) -> Finding:
    """Finding ``number``: every measure grows with the number, so rows tell apart."""
    return Finding(
        finding_id=number,
        label=1,
        label_name="nodule",
        volume_ml=0.25 * number,
        long_axis_mm=6.0 + number,
        short_axis_mm=4.0 + number / 2,
        centroid_lps_mm=(1.0 * number, 2.0, 103.0),
        centroid_index_xyz=(float(number), 2.0, 1.5),
        bbox_index_xyz=(number, 1, 1, number + 1, 3, 2),
        voxel_count=10 * number,
        mean_intensity=-35.0 + number,
        max_intensity=80.0,
        mean_probability=0.7,
        max_probability=0.9 + number / 100,
        source=source,
    )


def metadata(index: int, **changes: str) -> ScanMetadata:
    """Patient, study and series of case ``index``; ``changes`` override any field."""
    values = {
        "modality": "CT",
        "patient_name": f"DOE^JANE{index:03d}",
        "patient_id": f"PID{index:05d}",
        "study_uid": f"1.2.3.{index}",
        "series_uid": f"1.2.3.{index}.1",
        "study_date": f"2024{1 + index % 12:02d}{1 + index % 28:02d}",
        "study_description": "CT CHEST",
        "series_description": f"AXIAL {index}",
    }
    values.update(changes)
    return ScanMetadata(**values)


def series_info(
    meta: ScanMetadata, files: tuple[Path, ...] = (), size_xyz: tuple[int, int, int] = (10, 12, 6)
) -> SeriesInfo:
    """A loadable volume series as discovery would list it, for importing as a case."""
    return SeriesInfo(
        key=meta.series_uid,
        kind=SeriesKind.VOLUME,
        metadata=meta,
        files=files,
        size_xyz=size_xyz,
        spacing_xyz_mm=(0.8, 0.8, 2.0),
        loadable=True,
    )


def phantom_volume(series_description: str = "phantom") -> Volume:
    """40 x 64 x 64 CT-like block: air, a soft-tissue cylinder and a bright ellipsoid,
    0.8 x 0.8 x 2.5 mm voxels."""
    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    array = np.full((40, 64, 64), -1000, dtype=np.int16)
    array[(y - 32) ** 2 + (x - 32) ** 2 < 26**2] = 40
    array[((z - 20) * 2.5) ** 2 + ((y - 28) * 0.8) ** 2 + ((x - 36) * 0.8) ** 2 < 12**2] = 300
    return Volume(
        array_zyx=array,
        spacing_xyz_mm=(0.8, 0.8, 2.5),
        origin_lps_mm=(0.0, 0.0, 0.0),
        metadata=ScanMetadata(modality="CT", series_description=series_description),
    )


class MiniPlaneView:
    """The least a plane view is for a tool: a view box in display mm showing one slice.

    Tools (brush, ruler, ROI) take the view by shape (``mapping``, ``slice_index``,
    ``view_box``, ``voxel_at_mm``), so this stands in for the full ``PlaneView`` and its
    crosshair, overlays and signals. Needs a QApplication (and pyqtgraph set to row-major).
    """

    def __init__(self, volume: Volume, plane: Plane, slice_index: int) -> None:
        import pyqtgraph as pg

        from meddiag_desktop.viewer.plane_geometry import plane_mappings

        self.volume = volume
        self.mapping = plane_mappings(volume)[plane]
        self.slice_index = slice_index
        self.graphics = pg.GraphicsView(background="#000000")
        self.view_box = pg.ViewBox(invertY=True, lockAspect=True)
        self.graphics.setCentralItem(self.view_box)
        self.image = pg.ImageItem(self.mapping.extract(volume.array_zyx, slice_index))
        width, height = self.mapping.size_mm
        self.image.setRect(0, 0, width, height)
        self.view_box.addItem(self.image)

    def voxel_at_mm(self, x_mm: float, y_mm: float) -> VoxelZYX | None:
        pixel = self.mapping.pixel_at_mm(x_mm, y_mm)
        return None if pixel is None else self.mapping.voxel_at(self.slice_index, *pixel)


def store_ground_truth(db: Database, case_id: int, dicom: Path, truth_mask: Path) -> None:
    """A study's true nodule mask stored as its run, measured as the pipeline measures (the
    follow-up tests need runs on both studies without the model's minutes)."""
    from meddiag_desktop.db.runs import store_inference
    from meddiag_desktop.domain import Segmentation
    from meddiag_desktop.inference.findings import extract_findings
    from meddiag_desktop.scans import discover, load

    [series] = [s for s in discover(dicom) if s.loadable]
    scan = load(series)
    labels = (load(truth_mask).array_zyx > 0).astype(np.uint8)
    probability = labels.astype(np.float32)
    cleaned, findings = extract_findings(scan, labels, probability, {1: "nodule"}, 15.0)
    segmentation = Segmentation(cleaned, {1: "nodule"}, {1: "#ff5050"}, probability)
    result = FakeResult(segmentation, tuple(findings), FakeCard(name="ground-truth"))
    store_inference(db, case_id, scan, result)
