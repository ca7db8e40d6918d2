"""The issue's whole flow on the real demo model: ``meddiag demo make --follow-up``, both
studies imported and analysed (``meddiag infer --db``), ``meddiag compare --json`` against the
ground truth, then the reviewed follow-up's DICOM SR continuing the baseline's tracking UIDs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from conftest import SEED
from truth_pairing import pair_with_truth

from meddiag_desktop.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("follow_up_model")
    url = str(root / "cases.sqlite3")
    pair = root / "pair"
    assert main(["demo", "make", str(pair), "--follow-up", "--seed", str(SEED)]) == 0
    for name in ("baseline", "follow-up"):
        code = main(
            [
                "infer",
                str(pair / name / "dicom"),
                "--model",
                "demo-lung-nodules",
                "--out",
                str(root / f"pred-{name}"),
                "--db",
                url,
            ]
        )
        assert code == 0
    truth = json.loads((pair / "follow_up_truth.json").read_text(encoding="utf-8"))
    return {"root": root, "url": url, "truth": truth}


def test_compare_on_the_demo_models_findings_matches_the_truth(
    analysed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["compare", "2", "1", "--db", analysed["url"], "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    truth = analysed["truth"]
    found, extra = pair_with_truth(compared, truth)
    assert extra == [], f"tracks at no true lesion (false positives?): {extra}"
    assert {t: found[t]["status"] for t in found} == {
        lesion["track_id"]: lesion["status"] for lesion in truth["lesions"]
    }
    for lesion in truth["lesions"]:
        if lesion["volume_change_pct"] is None:
            continue
        measured = found[lesion["track_id"]]
        true_ratio = 1 + lesion["volume_change_pct"] / 100
        assert 1 + measured["volume_change_pct"] / 100 == pytest.approx(true_ratio, rel=0.10)
    assert compared["response"] == truth["response"]
    assert compared["registration"]["seconds"] < 30.0
    (analysed["root"] / "compared.json").write_text(json.dumps(compared, indent=2))


def _tracking_uids(path: Path) -> set[str]:
    """Every Tracking UID an SR holds."""
    found: set[str] = set()

    def walk(items: Any) -> None:
        for item in items:
            names = item.get("ConceptNameCodeSequence", [])
            if item.get("ValueType") == "UIDREF" and names and names[0].CodeValue == "112040":
                found.add(str(item.UID))  # DCM 112040: Tracking Unique Identifier
            walk(item.get("ContentSequence", []))

    walk(pydicom.dcmread(path).ContentSequence)
    return found


def test_the_follow_up_sr_continues_the_baselines_tracking_uids(
    analysed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = analysed["url"], analysed["root"]
    assert main(["compare", "2", "1", "--db", url, "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    for case_id in ("1", "2"):
        assert main(["review", case_id, "--accept", "1,2,3,4,5", "--db", url]) == 0
        assert (
            main(
                [
                    "export",
                    case_id,
                    "--out",
                    str(root / f"export-{case_id}"),
                    "--seg",
                    "--sr",
                    "--pdf",
                    "--db",
                    url,
                ]
            )
            == 0
        )
    capsys.readouterr()
    baseline = _tracking_uids(root / "export-1" / "sr.dcm")
    follow_up = _tracking_uids(root / "export-2" / "sr.dcm")
    for lesion in compared["lesions"]:
        if lesion["status"] == "matched":
            assert lesion["tracking_uid"] in baseline and lesion["tracking_uid"] in follow_up
        elif lesion["status"] == "new":
            assert lesion["tracking_uid"] in follow_up and lesion["tracking_uid"] not in baseline
    matched = sum(1 for x in compared["lesions"] if x["status"] == "matched")
    assert len(baseline & follow_up) == matched
