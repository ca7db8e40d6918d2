"""How fast the MPR viewer pages through a 512 x 512 CT with its label overlay, offscreen.

Builds the demo chest phantom at 300 x 512 x 512 int16 (0.68 x 0.68 x 1.0 mm) with its nodule
mask, opens it in an :class:`MprViewer` with the mask as overlay, then measures in one run, as
medians over repeats after a warm-up:

- floor: numpy windowing of the same axial slices to uint8 (clip of a float32 rescale), the
  least any viewer must do before it can show a slice;
- slice change: ``PlaneView.go_to_slice`` (extract, window, overlay, crosshair, annotations)
  plus a forced render of the axial view (``viewport().grab()`` paints the scene into a pixmap);
- the same with the overlay in outline mode, and with the whole 2x2 viewer rendered (the other
  two views redraw their crosshair when the axial slice moves).

Target: >= 60 slice changes per second for the axial view with the overlay.
Not part of the test suite.

    .venv/bin/python bench/viewer.py [--slices 60] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from meddiag_desktop.demo.phantom import make_phantom
from meddiag_desktop.viewer.mpr_viewer import MprViewer
from meddiag_desktop.viewer.plane_geometry import Plane

SHAPE_ZYX = (300, 512, 512)
SPACING_XYZ_MM = (0.68, 0.68, 1.0)
TARGET_PER_SECOND = 60
VIEWER_SIZE = (1400, 1100)  # each view about 700 x 550 pixels, the 512 slice near 1:1


def rate(run: Callable[[int], object], slices: list[int], repeats: int) -> tuple[float, float]:
    """(median slice changes per second, median seconds per slice) over ``repeats`` sweeps."""
    run(slices[0])  # warm-up: first-touch of buffers, lazy imports
    per_slice = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in slices:
            run(index)
        per_slice.append((time.perf_counter() - start) / len(slices))
    median = statistics.median(per_slice)
    return 1.0 / median, median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=60, help="slice changes per sweep")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(imageAxisOrder="row-major")
    built = time.perf_counter()
    phantom = make_phantom(seed=4242, shape_zyx=SHAPE_ZYX, spacing_xyz_mm=SPACING_XYZ_MM)
    built = time.perf_counter() - built
    volume = phantom.volume

    viewer = MprViewer()
    viewer.resize(*VIEWER_SIZE)
    viewer.show()
    app.processEvents()
    opened = time.perf_counter()
    viewer.set_volume(volume)
    viewer.set_overlay(phantom.mask_zyx, {1: "#ff5050"})
    app.processEvents()
    opened = time.perf_counter() - opened
    axial = viewer.plane_view(Plane.AXIAL)
    viewport = axial.graphics.viewport()
    window = viewer.window_level
    mapping = axial.mapping
    assert window is not None and mapping is not None
    # a sweep through the middle of the stack, one slice per step (what the wheel does)
    first = SHAPE_ZYX[0] // 2 - args.slices // 2
    slices = list(range(first, first + args.slices))

    def floor(index: int) -> np.ndarray:
        raw = mapping.extract(volume.array_zyx, index)
        scaled = (raw.astype(np.float32) - np.float32(window.low)) * np.float32(
            255.0 / window.width
        )
        return np.clip(scaled, 0, 255).astype(np.uint8)

    def axial_change(index: int) -> None:
        axial.go_to_slice(index)
        viewport.grab()

    def viewer_change(index: int) -> None:
        axial.go_to_slice(index)
        viewer.grab()

    floor_rate, floor_seconds = rate(floor, slices, args.repeats)
    filled_rate, filled_seconds = rate(axial_change, slices, args.repeats)
    viewer_rate, viewer_seconds = rate(viewer_change, slices, args.repeats)
    viewer.set_overlay_mode("outline")
    outline_rate, outline_seconds = rate(axial_change, slices, args.repeats)
    viewer.set_overlay_mode("filled")
    viewer.set_overlay(None)
    bare_rate, _ = rate(axial_change, slices, args.repeats)

    figures = {
        "volume_zyx": list(SHAPE_ZYX),
        "phantom_build_s": round(built, 1),
        "open_with_overlay_ms": round(opened * 1000),
        "axial_viewport_px": [viewport.width(), viewport.height()],
        "floor_per_s": round(floor_rate),
        "axial_with_overlay_per_s": round(filled_rate),
        "axial_with_outline_overlay_per_s": round(outline_rate),
        "axial_without_overlay_per_s": round(bare_rate),
        "whole_viewer_with_overlay_per_s": round(viewer_rate),
        "axial_with_overlay_ratio_to_floor": round(filled_seconds / floor_seconds),
        "axial_with_outline_ratio_to_floor": round(outline_seconds / floor_seconds),
        "whole_viewer_ratio_to_floor": round(viewer_seconds / floor_seconds),
        "target_per_s": TARGET_PER_SECOND,
        "python": platform.python_version(),
        "cpus": os.cpu_count() or 0,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"volume {SHAPE_ZYX} int16 built in {built:.0f} s; axial viewport "
            f"{viewport.width()} x {viewport.height()} px; medians of {args.repeats} sweeps "
            f"of {args.slices} slices"
        )
        print(f"set_volume + set_overlay + first paint:  {opened * 1000:8.0f} ms")
        print(f"floor (numpy windowing to uint8):        {floor_rate:8.0f} slices/s")
        print(
            f"axial view, filled overlay:               {filled_rate:8.0f} slices/s  "
            f"({filled_seconds / floor_seconds:.0f}x the floor)"
        )
        print(
            f"axial view, outline overlay:              {outline_rate:8.0f} slices/s  "
            f"({outline_seconds / floor_seconds:.0f}x the floor)"
        )
        print(f"axial view, no overlay:                   {bare_rate:8.0f} slices/s")
        print(
            f"whole 2x2 viewer rendered, filled overlay: {viewer_rate:7.0f} slices/s  "
            f"({viewer_seconds / floor_seconds:.0f}x the floor)"
        )
        verdict = "meets" if min(filled_rate, outline_rate) >= TARGET_PER_SECOND else "MISSES"
        print(f"target >= {TARGET_PER_SECOND} slice changes/s for the axial view: {verdict}")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
