"""``meddiag demo make DIR --follow-up``: two studies of one synthetic patient with known
changes, and a ground truth whose volumes are those the masks hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from meddiag_desktop.cli import main
from meddiag_desktop.demo.case import DemoCaseError
from meddiag_desktop.demo.follow_up import FOLLOW_UP_DAYS, FollowUpPair
from meddiag_desktop.demo.follow_up_case import FollowUpCase, write_follow_up_case
from meddiag_desktop.scans import discover, load


def test_the_pair_is_one_patient_twice_with_every_kind_of_change(
    pair_on_disk: FollowUpCase,
) -> None:
    truth = json.loads(pair_on_disk.truth_json.read_text(encoding="utf-8"))
    [baseline] = [s for s in discover(pair_on_disk.baseline.dicom_folder) if s.loadable]
    [follow_up] = [s for s in discover(pair_on_disk.follow_up.dicom_folder) if s.loadable]
    a, b = baseline.metadata, follow_up.metadata
    assert (a.patient_id, a.patient_name) == (b.patient_id, b.patient_name)
    assert a.study_uid != b.study_uid and a.series_uid != b.series_uid
    assert (a.study_date, b.study_date) == ("20250106", "20250406")
    assert truth["days_between"] == FOLLOW_UP_DAYS
    assert truth["baseline"]["study_uid"] == a.study_uid
    changes = sorted(lesion["change"] for lesion in truth["lesions"])
    assert changes == ["gone", "grown", "new", "shrunk", "unchanged", "unchanged"]
    assert truth["response"] == "PD" and truth["rule"].startswith("PD: new lesion")
    for lesion in truth["lesions"]:
        assert {
            "track_id",
            "status",
            "volume_ml",
            "long_axis_mm",
            "volume_change_pct",
            "doubling_time_days",
        } <= set(lesion)
        assert all(d is None or d >= 6.0 for d in lesion["long_axis_mm"])  # the model sees them
    grown = next(x for x in truth["lesions"] if x["change"] == "grown")
    assert grown["volume_change_pct"] == pytest.approx(100.0, abs=0.01)
    assert grown["doubling_time_days"] == pytest.approx(90.0, abs=0.01)
    assert 15.0 <= truth["transform"]["shift_mm"] <= 20.0
    assert 3.0 <= truth["transform"]["rotation_deg"] <= 5.0


def test_true_volumes_are_what_the_masks_hold(pair: FollowUpPair) -> None:
    for side, phantom in ((0, pair.baseline), (1, pair.follow_up)):
        volume = phantom.volume
        labels, count = ndimage.label(phantom.mask_zyx)
        voxel_ml = float(np.prod(volume.spacing_xyz_mm)) / 1000.0
        sizes = np.bincount(labels.ravel())[1:] * voxel_ml
        expected = [x for x in pair.truth["lesions"] if x["volume_ml"][side] is not None]
        assert count == len(expected)
        for lesion in expected:
            index = np.asarray(volume.lps_to_index(tuple(lesion["centre_lps_mm"][side])))
            x, y, z = (int(np.rint(v)) for v in index)
            component = labels[z, y, x]
            assert component > 0, lesion["track_id"]
            assert sizes[component - 1] == pytest.approx(lesion["volume_ml"][side], rel=0.04)


def test_the_command_writes_the_layout_and_refuses_other_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pair_on_disk: FollowUpCase
) -> None:
    layout = {p.name for p in pair_on_disk.folder.iterdir()}
    assert layout == {"baseline", "follow-up", "follow_up_truth.json"}
    for case in (pair_on_disk.baseline, pair_on_disk.follow_up):
        assert {p.name for p in case.folder.iterdir()} == {
            "dicom",
            "ground_truth.nii.gz",
            "nodules.json",
        }
        assert load(case.ground_truth).array_zyx.max() == 1
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DemoCaseError, match="not empty"):
        write_follow_up_case(busy)
    assert main(["demo", "make", str(busy), "--follow-up"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "mine"
