"""``meddiag review``, ``meddiag sign`` and ``meddiag export`` end to end on the demo case:
a real model run stored in a real database, the review from the command line, the six files
read back (kept findings only, the rejected one nowhere) and the export in the audit trail."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.slow

FILES = ("report.pdf", "seg.dcm", "sr.dcm", "labels.nii.gz", "findings.csv", "findings.json")


def meddiag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meddiag_desktop.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo case imported and analysed once (about a minute), shared by the tests."""
    root = tmp_path_factory.mktemp("export_cli")
    env = dict(os.environ, MEDDIAG_DB=f"sqlite:///{root / 'cases.sqlite3'}")
    assert meddiag("demo", "make", str(root / "demo"), env=env).returncode == 0
    done = meddiag(
        "infer", str(root / "demo" / "dicom"), "--model", "demo-lung-nodules",
        "--out", str(root / "pred"), "--db", env["MEDDIAG_DB"], env=env,
    )
    assert done.returncode == 0, done.stderr
    return root, env


def test_review_sign_export_writes_the_kept_findings_only(analysed) -> None:
    root, env = analysed
    draft = meddiag("export", "1", "--out", str(root / "draft"), "--json", env=env)
    assert draft.returncode == 0, draft.stderr
    assert "DRAFT" in draft.stderr
    assert json.loads((root / "draft" / "findings.json").read_text())["findings"] == []

    unknown = meddiag("review", "1", "--accept", "9", env=env)
    assert unknown.returncode == 2 and "no finding #9" in unknown.stderr
    review = meddiag(
        "review", "1", "--accept", "1", "--reject", "2:a vessel", "--edit", "3:label=mass",
        env=env,
    )
    assert review.returncode == 0, review.stderr
    assert meddiag("sign", "1", env=env).returncode == 0

    out = root / "out"
    done = meddiag("export", "1", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / name) for name in FILES]
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary left

    document = json.loads((out / "findings.json").read_text())
    numbers = [row["#"] if "#" in row else row.get("number") for row in document["findings"]]
    assert len(document["findings"]) == 2, document["findings"]
    assert 2 not in numbers
    labels = {row.get("label") or row.get("Label") for row in document["findings"]}
    assert "mass" in labels
    with (out / "findings.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2

    seg = pydicom.dcmread(out / "seg.dcm")
    assert len(seg.SegmentSequence) == 2
    sr = pydicom.dcmread(out / "sr.dcm")
    assert sr.VerificationFlag == "VERIFIED"

    label_map = sitk.ReadImage(str(out / "labels.nii.gz"))
    scan = sitk.ReadImage(str(root / "pred" / next(
        p.name for p in (root / "pred").iterdir() if p.name.endswith(".nii.gz")
    ))) if any(p.name.endswith(".nii.gz") for p in (root / "pred").iterdir()) else None
    if scan is not None:
        assert label_map.GetSize() == scan.GetSize()
        assert np.allclose(label_map.GetOrigin(), scan.GetOrigin())
    # The kept findings are the only lesions left: two separate regions, the rejected one zero.
    regions = sitk.ConnectedComponent(label_map > 0, True)
    assert int(sitk.GetArrayViewFromImage(regions).max()) == 2

    shown = meddiag("cases", "show", "1", env=env).stdout
    assert "signed" in shown
    audit = _export_events(Path(env["MEDDIAG_DB"].removeprefix("sqlite:///")))
    assert audit, "no report.exported event"
    files = audit[-1]["files"]
    for entry in files:
        digest = hashlib.sha256((out / entry["name"]).read_bytes()).hexdigest()
        assert entry["sha256"] == digest


def test_export_refusals_exit_2_with_one_line(analysed, tmp_path: Path) -> None:
    _root, env = analysed
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    done = meddiag("export", "1", "--out", str(blocked / "inside"), env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    missing = meddiag("export", "99", "--out", str(tmp_path / "x"), env=env)
    assert missing.returncode == 2 and "99" in missing.stderr


def _export_events(database: Path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT details FROM audit_events WHERE action = 'report.exported' ORDER BY id"
        ).fetchall()
    return [json.loads(details) for (details,) in rows]
