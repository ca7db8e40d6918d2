"""Pairing rules: folders of case folders, files, single cases, and clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.evaluation import EvaluationError, evaluate_cases, pair_cases
from meddiag_desktop.scans import ScanError

WriteMap = Callable[..., Path]
MASK = np.zeros((4, 5, 6), dtype=np.uint8)


def _names(pairs) -> list[str]:
    return [pair.name for pair in pairs]


def test_folders_of_case_folders_pair_by_name(tmp_path: Path, write_map: WriteMap) -> None:
    for name in ("case_b", "case_a"):
        write_map(tmp_path / "pred" / name / "mask.nii.gz", MASK)
    write_map(tmp_path / "pred" / "case_a" / "probabilities.nii.gz", MASK.astype(np.float32))
    (tmp_path / "pred" / "case_a" / "findings.json").write_text("{}")
    (tmp_path / "pred" / "notes").mkdir()  # not a case: ignored
    write_map(tmp_path / "ref" / "case_a" / "ground_truth.nii.gz", MASK)
    write_map(tmp_path / "ref" / "case_a" / "image.nii.gz", MASK)
    write_map(tmp_path / "ref" / "case_b" / "t2.nii.gz", MASK)
    write_map(tmp_path / "ref" / "case_b" / "t2_seg-manual.nii.gz", MASK)

    pairs = pair_cases([tmp_path / "pred"], [tmp_path / "ref"])

    assert _names(pairs) == ["case_a", "case_b"]
    first, second = pairs
    assert first.reference.label_map.name == "ground_truth.nii.gz"
    assert first.prediction.probabilities == tmp_path / "pred" / "case_a" / "probabilities.nii.gz"
    assert first.prediction.findings == tmp_path / "pred" / "case_a" / "findings.json"
    assert second.reference.label_map.name == "t2_seg-manual.nii.gz"
    assert second.prediction.probabilities is None and second.prediction.findings is None


def test_folders_of_files_and_lists_of_files(tmp_path: Path, write_map: WriteMap) -> None:
    for name in ("p1", "p2"):
        write_map(tmp_path / "pred" / f"{name}.nii.gz", MASK)
        write_map(tmp_path / "ref" / f"{name}.nrrd", MASK)
    (tmp_path / "pred" / "readme.txt").write_text("not a case")
    assert _names(pair_cases([tmp_path / "pred"], [tmp_path / "ref"])) == ["p1", "p2"]

    files = pair_cases(
        [tmp_path / "pred" / "p2.nii.gz", tmp_path / "pred" / "p1.nii.gz"],
        [tmp_path / "ref"],
    )
    assert _names(files) == ["p1", "p2"]
    assert files[0].prediction.label_map == tmp_path / "pred" / "p1.nii.gz"


def test_one_case_on_each_side_pairs_whatever_the_names(
    tmp_path: Path, write_map: WriteMap
) -> None:
    infer_out = tmp_path / "run1"
    write_map(infer_out / "mask.nii.gz", MASK)
    write_map(tmp_path / "demo_case" / "ground_truth.nii.gz", MASK)
    write_map(tmp_path / "demo_case" / "ct.nii.gz", MASK)

    (pair,) = pair_cases([infer_out], [tmp_path / "demo_case"])
    assert pair.name == "demo_case"
    assert pair.prediction.name == "run1"

    (same,) = pair_cases([infer_out / "mask.nii.gz"], [tmp_path / "demo_case"])
    assert same.prediction.name == "run1"  # mask.nii.gz is named after its folder


def test_unmatched_names_are_listed(tmp_path: Path, write_map: WriteMap) -> None:
    for name in ("a", "b", "c"):
        write_map(tmp_path / "pred" / name / "mask.nii.gz", MASK)
    for name in ("a", "b", "d", "e"):
        write_map(tmp_path / "ref" / f"{name}.nii.gz", MASK)
    with pytest.raises(EvaluationError) as raised:
        pair_cases([tmp_path / "pred"], [tmp_path / "ref"])
    message = str(raised.value)
    assert "no reference for prediction case(s) c" in message
    assert "no prediction for reference case(s) d, e" in message
    assert "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_same_name_twice_on_one_side_is_an_error(tmp_path: Path, write_map: WriteMap) -> None:
    write_map(tmp_path / "one" / "x.nii.gz", MASK)
    write_map(tmp_path / "two" / "x.nii.gz", MASK)
    write_map(tmp_path / "ref" / "x.nii.gz", MASK)
    with pytest.raises(EvaluationError, match="both named 'x'"):
        pair_cases([tmp_path / "one", tmp_path / "two"], [tmp_path / "ref"])


def test_ambiguous_reference_folder_inside_a_folder_of_cases(
    tmp_path: Path, write_map: WriteMap
) -> None:
    for name in ("a", "b"):
        write_map(tmp_path / "pred" / f"{name}.nii.gz", MASK)
    write_map(tmp_path / "ref" / "a" / "ground_truth.nii.gz", MASK)
    write_map(tmp_path / "ref" / "b" / "liver_seg.nii.gz", MASK)
    write_map(tmp_path / "ref" / "b" / "spine_seg.nii.gz", MASK)
    with pytest.raises(ScanError, match="several possible reference label maps"):
        pair_cases([tmp_path / "pred"], [tmp_path / "ref"])


def test_missing_and_empty_paths(tmp_path: Path, write_map: WriteMap) -> None:
    write_map(tmp_path / "ref.nii.gz", MASK)
    with pytest.raises(ScanError, match="not found"):
        pair_cases([tmp_path / "nowhere"], [tmp_path / "ref.nii.gz"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="holds no prediction cases"):
        pair_cases([tmp_path / "empty"], [tmp_path / "ref.nii.gz"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ScanError, match="is not a label map"):
        pair_cases([tmp_path / "notes.txt"], [tmp_path / "ref.nii.gz"])


def test_grids_must_match_and_the_error_names_both_files(
    tmp_path: Path, write_map: WriteMap
) -> None:
    ref = write_map(tmp_path / "ref.nii.gz", MASK, spacing_xyz=(1.0, 1.0, 2.0))
    close = write_map(tmp_path / "close.nii.gz", MASK, spacing_xyz=(1.0, 1.0, 2.0005))
    evaluate_cases(pair_cases([close], [ref]))  # within 1e-3: accepted

    shifted = write_map(
        tmp_path / "shifted.nii.gz", MASK, spacing_xyz=(1.0, 1.0, 2.0), origin_xyz=(0, 0, 0.01)
    )
    spaced = write_map(tmp_path / "spaced.nii.gz", MASK, spacing_xyz=(1.0, 1.0, 2.01))
    resized = write_map(tmp_path / "resized.nii.gz", np.zeros((4, 5, 7), np.uint8))
    for other, what in [(shifted, "origin"), (spaced, "spacing"), (resized, "size")]:
        with pytest.raises(EvaluationError) as raised:
            evaluate_cases(pair_cases([other], [ref]))
        message = str(raised.value)
        assert str(other) in message and str(ref) in message
        assert f"{what} " in message


def test_not_a_label_map(tmp_path: Path, write_map: WriteMap) -> None:
    ref = write_map(tmp_path / "ref.nii.gz", MASK)
    fractional = write_map(tmp_path / "soft.nii.gz", np.full(MASK.shape, 0.5, np.float32))
    with pytest.raises(ScanError, match="fractional"):
        evaluate_cases(pair_cases([fractional], [ref]))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    with pytest.raises(ScanError, match="cannot be read"):
        evaluate_cases(pair_cases([broken], [ref]))


def test_probability_map_must_hold_probabilities(tmp_path: Path, write_map: WriteMap) -> None:
    write_map(tmp_path / "ref.nii.gz", MASK)
    write_map(tmp_path / "run" / "mask.nii.gz", MASK)
    write_map(tmp_path / "run" / "probabilities.nii.gz", np.full(MASK.shape, 2.0, np.float32))
    with pytest.raises(ScanError, match="values outside"):
        evaluate_cases(pair_cases([tmp_path / "run"], [tmp_path / "ref.nii.gz"]))
