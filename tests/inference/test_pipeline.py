"""The whole pipeline on a real (tiny) ONNX model: geometry, findings, progress, cancel."""

from __future__ import annotations

import math
import tracemalloc
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
from meddiag_desktop.inference.session import SessionCache
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


TILING = """max_tile_zyx = [128, 128, 128]
tile_multiple = 2
tile_margin = 5
tile_bytes_per_voxel = 100
"""


@pytest.fixture
def conv_card(tmp_path: Path):
    """The tiny U-Net, declared fully convolutional (radius 4 <= margin 5, one pooling)."""
    return read_card(make_model_folder(tmp_path / "conv", model="conv", tiling=TILING))


def test_large_tiles_give_the_single_tile_answer(conv_card) -> None:
    volume = phantom()
    one = run_to_end(run_inference(volume, conv_card, InferenceOptions(tile_memory_mb=1024)))
    many = run_to_end(run_inference(volume, conv_card, InferenceOptions(tile_memory_mb=2)))
    assert one.plan.startswith("1 tile(s)") and len(one.model_inputs) == 1
    assert len(many.model_inputs) > 4 and many.plan.startswith(f"{len(many.model_inputs)} tile")
    assert all(math.prod(shape) * 100 <= 2 * 2**20 for shape in many.model_inputs)
    a, b = one.segmentation, many.segmentation
    assert a.probability_zyx is not None and b.probability_zyx is not None
    assert np.abs(a.probability_zyx - b.probability_zyx).max() < 1e-5
    assert np.array_equal(a.labels_zyx, b.labels_zyx)


def test_windows_when_asked_for(conv_card) -> None:
    volume = phantom()
    for options in (InferenceOptions(large_tiles=False), InferenceOptions(overlap=0.25)):
        result = run_to_end(run_inference(volume, conv_card, options))
        assert result.plan.startswith("windows of (16, 16, 16)")
        assert {shape[2:] for shape in result.model_inputs} == {(16, 16, 16)}


def test_cancel_stops_a_model_call_already_running(conv_card) -> None:
    """The cancel token sets onnxruntime's terminate flag: a long tile stops mid-way."""
    cancel = CancelToken()
    real = SessionCache()

    class CancelDuringRun:
        def __init__(self, session) -> None:
            self.session = session

        def __getattr__(self, name):
            return getattr(self.session, name)

        def run(self, outputs, feeds, run_options=None):
            cancel.cancel()  # as if the user pressed Cancel while this call runs
            return self.session.run(outputs, feeds, run_options)

    class Sessions(SessionCache):
        def get(self, *args):
            session, report = real.get(*args)
            return CancelDuringRun(session), report

    with pytest.raises(InferenceCancelled):
        run_to_end(run_inference(phantom(), conv_card, None, cancel, Sessions()))


def test_no_full_size_float_copies_after_the_model(tmp_path: Path) -> None:
    """Besides the float32 probability map and the uint8 labels, mapping back and measuring
    add only slabs and lesion-sized arrays (numpy allocations, traced)."""
    card = read_card(make_model_folder(tmp_path / "m", spacing=1.6))
    volume = phantom()
    volume = Volume(np.tile(volume.array_zyx, (3, 2, 2)), SPACING, ORIGIN,
                    metadata=ScanMetadata(modality="CT"))
    scan_float32 = volume.array_zyx.size * 4
    peaks: dict[str, float] = {}

    def note(progress) -> None:
        peaks[progress.stage] = tracemalloc.get_traced_memory()[1] / scan_float32
        tracemalloc.reset_peak()

    tracemalloc.start()
    try:
        result = run_to_end(run_inference(volume, card), note)
    finally:
        tracemalloc.stop()
    # the peak reported at "measuring findings" is that of mapping back, "done" that of findings
    assert peaks["measuring findings"] < 2.0 and peaks["done"] < 1.6
    assert len(result.findings) == 2 * 3 * 2 * 2
