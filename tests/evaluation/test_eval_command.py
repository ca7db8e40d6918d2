"""``meddiag evaluate`` through ``add_parser`` on a fresh parser: JSON, table, plot, help."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.evaluation.command import add_parser

WriteMap = Callable[..., Path]
SHAPE = (20, 24, 24)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meddiag")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.fixture
def cases(tmp_path: Path, write_map: WriteMap) -> tuple[Path, Path]:
    """Two 'meddiag infer' output folders with timings; case_1 also has a probability map."""
    for index, name in enumerate(("case_1", "case_2")):
        reference = np.zeros(SHAPE, dtype=np.uint8)
        reference[2:6, 2:6, 2:6] = 1
        reference[12:15, 15:18, 15:18] = 2
        prediction = np.zeros(SHAPE, dtype=np.uint8)
        prediction[3:6, 2:6, 2:6] = 1  # hits lesion 1
        prediction[15:17, 2:4, 20:22] = 1  # a false positive
        write_map(tmp_path / "ref" / name / "ground_truth.nii.gz", reference, (0.8, 0.8, 2.0))
        write_map(tmp_path / "pred" / name / "mask.nii.gz", prediction, (0.8, 0.8, 2.0))
        timings = {"load": 1.0 + index, "inference": 3.0, "total": 4.0 + 2 * index}
        (tmp_path / "pred" / name / "findings.json").write_text(
            json.dumps({"findings": [], "timings_s": timings})
        )
    probabilities = np.zeros(SHAPE, dtype=np.float32)
    probabilities[2:6, 2:6, 2:6] = 0.8
    probabilities[12:15, 15:18, 15:18] = 0.3
    probabilities[15:17, 2:4, 20:22] = 0.6
    write_map(tmp_path / "pred" / "case_1" / "probabilities.nii.gz", probabilities, (0.8, 0.8, 2.0))
    return tmp_path / "pred", tmp_path / "ref"


def test_json_output(cases, capsys: pytest.CaptureFixture[str]) -> None:
    pred, ref = cases
    assert _run(["evaluate", "--pred", str(pred), "--ref", str(ref), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    overall = result["overall"]
    assert overall["cases"] == 2
    lesions = overall["lesions"]
    assert (lesions["tp"], lesions["fn"], lesions["fp"]) == (2, 2, 2)
    assert lesions["recall"] == pytest.approx(0.5)
    assert lesions["precision"] == pytest.approx(0.5)
    assert lesions["fp_per_case"] == pytest.approx(1.0)
    assert set(overall["labels"]) == {"1", "2"}
    assert overall["labels"]["2"]["dice"] == 0.0
    assert overall["any_lesion"]["dice"] == pytest.approx(2 * 48 / (91 + 56))
    assert overall["timings_s"]["mean"] == {"load": 1.5, "inference": 3.0, "total": 5.0}
    assert overall["timings_s"]["mean_total"] == pytest.approx(5.0)
    froc = overall["froc"]
    assert froc["cases"] == 1 and froc["reference_lesions"] == 2
    assert [e["fp_per_case"] for e in froc["sensitivity_at_fp_per_case"]] == [
        0.25, 0.5, 1, 2, 4, 8,
    ]  # fmt: skip

    case = result["cases"][0]
    assert case["name"] == "case_1"
    assert case["timings_s"]["total"] == 4.0
    assert case["probabilities"].endswith("probabilities.nii.gz")
    assert [lesion["detected"] for lesion in case["reference_lesions"]] == [True, False]
    first = case["reference_lesions"][0]
    assert first["centroid_lps_mm"] == pytest.approx([2.8, 2.8, 7.0])  # index 3.5 x spacing
    assert first["matched_by"] == "overlap"
    assert first["volume_ml"] == pytest.approx(64 * 0.8 * 0.8 * 2.0 / 1000)
    assert result["criterion"]["min_distance_mm"] == 5.0
    assert result["criterion"]["connectivity"] == 26


def test_table_output_and_options(cases, capsys: pytest.CaptureFixture[str]) -> None:
    pred, ref = cases
    argv = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--min-diameter-mm", "4"]
    assert _run(argv) == 0
    out = capsys.readouterr().out
    assert "case_1" in out and "case_2" in out
    assert "TP 2, FN 2, FP 2" in out
    assert "recall for lesions >= 4 mm" in out
    assert "FROC over 1 case(s)" in out
    assert "mean total 5.00 s" in out


def test_plot_froc_writes_a_png(cases, tmp_path: Path, capsys) -> None:
    pred, ref = cases
    out = tmp_path / "froc.png"
    assert _run(["evaluate", "--pred", str(pred), "--ref", str(ref), "--plot", str(out)]) == 0
    assert "FROC curve" in capsys.readouterr().out
    _assert_png(out)


def test_plot_without_probabilities_says_single_point(
    cases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, ref = cases
    out = tmp_path / "point.png"
    argv = ["evaluate", "--pred", str(pred / "case_2"), "--ref", str(ref / "case_2")]
    assert _run([*argv, "--plot", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["overall"]["froc"] is None
    assert "single operating point" in captured.err
    _assert_png(out)


def test_plot_to_a_missing_folder_is_a_user_error(cases, tmp_path: Path) -> None:
    from meddiag_desktop.scans import ScanError

    pred, ref = cases
    out = tmp_path / "no" / "such" / "froc.png"
    with pytest.raises(ScanError, match="does not exist"):
        _run(["evaluate", "--pred", str(pred), "--ref", str(ref), "--plot", str(out)])


def test_help_documents_pairing_and_criterion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "max(5 mm, the reference lesion's equivalent radius)" in text
    assert "26-connected" in text
    assert "ground_truth.nii.gz" in text and "mask.nii.gz" in text
    assert "paired by name" in text


def _assert_png(path: Path) -> None:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 400
    assert pixels.std() > 0.05  # something was drawn
