"""Case database at worklist scale: 100,000 cases with 5 findings each.

Fills a fresh database (bulk insert form, through the same tables the app uses) and measures,
as medians over repeats after a warm-up, through the repository API the GUI and CLI call:

- the worklist: a page of 50, filtered by status, newest study first (first and a deep page),
  and ordered by patient name instead (first and a deep page; all cases, A to Z, too);
- search by patient name prefix (broad: 3 letters; narrow: a whole surname) and ID prefix;
- text search anywhere (the one filter that scans; for information, no target);
- loading one case with its runs, findings and reviews;
- import throughput: cases per second through ``import_series`` (3 small files hashed each),
  and model runs per second through ``store_inference`` (mask file + 5 findings).

Target: each query under 50 ms. Not part of the test suite.

    .venv/bin/python bench/db.py [--cases 100000] [--db URL] [--repeats 25] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy
from sqlalchemy import insert, text

from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import (
    CaseStatus,
    ReviewStatus,
    RunOutcome,
    WorklistOrder,
    WorklistQuery,
)
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.schema import (
    STATUS_RANK,
    CaseRow,
    FindingRow,
    ModelRunRow,
    PatientRow,
    SeriesRow,
    StudyRow,
)
from meddiag_desktop.db.text_search import fold
from meddiag_desktop.db.worklist import list_cases
from meddiag_desktop.domain import (
    Finding,
    FindingSource,
    ScanMetadata,
    Segmentation,
    SeriesInfo,
    SeriesKind,
    Volume,
)

TARGET_S = 0.050
FINDINGS_PER_CASE = 5
CHUNK = 5_000
SYLLABLES = [
    "AN", "BER", "CA", "DO", "EL", "FI", "GO", "HA", "IN", "JO",
    "KA", "LI", "MAR", "NO", "OL", "PE", "RO", "SAN", "TI", "VAL",
]  # fmt: skip
STATUSES = [  # a worklist's usual mix
    *[CaseStatus.NEW] * 30,
    *[CaseStatus.ANALYSED] * 30,
    *[CaseStatus.IN_REVIEW] * 20,
    *[CaseStatus.SIGNED] * 15,
    *[CaseStatus.FAILED] * 5,
]


def surname(patient: int) -> str:
    a, b, c = patient % 20, (patient // 20) % 20, (patient // 400) % 20
    return SYLLABLES[a] + SYLLABLES[b].lower() + SYLLABLES[c].lower()


def patient_name(patient: int) -> str:
    return f"{surname(patient).upper()}^{SYLLABLES[patient % 13]}{patient:06d}"


def populate(db: Database, cases: int) -> float:
    """Bulk-insert ``cases`` cases (2.5 per patient) with one run and 5 findings each."""
    started = time.perf_counter()
    rng = random.Random(7)
    now = datetime.now(UTC)
    patients = max(1, cases * 2 // 5)
    with db.writing() as session:
        rows = []
        for p in range(1, patients + 1):
            name = patient_name(p)
            rows.append(
                {
                    "id": p,
                    "dicom_patient_id": f"P{p:07d}",
                    "name": name,
                    "name_folded": fold(name),
                    "patient_id_folded": fold(f"P{p:07d}"),
                    "birth_date": "19500101",
                    "sex": "F" if p % 2 else "M",
                    "created_at": now,
                }
            )
            if len(rows) == CHUNK:
                session.execute(insert(PatientRow), rows)
                rows = []
        if rows:
            session.execute(insert(PatientRow), rows)
    first_day = date(2015, 1, 1)
    for start in range(1, cases + 1, CHUNK):
        ids = range(start, min(start + CHUNK, cases + 1))
        studies, series, case_rows, runs, findings = [], [], [], [], []
        for i in ids:
            patient = 1 + (i * 7919) % patients
            when = first_day + timedelta(days=rng.randrange(3650))
            status = STATUSES[i % len(STATUSES)]
            description = rng.choice(["CT CHEST", "CT ABDOMEN", "CT THORAX LOW DOSE", "MR BRAIN"])
            modality = "MR" if description.startswith("MR") else "CT"
            studies.append(
                {
                    "id": i,
                    "patient_fk": patient,
                    "study_uid": f"1.2.826.0.1.{i}",
                    "study_date": when,
                    "description": description,
                    "institution": "GENERAL HOSPITAL",
                    "created_at": now,
                }
            )
            series.append(
                {
                    "id": i,
                    "study_fk": i,
                    "identity": f"dicom:1.2.826.0.1.{i}.1",
                    "series_key": f"1.2.826.0.1.{i}.1",
                    "series_uid": f"1.2.826.0.1.{i}.1",
                    "kind": SeriesKind.VOLUME.value,
                    "modality": modality,
                    "description": "AXIAL 1mm",
                    "size_x": 512,
                    "size_y": 512,
                    "size_z": 300,
                    "spacing_x_mm": 0.7,
                    "spacing_y_mm": 0.7,
                    "spacing_z_mm": 1.0,
                    "location": f"/data/incoming/{i}",
                    "files": [],
                    "file_count": 300,
                    "files_bytes": 157_286_400,
                    "fingerprint": f"{i:064x}",
                    "imported_at": now,
                    "files_seen_at": now,
                }
            )
            case_rows.append(
                {
                    "id": i,
                    "series_fk": i,
                    "patient_fk": patient,
                    "status": status,
                    "study_date": when,
                    "modality": modality,
                    "search_text": fold(
                        f"{surname(patient)}", f"P{patient:07d}", description, "AXIAL 1mm"
                    ),
                    "patient_name_key": fold(patient_name(patient)),  # as import copies it
                    "patient_id_key": fold(f"P{patient:07d}"),
                    "status_rank": STATUS_RANK[status],
                    "finding_count": FINDINGS_PER_CASE,
                    "created_at": now - timedelta(seconds=cases - i),
                    "updated_at": now,
                }
            )
            runs.append(
                {
                    "id": i,
                    "case_fk": i,
                    "model_name": "demo-lung-nodules",
                    "model_version": "1.0",
                    "model_sha256": "ab" * 32,
                    "provider": "cpu",
                    "provider_attempts": [],
                    "parameters": {},
                    "timings_s": {"total": 12.5},
                    "warnings": [],
                    "started_at": now,
                    "finished_at": now,
                    "outcome": RunOutcome.SUCCEEDED,
                    "error": "",
                    "actor": "bench",
                }
            )
            for n in range(1, FINDINGS_PER_CASE + 1):
                findings.append(_finding_row(i, n))
        with db.writing() as session:
            for table, rows in (
                (StudyRow, studies),
                (SeriesRow, series),
                (CaseRow, case_rows),
                (ModelRunRow, runs),
                (FindingRow, findings),
            ):
                session.execute(insert(table), rows)
    if db.backend.value == "postgresql":
        with db.writing() as session:  # ids were given explicitly: move the sequences on
            for name in ("patients", "studies", "series", "cases", "model_runs"):
                session.execute(
                    text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))")
                )
            session.execute(text("ANALYZE"))
    else:
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    return time.perf_counter() - started


def _finding_row(case_id: int, number: int) -> dict[str, Any]:
    return {
        "case_fk": case_id,
        "run_fk": case_id,
        "number": number,
        "label": 1,
        "label_name": "nodule",
        "volume_ml": 0.5 * number,
        "long_axis_mm": 4.0 + number,
        "short_axis_mm": 3.0 + number,
        "centroid_x_mm": 1.0,
        "centroid_y_mm": 2.0,
        "centroid_z_mm": 3.0,
        "centroid_index_x": 10.0,
        "centroid_index_y": 20.0,
        "centroid_index_z": 30.0,
        "bbox_min_x": 1,
        "bbox_min_y": 1,
        "bbox_min_z": 1,
        "bbox_max_x": 5,
        "bbox_max_y": 5,
        "bbox_max_z": 5,
        "voxel_count": 100,
        "mean_intensity": 20.0,
        "max_intensity": 80.0,
        "mean_probability": 0.7,
        "max_probability": 0.9,
        "source": FindingSource.AI,
        "review_status": ReviewStatus.PENDING,
        "created_at": datetime.now(UTC),
    }


def median_time(action: Callable[[int], object], repeats: int) -> tuple[float, float]:
    """(median, 90th percentile) seconds of ``action(i)`` over ``repeats`` after 3 warm-ups."""
    for i in range(3):
        action(i)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def import_throughput(db: Database, folder: Path, count: int) -> float:
    """Cases per second through the real import API (3 files of 4 KiB hashed per series)."""
    all_series = []
    for i in range(count):
        series_folder = folder / f"series{i}"
        series_folder.mkdir(parents=True)
        files = []
        for n in range(3):
            path = series_folder / f"IM{n}.dcm"
            path.write_bytes(os.urandom(4096))
            files.append(path)
        meta = ScanMetadata(
            modality="CT",
            patient_name=f"IMPORT^PATIENT{i}",
            patient_id=f"IMP{i:06d}",
            study_uid=f"9.9.{i}",
            series_uid=f"9.9.{i}.1",
            study_date="20240101",
        )
        all_series.append(
            SeriesInfo(
                key=meta.series_uid,
                kind=SeriesKind.VOLUME,
                metadata=meta,
                files=tuple(files),
                size_xyz=(512, 512, 3),
                spacing_xyz_mm=(0.7, 0.7, 1.0),
                loadable=True,
            )
        )
    started = time.perf_counter()
    for series in all_series:
        import_series(db, series)
    return count / (time.perf_counter() - started)


def run_throughput(db: Database, count: int) -> float:
    """Model runs per second through store_inference (64x64x32 mask, 5 findings)."""
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Card:
        name: str = "bench-model"
        version: str = "1"
        sha256: str = "cd" * 32

    @dataclass(frozen=True)
    class Provider:
        used: str = "CPUExecutionProvider"
        short_name: str = "cpu"
        attempts: tuple = ()

    @dataclass(frozen=True)
    class Result:
        segmentation: Segmentation
        findings: tuple
        card: Card = field(default_factory=Card)
        provider: Provider = field(default_factory=Provider)
        timings_s: dict = field(default_factory=lambda: {"total": 1.0})
        warnings: tuple = ()

    labels = np.zeros((32, 64, 64), dtype=np.uint8)
    labels[10:14, 20:30, 20:30] = 1
    findings = tuple(
        Finding(n, 1, "nodule", 0.1, 5, 3, (0, 0, 0), (0, 0, 0), (0, 0, 0, 1, 1, 1), 9, 1, 2,
                0.5, 0.9)
        for n in range(1, 6)
    )  # fmt: skip
    unsigned = [i for i in range(1, 10 * count) if STATUSES[i % len(STATUSES)] != CaseStatus.SIGNED]
    started = time.perf_counter()
    for case_id in unsigned[:count]:
        volume = Volume(
            np.zeros((32, 64, 64), dtype=np.int16),
            (1.0, 1.0, 1.0),
            (0.0, 0.0, 0.0),
            metadata=ScanMetadata(series_uid=f"1.2.826.0.1.{case_id}.1"),
        )
        result = Result(Segmentation(labels, {1: "nodule"}, {1: "#ff0000"}), findings)
        store_inference(db, case_id, volume, result)
    return count / (time.perf_counter() - started)


def machine_facts() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "usable_cpus": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    url = args.db or str(folder / "bench.sqlite3")
    figures: dict[str, Any] = {"cases": args.cases, "findings_per_case": FINDINGS_PER_CASE}
    with Database.open(DatabaseSettings(url=url, masks_dir=folder / "masks", actor="bench")) as db:
        figures["backend"] = db.backend.value
        figures["bulk_insert_s"] = populate(db, args.cases)
        rng = random.Random(11)
        status = (CaseStatus.ANALYSED,)
        deep_page = max(0, args.cases * 30 // 100 // 50 // 2)
        queries: dict[str, Callable[[int], object]] = {
            "worklist page 1 (status=analysed, newest study first)": lambda i: list_cases(
                db, WorklistQuery(statuses=status)
            ),
            f"worklist page {deep_page + 1} (same filter)": lambda i: list_cases(
                db, WorklistQuery(statuses=status, page=deep_page)
            ),
            "worklist page 1 (status=analysed, patient name A-Z)": lambda i: list_cases(
                db, WorklistQuery(statuses=status, order=WorklistOrder.PATIENT_NAME)
            ),
            f"worklist page {deep_page + 1} (status=analysed, patient name A-Z)": lambda i: (
                list_cases(
                    db,
                    WorklistQuery(
                        statuses=status, order=WorklistOrder.PATIENT_NAME, page=deep_page
                    ),
                )
            ),
            f"worklist page {deep_page + 1} (all cases, patient name Z-A)": lambda i: list_cases(
                db, WorklistQuery(order=WorklistOrder.PATIENT_NAME_DESC, page=deep_page)
            ),
            "patient name prefix, 3 letters": lambda i: list_cases(
                db, WorklistQuery(patient=surname(rng.randrange(1, 8000))[:3])
            ),
            "patient name prefix, whole surname": lambda i: list_cases(
                db, WorklistQuery(patient=surname(rng.randrange(1, 8000)))
            ),
            "patient ID prefix": lambda i: list_cases(
                db, WorklistQuery(patient=f"P{rng.randrange(1, args.cases * 2 // 5):07d}"[:7])
            ),
            "text anywhere (scans; no target)": lambda i: list_cases(
                db, WorklistQuery(text="abdomen " + surname(rng.randrange(1, 8000))[:4])
            ),
            "load one case with runs and findings": lambda i: get_case(
                db, rng.randrange(1, args.cases + 1)
            ),
        }
        figures["queries"] = {}
        for name, action in queries.items():
            median, p90 = median_time(action, args.repeats)
            figures["queries"][name] = {"median_s": median, "p90_s": p90}
        figures["import_cases_per_s"] = import_throughput(db, folder / "import", args.imports)
        figures["runs_per_s"] = run_throughput(db, args.runs)
    figures["machine"] = machine_facts()
    return figures


def whole(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--imports", type=int, default=300, help="series to import")
    parser.add_argument("--runs", type=int, default=100, help="model runs to store")
    parser.add_argument("--db", help="an empty database URL (default: a new SQLite file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meddiag-bench-db-") as folder:
        figures = run(args, Path(folder))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    machine = figures["machine"]
    print(
        f"machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, "
        f"{machine['platform']}, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"SQLAlchemy {machine['sqlalchemy']}"
    )
    print(
        f"{figures['backend']}: {figures['cases']:,} cases x {FINDINGS_PER_CASE} findings, "
        f"bulk insert {figures['bulk_insert_s']:.0f} s"
    )
    failed = False
    for name, timing in figures["queries"].items():
        targeted = "no target" not in name
        ok = timing["median_s"] < TARGET_S
        failed |= targeted and not ok
        verdict = ("ok" if ok else "OVER TARGET") if targeted else ""
        print(f"  {name:55} median {whole(timing['median_s']):>8}  p90 "
              f"{whole(timing['p90_s']):>8}  {verdict}")  # fmt: skip
    print(f"  import throughput: {figures['import_cases_per_s']:.0f} cases/s")
    print(f"  model runs stored: {figures['runs_per_s']:.0f} runs/s (mask file + 5 findings)")
    print(f"target: each query median < {TARGET_S * 1000:.0f} ms: {'MISSED' if failed else 'met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
