"""Slice view pieces: window presets, radiological orientation, keyboard paging, stale loads."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from meddiag_desktop.app import scan_controller
from meddiag_desktop.app.scan_controller import ScanController
from meddiag_desktop.display.window_level import looks_like_ct, presets_for
from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.viewer.display_orientation import orientation_of
from meddiag_desktop.viewer.slice_view import SliceView

pytestmark = pytest.mark.gui


def test_ct_defaults_to_soft_tissue_and_mr_to_percentiles(phantom: Volume) -> None:
    ct = phantom
    assert presets_for(ct)[0].name == "Soft tissue"
    assert (presets_for(ct)[0].width, presets_for(ct)[0].level) == (400, 40)
    mr = replace(ct, array_zyx=np.arange(40 * 64 * 64, dtype=np.float32).reshape(40, 64, 64))
    mr = replace(mr, metadata=ScanMetadata(modality="MR"))
    window = presets_for(mr)[0]
    assert window.name.startswith("Auto")
    assert window.low == pytest.approx(np.percentile(mr.array_zyx, 1), rel=1e-3)


def test_file_without_modality_counts_as_ct_by_its_air(phantom: Volume) -> None:
    unnamed = replace(phantom, metadata=ScanMetadata())
    assert looks_like_ct(unnamed)
    assert not looks_like_ct(replace(unnamed, array_zyx=unnamed.array_zyx + 1000))


def test_orientation_flips_ras_stored_files_to_radiological_view(phantom: Volume) -> None:
    lps = phantom
    assert orientation_of(lps).left == "R" and orientation_of(lps).top == "A"
    ras = replace(lps, direction_lps=(-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    shown = orientation_of(ras)
    assert shown.flip_columns and shown.flip_rows and (shown.left, shown.top) == ("R", "A")
    coronal = replace(lps, direction_lps=(1.0, 0, 0, 0, 0, 1.0, 0, -1.0, 0))
    assert (orientation_of(coronal).top, orientation_of(coronal).right) == ("S", "L")


def test_keyboard_pages_through_slices(qtbot, phantom: Volume) -> None:
    view = SliceView()
    qtbot.addWidget(view)
    view.set_volume(phantom)
    start = view.slice_index
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.slice_index == start + 1


def test_a_slow_older_load_never_replaces_a_newer_one(qtbot, monkeypatch, phantom: Volume) -> None:
    release_first = threading.Event()
    volumes = {"A": phantom, "B": replace(phantom, source="B")}

    def fake_load(series: SeriesInfo, progress=None):
        if series.key == "A":
            release_first.wait(10)
        return volumes[series.key]

    monkeypatch.setattr(scan_controller.scans, "load", fake_load)
    controller = ScanController()
    shown: list[str] = []
    controller.volume_loaded.connect(lambda volume, series: shown.append(series.key))

    def series(key: str) -> SeriesInfo:
        return SeriesInfo(key=key, kind=SeriesKind.FILE, metadata=ScanMetadata(), files=())

    controller.load_series(series("A"))
    controller.load_series(series("B"))
    qtbot.waitUntil(lambda: shown == ["B"], timeout=10_000)
    release_first.set()
    controller.shutdown()
    qtbot.wait(50)  # let any queued answer from A arrive
    assert shown == ["B"]
    assert not controller.busy
