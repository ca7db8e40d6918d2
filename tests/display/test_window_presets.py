"""Window/level arithmetic without Qt: presets, right-drag, and the table-driven windowing."""

from __future__ import annotations

import numpy as np
import pytest

from meddiag_desktop.display.window_level import (
    CT_PRESETS,
    SliceWindower,
    WindowLevel,
    dragged_window,
    percentile_windows,
    presets_for,
)
from meddiag_desktop.domain import ScanMetadata, Volume


def reference(plane: np.ndarray, window: WindowLevel) -> np.ndarray:
    """The obvious float formula the lookup tables must reproduce."""
    scaled = (plane.astype(np.float64) - window.low) * 255.0 / window.width
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint8", "int8", "float32", "int32"])
def test_windowing_matches_the_float_formula(dtype: str) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    low, high = (info.min, info.max) if info else (-3000, 3000)
    values = np.linspace(low, high, 512 * 16).astype(dtype).reshape(64, 128)
    window = WindowLevel(400, 40) if info is None or info.max > 255 else WindowLevel(100, 20)
    windower = SliceWindower(np.dtype(dtype), window)
    strided = values[::-1, ::2]  # flipped, non-contiguous views are what extract() returns
    shown = windower.to_uint8(strided)
    assert shown.dtype == np.uint8 and shown.flags.c_contiguous
    # float32 arithmetic may round a half differently from float64: at most one grey level
    assert np.abs(shown.astype(int) - reference(strided, window)).max() <= 1
    windower.set_window(WindowLevel(80, 40))
    assert (
        np.abs(
            windower.to_uint8(strided).astype(int) - reference(strided, WindowLevel(80, 40))
        ).max()
        <= 1
    )
    with pytest.raises(ValueError, match="dtype"):
        windower.to_uint8(strided.astype(np.float64))


def test_ct_preset_table_is_the_standard_one() -> None:
    assert {p.name: (p.width, p.level) for p in CT_PRESETS} == {
        "Soft tissue": (400, 40),
        "Brain": (80, 40),
        "Subdural": (200, 75),
        "Stroke": (40, 40),
        "Lung": (1500, -600),
        "Mediastinum": (350, 50),
        "Abdomen": (400, 50),
        "Liver": (150, 30),
        "Bone": (1800, 400),
    }


def test_uncalibrated_data_gets_percentile_choices() -> None:
    array = np.random.default_rng(1).gamma(2.0, 200.0, (20, 30, 30)).astype(np.float32)
    mr = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), metadata=ScanMetadata(modality="MR"))
    windows = percentile_windows(mr)
    assert presets_for(mr) == windows
    assert windows[0].low == pytest.approx(np.percentile(array, 1), rel=1e-3)
    assert windows[0].high == pytest.approx(np.percentile(array, 99), rel=1e-3)
    assert windows[1].low == pytest.approx(np.percentile(array, 0.5), rel=1e-3)
    assert windows[2].high == pytest.approx(np.percentile(array, 95), rel=1e-3)


def test_right_drag_widens_rightwards_and_raises_level_downwards() -> None:
    start = WindowLevel(400, 40, "Soft tissue")
    right = dragged_window(start, 256, 0, data_span=4000)
    assert (right.width, right.level, right.name) == (800, 40, "Custom")  # 256 px = one width
    down = dragged_window(start, 0, 128, data_span=4000)
    assert (down.width, down.level) == (400, 240)
    assert dragged_window(start, -10_000, 0, data_span=4000).width == 1
    narrow = dragged_window(WindowLevel(1, 40), 256, 0, data_span=4000)
    assert narrow.width == 41  # the data's range keeps a tiny window adjustable
    floating = dragged_window(WindowLevel(0.5, 0.2), 10, 0, data_span=1.0, min_width=1e-4)
    assert floating.width == pytest.approx(0.5195, abs=1e-4)


@pytest.mark.parametrize(
    ("study", "series", "first"),
    [
        ("TRAUMA/PLAIN HEAD", "STD BRAIN 5MM", "Brain"),
        ("CT chest - synthetic phantom", "Axial 2 mm", "Lung"),
        ("", "Thorax 1.25mm", "Lung"),
        ("ABDOMEN PELVIS", "Portal venous", "Soft tissue"),
        ("", "", "Soft tissue"),
        ("HEAD NECK CHEST", "whole body", "Soft tissue"),  # several regions: no guess
        ("Headless phantom", "Brainstorm", "Soft tissue"),  # whole words only
    ],
)
def test_a_ct_opens_in_the_window_of_the_region_it_names(
    study: str, series: str, first: str
) -> None:
    array = np.full((4, 8, 8), -1000, dtype=np.int16)
    metadata = ScanMetadata(modality="CT", study_description=study, series_description=series)
    ct = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), metadata=metadata)
    presets = presets_for(ct)
    assert presets[0].name == first
    # every standard preset is still offered, once, the others in their usual order
    assert sorted(p.name for p in presets[:-1]) == sorted(p.name for p in CT_PRESETS)
    assert [p for p in presets[:-1] if p.name != first] == [
        p for p in CT_PRESETS if p.name != first
    ]
