"""``meddiag infer --db``: the run, its findings and mask land in the case database, and a run
interrupted by Ctrl-C or failing is recorded as such with nothing half-saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.cli import main
from meddiag_desktop.cli.output import ProgressBar
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.scans import load, write_volume
from meddiag_desktop.scans.dicom_series_writer import write_dicom_series


def _show(db_url: str, case_id: int, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["cases", "show", str(case_id), "--db", db_url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_infer_stores_run_findings_and_mask(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model", min_volume=10.0)
    db_url = str(tmp_path / "cases.sqlite3")
    out = tmp_path / "out"
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--db", db_url]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "findings.json").read_text())
    case_id, run_id = report["database"]["case_id"], report["database"]["run_id"]
    assert f"Stored as run {run_id} of case {case_id}" in printed

    case = _show(db_url, case_id, capsys)
    assert case["summary"]["status"] == "analysed"
    [run] = case["runs"]
    assert run["outcome"] == "succeeded" and run["model_name"] == "threshold-test"
    assert run["model_sha256"] == report["model"]["sha256"]
    assert run["provider"] == report["provider"]
    assert len(run["findings"]) == len(report["findings"]) == 2
    stored = sorted(f["finding"]["volume_ml"] for f in run["findings"])
    written = sorted(f["volume_ml"] for f in report["findings"])
    assert stored == pytest.approx(written)

    with Database.open(DatabaseSettings(url=db_url)) as db:
        mask = load_mask(db, run_id)
    written_mask = load(out / "mask.nii.gz")
    assert np.array_equal(mask.array_zyx, written_mask.array_zyx)
    assert mask.spacing_xyz_mm == pytest.approx(written_mask.spacing_xyz_mm)

    assert main(["cases", "list", "--db", db_url, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)["cases"]
    assert listed["case_id"] == case_id and listed["finding_count"] == 2

    # The same scan again is the same case, with a second run.
    assert main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "again"),
                 "--db", db_url]) == 0
    capsys.readouterr()
    assert len(_show(db_url, case_id, capsys)["runs"]) == 2


def test_interrupted_run_is_recorded_as_cancelled(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model")
    db_url = str(tmp_path / "cases.sqlite3")
    calls = []

    def ctrl_c_during_the_run(self: ProgressBar, progress: object) -> None:
        calls.append(progress)
        if len(calls) == 3:  # the user presses Ctrl-C while windows are running
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", ctrl_c_during_the_run)
    out = tmp_path / "out"
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--db", db_url]) == 130
    assert not (out / "mask.nii.gz").exists()
    capsys.readouterr()
    case = _show(db_url, 1, capsys)
    [run] = case["runs"]
    assert run["outcome"] == "cancelled" and run["findings"] == [] and run["mask"] is None
    assert case["summary"]["status"] == "new"


def test_modality_refusal_is_not_a_run(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    scan = tmp_path / "mr"
    write_dicom_series(phantom("MR"), scan, series_description="MR phantom")
    model = make_model_folder(tmp_path / "model")
    db_url = str(tmp_path / "cases.sqlite3")
    code = main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "o"),
                 "--db", db_url])
    err = capsys.readouterr().err
    assert code == 2 and "is for CT scans" in err
    assert main(["cases", "list", "--db", db_url, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    for item in listing["cases"]:
        assert _show(db_url, item["case_id"], capsys)["runs"] == []


def test_bad_database_url_fails_before_the_run(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model")
    code = main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "o"),
                 "--db", "mysql://nobody@nowhere/cases"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("meddiag: error:") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
