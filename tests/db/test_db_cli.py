"""The commands end to end: import a DICOM folder, store a real model run, list, show, db *."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.db.command import add_parsers
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.migrations import HEAD
from meddiag_desktop.db.runs import mask_path, store_inference
from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.scans import choose_series, discover, load, write_volume
from meddiag_desktop.scans.dicom_series_writer import write_dicom_series

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))


def meddiag(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run a command the way ``meddiag_desktop.cli.main`` does (one-line errors, exit 2)."""
    parser = argparse.ArgumentParser(prog="meddiag")
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"meddiag: error: {exc}", file=sys.stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def phantom() -> Volume:
    """Two bright spheres in air, a CT with a patient: what the tiny threshold model finds."""
    shape_zyx, spacing, origin = (24, 48, 48), (1.0, 1.0, 2.0), (-24.0, -24.0, 0.0)
    z, y, x = np.indices(shape_zyx, dtype=np.float32)
    lps = (origin[0] + x * spacing[0], origin[1] + y * spacing[1], origin[2] + z * spacing[2])
    array = np.full(shape_zyx, -1000, dtype=np.int16)
    for centre, diameter in (((6.0, 4.0, 20.0), 12.0), ((-10.0, -8.0, 30.0), 8.0)):
        distance = np.sqrt(sum((c - a) ** 2 for c, a in zip(centre, lps, strict=True)))
        array[distance <= diameter / 2] = 40
    metadata = ScanMetadata(
        modality="CT",
        patient_name="ROUND^TRIP",
        patient_id="RT001",
        study_date="20240315",
        study_description="CT CHEST",
        series_description="LUNG 2mm",
    )
    return Volume(array, spacing, origin, metadata=metadata)


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    write_dicom_series(phantom(), folder / "dicom", uid_seed="db-cli-test")
    write_volume(phantom(), folder / "other.nii.gz")
    return folder


def test_round_trip(scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tiny_models import make_model_folder

    from meddiag_desktop.inference.card import read_card
    from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end

    url = str(tmp_path / "db" / "meddiag.sqlite3")
    code, out, _ = meddiag(capsys, "import", str(scans), "--db", url)
    assert code == 0 and "2 new case(s), 0 already imported" in out
    code, out, _ = meddiag(capsys, "import", str(scans), "--db", url, "--json")
    assert code == 0 and [o["created"] for o in json.loads(out)] == [False, False]

    # What `meddiag infer --db` does: run the model, store the run on the series' case.
    series = choose_series(discover(scans / "dicom"), None, scans / "dicom")
    volume = load(series)
    card = read_card(make_model_folder(tmp_path / "model", min_volume=10.0))
    result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")))
    with Database.open(DatabaseSettings(url=url)) as db:
        run_id = store_inference(db, series, volume, result, parameters={"provider": "cpu"})

    code, out, _ = meddiag(capsys, "cases", "list", "--db", url)
    assert code == 0 and "ROUND TRIP (RT001)" in out and "cases 1-2 of 2" in out
    code, out, _ = meddiag(capsys, "cases", "list", "--order", "patient_name_desc", "--db", url)
    assert code == 0 and "cases 1-2 of 2" in out
    code, out, _ = meddiag(capsys, "cases", "list", "--status", "analysed", "--json", "--db", url)
    listed = json.loads(out)
    assert listed["total"] == 1 and listed["cases"][0]["series_description"] == "LUNG 2mm"
    case_id = listed["cases"][0]["case_id"]

    code, out, _ = meddiag(capsys, "cases", "show", str(case_id), "--json", "--db", url)
    shown = json.loads(out)
    run = shown["runs"][0]
    assert code == 0 and shown["current_run_id"] == run_id and run["model_name"] == card.name
    assert run["model_sha256"] == card.sha256 and run["provider"] == "cpu"
    assert run["parameters"]["options"] == {"provider": "cpu"}
    assert run["parameters"]["postprocessing"]["min_lesion_volume_mm3"] == 10.0
    assert len(run["findings"]) == 2 == len(shown["unreviewed_findings"])
    assert run["mask"]["sha256"] and run["mask"]["geometry"]["size_xyz"] == [48, 48, 24]
    code, out, _ = meddiag(capsys, "cases", "show", str(case_id), "--db", url)
    assert "ROUND TRIP" in out and "2 finding(s)" in out and "pending" in out

    code, out, _ = meddiag(capsys, "db", "info", "--db", url)
    assert code == 0 and f"{HEAD} (up to date" in out and "synchronous FULL" in out
    assert "1 analysed" in out and "journal wal" in out
    code, out, _ = meddiag(capsys, "db", "check", "--db", url)
    assert code == 0 and out.strip().endswith("OK")

    code, out, _ = meddiag(capsys, "db", "backup", "--to", str(tmp_path / "copy"), "--db", url)
    assert code == 0 and (tmp_path / "copy" / "meddiag.sqlite3").is_file()
    with Database.open(DatabaseSettings(url=str(tmp_path / "copy" / "meddiag.sqlite3"))) as copy:
        assert check_database(copy).ok and copy.masks_dir == tmp_path / "copy" / "masks"

    with Database.open(DatabaseSettings(url=url)) as db:
        path = mask_path(db, run_id)
    assert path is not None
    path.write_bytes(b"tampered")
    code, out, _ = meddiag(capsys, "db", "check", "--db", url, "--scans")
    assert code == 1 and "sha256 mismatch" in out and "PROBLEMS FOUND" in out


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "meddiag.sqlite3")
    code, _, err = meddiag(capsys, "cases", "show", "42", "--db", url)
    assert code == 2 and err == "meddiag: error: there is no case 42\n"
    code, _, err = meddiag(capsys, "import", str(tmp_path / "missing"), "--db", url)
    assert code == 2 and err.endswith("missing: does not exist\n")
    code, _, err = meddiag(capsys, "db", "info", "--db", "mysql://x@y/z")
    assert code == 2 and "unsupported database URL" in err
    code, out, _ = meddiag(capsys, "cases", "list", "--db", url)
    assert code == 0 and out.strip() == "No cases."
    with pytest.raises(SystemExit):
        meddiag(capsys, "cases", "list", "--status", "bogus", "--db", url)
