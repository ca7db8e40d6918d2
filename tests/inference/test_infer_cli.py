"""``meddiag infer``: mask on the input's grid, findings.json, probabilities, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.cli import main
from meddiag_desktop.scans import write_volume


def test_infer_writes_mask_findings_and_probabilities(tmp_path: Path) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model", min_volume=10.0)
    out = tmp_path / "out"
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--probabilities", "--provider", "cuda"]) == 0
    mask = sitk.ReadImage(str(out / "mask.nii.gz"))
    source = sitk.ReadImage(str(scan))
    assert mask.GetSize() == source.GetSize()
    assert np.allclose(mask.GetOrigin(), source.GetOrigin())
    assert np.allclose(mask.GetSpacing(), source.GetSpacing())
    assert sitk.GetArrayFromImage(mask).max() == 1
    probabilities = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "probabilities.nii.gz")))
    assert probabilities.dtype == np.float32
    assert 0.0 <= probabilities.min() <= probabilities.max() <= 1.0
    report = json.loads((out / "findings.json").read_text())
    assert report["model"]["name"] == "threshold-test" and len(report["model"]["sha256"]) == 64
    assert report["provider"] in ("cpu", "cuda")
    if report["provider"] == "cpu":
        assert report["provider_fallbacks"], "the reason CUDA was not used must be recorded"
    assert {"preprocess", "model", "total"} <= set(report["timings_s"])
    # which library ran the model, in which precision, and why nothing faster
    assert report["runtime"]["runtime"] in ("openvino", "onnxruntime")
    assert report["runtime"]["precision"] == "float32" and report["runtime"]["notes"]
    assert len(report["findings"]) == 2
    assert {"volume_ml", "long_axis_mm", "short_axis_mm", "centroid_lps_mm",
            "mean_probability"} <= set(report["findings"][0])
    assert "Not for clinical use" in report["disclaimer"]


def test_unknown_modality_runs_with_a_warning(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    mr_like = phantom("MR")
    mr_like = mr_like.with_array((mr_like.array_zyx + 1000).astype(np.int16))  # no air at -1000
    scan = write_volume(mr_like, tmp_path / "mr.mha")
    model = make_model_folder(tmp_path / "model")
    assert main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "o")]) == 0
    assert "modality is unknown" in capsys.readouterr().err


def test_infer_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    assert main(["infer", str(scan), "--model", "no-such-model", "--out", str(tmp_path)]) == 2
    assert "no model named" in capsys.readouterr().err


HEAD_CT = "ct_philips_mixed_folder"  # a real 28-slice head CT: BodyPartExamined BRAIN


def _head_ct(sample_data: Path) -> tuple[Path, str]:
    from meddiag_desktop.scans import discover

    folder = sample_data / "dicom" / HEAD_CT
    [series] = [s for s in discover(folder) if s.loadable and s.kind.value == "volume"]
    return folder, series.key


def test_demo_model_refuses_the_real_head_ct(sample_data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder, key = _head_ct(sample_data)
    out = tmp_path / "out"
    code = main(["infer", str(folder), "--series", key, "--model", "demo-lung-nodules",
                 "--out", str(out), "--provider", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("meddiag: error: ")
    assert "'demo-lung-nodules' is for the chest, but this scan is of the head" in err
    assert "--force-anatomy" in err
    assert not (out / "findings.json").exists()


def test_force_anatomy_runs_and_records_the_override(sample_data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from meddiag_desktop.db.audit import case_history
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.db.records import AuditAction
    from meddiag_desktop.db.runs import get_run

    folder, key = _head_ct(sample_data)
    model = make_model_folder(tmp_path / "model", patch=32, spacing=4.0)  # a chest card
    out, db_url = tmp_path / "out", str(tmp_path / "cases.sqlite3")
    args = ["infer", str(folder), "--series", key, "--model", str(model), "--out", str(out),
            "--provider", "cpu", "--db", db_url]
    assert main(args) == 2
    capsys.readouterr()
    assert main([*args, "--force-anatomy"]) == 0
    assert "is of the head" in capsys.readouterr().err  # said again as a warning

    report = json.loads((out / "findings.json").read_text())
    assert report["parameters"]["allow_anatomy_mismatch"] is True
    assert report["parameters"]["allow_modality_mismatch"] is False
    anatomy = report["scan"]["anatomy"]
    assert anatomy["verdict"] == "other region" and anatomy["scan_regions"] == ["head"]
    assert report["scan"]["body_part_examined"] == "BRAIN"
    assert any("is of the head" in w and "Run anyway on request" in w
               for w in report["warnings"])

    with Database.open(DatabaseSettings(url=db_url)) as db:
        run = get_run(db, report["database"]["run_id"])
        history = case_history(db, report["database"]["case_id"])
    assert run.parameters["options"]["allow_anatomy_mismatch"] is True
    assert run.parameters["anatomy"]["region"] == "chest"
    assert run.parameters["runtime"]["precision"] == "float32"  # the run's provenance
    assert any("is of the head" in w for w in run.warnings)
    [saved] = [e for e in history if e.action is AuditAction.RUN_SAVED]
    assert saved.details["overrides"] == ["allow_anatomy_mismatch"]


def test_force_modality_still_overrides_and_is_audited(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from meddiag_desktop.db.audit import recent_events
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.scans.dicom_series_writer import write_dicom_series

    dicom = tmp_path / "mr_dicom"
    write_dicom_series(phantom("MR"), dicom)  # DICOM: the modality is recorded, not guessed
    model = make_model_folder(tmp_path / "model")
    out, db_url = tmp_path / "out", str(tmp_path / "cases.sqlite3")
    args = ["infer", str(dicom), "--model", str(model), "--out", str(out), "--db", db_url]
    assert main(args) == 2
    assert "is for CT scans" in capsys.readouterr().err
    assert main([*args, "--force-modality"]) == 0
    report = json.loads((out / "findings.json").read_text())
    assert report["parameters"]["allow_modality_mismatch"] is True
    assert report["scan"]["modality_guessed"] is False
    with Database.open(DatabaseSettings(url=db_url)) as db:
        [saved] = [e for e in recent_events(db) if e.details.get("overrides")]
    assert saved.details["overrides"] == ["allow_modality_mismatch"]


def test_nifti_says_its_modality_is_a_guess(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.db.runs import get_run

    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model")
    out, db_url = tmp_path / "out", str(tmp_path / "cases.sqlite3")
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--db", db_url]) == 0
    assert "modality (CT) is a guess" in capsys.readouterr().err
    report = json.loads((out / "findings.json").read_text())
    assert report["scan"]["modality"] == "CT" and report["scan"]["modality_guessed"] is True
    assert "voxel values" in report["scan"]["modality_guessed_from"]
    assert any("modality (CT) is a guess" in w for w in report["warnings"])
    assert report["scan"]["anatomy"]["verdict"] == "unknown"  # NIfTI records no anatomy
    with Database.open(DatabaseSettings(url=db_url)) as db:
        run = get_run(db, report["database"]["run_id"])
    assert any("modality (CT) is a guess" in w for w in run.warnings)
