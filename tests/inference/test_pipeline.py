"""The whole pipeline on a real (tiny) ONNX model: geometry, findings, progress, cancel."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tiny_models import make_model_folder

from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.inference.card import read_card
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    ModelMismatchError,
    run_inference,
    run_to_end,
)
from meddiag_desktop.inference.sliding_window import CancelToken, InferenceCancelled

SPACING = (0.8, 0.8, 2.0)
ORIGIN = (-40.0, -30.0, 100.0)
SPHERES = [((10.0, 12.0, 140.0), 20.0), ((-20.0, -5.0, 124.0), 10.0)]  # LPS centre, diameter


def phantom(modality: str = "CT") -> Volume:
    shape_zyx = (40, 100, 110)
    z, y, x = np.indices(shape_zyx, dtype=np.float32)
    lps = [ORIGIN[0] + x * SPACING[0], ORIGIN[1] + y * SPACING[1], ORIGIN[2] + z * SPACING[2]]
    array = np.full(shape_zyx, -1000, dtype=np.int16)
    for centre, diameter in SPHERES:
        distance = np.sqrt(sum((c - a) ** 2 for c, a in zip(centre, lps, strict=True)))
        array[distance <= diameter / 2] = 40
    return Volume(array, SPACING, ORIGIN, metadata=ScanMetadata(modality=modality))


@pytest.fixture
def card(tmp_path: Path):
    return read_card(make_model_folder(tmp_path / "model", min_volume=10.0))


def test_findings_match_the_spheres(card) -> None:
    volume = phantom()
    progress = []
    result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")),
                        progress.append)
    assert result.segmentation.labels_zyx.shape == volume.shape_zyx
    assert result.provider.used == "CPUExecutionProvider"
    assert len(result.findings) == 2
    for finding, (centre, diameter) in zip(result.findings, SPHERES, strict=True):
        expected_ml = math.pi / 6 * diameter**3 / 1000
        assert finding.volume_ml == pytest.approx(expected_ml, rel=0.2)
        assert finding.long_axis_mm == pytest.approx(diameter, abs=2.0)
        assert finding.short_axis_mm == pytest.approx(diameter, abs=2.5)
        assert np.allclose(finding.centroid_lps_mm, centre, atol=1.0)
        assert finding.mean_intensity == pytest.approx(40, abs=60)
        assert 0.5 <= finding.max_probability <= 1.0
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(p.stage == "running model" for p in progress)
    assert set(result.timings_s) >= {"preprocess", "model", "postprocess", "findings", "total"}


def test_native_spacing_model_gives_exact_mask(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "native", spacing=None))
    volume = phantom()
    result = run_to_end(run_inference(volume, card))
    expected = (volume.array_zyx > -300).astype(np.uint8)
    assert np.array_equal(result.segmentation.labels_zyx, expected)


def test_cancel_stops_within_one_window(card) -> None:
    cancel = CancelToken()
    steps = run_inference(phantom(), card, InferenceOptions(batch_size=1), cancel)
    windows_seen = 0
    with pytest.raises(InferenceCancelled):
        for progress in steps:
            if progress.stage == "running model":
                windows_seen += 1
                if windows_seen == 2:
                    cancel.cancel()
    assert windows_seen == 2


def test_modality_mismatch_is_refused_unless_forced(card) -> None:
    with pytest.raises(ModelMismatchError, match="for CT scans"):
        run_to_end(run_inference(phantom("MR"), card))
    result = run_to_end(run_inference(phantom("MR"), card,
                                      InferenceOptions(allow_modality_mismatch=True)))
    assert any("MR" in w for w in result.warnings)


def test_small_lesions_are_dropped_by_min_volume(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "big", min_volume=1000.0))
    result = run_to_end(run_inference(phantom(), card))
    assert len(result.findings) == 1
    assert result.findings[0].long_axis_mm == pytest.approx(20.0, abs=2.0)
    assert int(result.segmentation.labels_zyx.max()) == 1
