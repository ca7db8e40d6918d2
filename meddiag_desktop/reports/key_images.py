"""One key image per kept finding: the axial slice through its centroid, with its outline.

Drawn with numpy and matplotlib's Agg renderer (never by grabbing a Qt widget), in the window
the project's own windowing picks for the scan (lung for a chest CT, 1-99 % for MR), laid out in
radiological convention from the scan's direction matrix, with square pixels in millimetres so
anisotropic voxels keep their aspect. Each image has two panels: the whole slice, for where the
finding is, and a zoom, for its outline; both carry orientation letters and a scale bar.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from meddiag_desktop.display.axial_view import AxialView, axial_view
from meddiag_desktop.display.window_level import SliceWindower, WindowLevel, key_image_window
from meddiag_desktop.reports.review_outcome import LesionRegion, ReportedFinding, ReviewOutcome

SCALE_BAR_COLOUR = "#ffd400"  # not a label colour: a test finds the bar by it
DEFAULT_CONTOUR_COLOUR = "#ff5050"
_MIN_ZOOM_MM = 40.0  # the zoom panel shows at least this much around the finding
_ZOOM_PER_AXIS = 3.0  # ... and at least this many long axes
_OUTLINE = [patheffects.withStroke(linewidth=2.2, foreground="black")]


@dataclass(frozen=True)
class Panel:
    """Where one panel's image lies in the PNG, for checks of scale and placement.

    ``field_mm`` is (left, right, top, bottom) of the shown area in display millimetres (x to the
    right, y down, 0 at the slice's top-left corner); ``box_px`` is (left, top, right, bottom) of
    the same area in PNG pixels.
    """

    field_mm: tuple[float, float, float, float]
    box_px: tuple[float, float, float, float]
    scale_bar_mm: float


@dataclass(frozen=True)
class KeyImage:
    """A rendered key image and what the report prints beside it."""

    number: int  # the finding's number
    png: bytes
    width_px: int
    height_px: int
    slice_index: int  # 0-based array index along the axial (through) axis
    on_centroid: bool  # False when the outline misses the centroid's slice (a curved lesion)
    window: WindowLevel
    view: AxialView
    panels: tuple[Panel, ...]


def render_key_image(
    outcome: ReviewOutcome,
    reported: ReportedFinding,
    width_in: float = 6.4,
    dpi: int = 200,
    window: WindowLevel | None = None,
) -> KeyImage:
    """The key image of ``reported`` on ``outcome``'s scan (PNG bytes and its layout)."""
    scan = outcome.scan
    view = axial_view(scan)
    window = window or key_image_window(scan)
    centroid_zyx = tuple(float(v) for v in reversed(reported.finding.centroid_index_xyz))
    index, on_centroid = _slice_through(reported.region, view, centroid_zyx, scan.shape_zyx)
    grey = SliceWindower(scan.array_zyx.dtype, window).to_uint8(view.extract(scan.array_zyx, index))
    mask = view.orient(_region_plane(reported.region, scan.shape_zyx, view, index))
    colour = outcome.label_colours.get(reported.finding.label, DEFAULT_CONTOUR_COLOUR)

    rows, columns = grey.shape
    full_mm = (0.0, columns * view.pixel_width_mm, 0.0, rows * view.pixel_height_mm)
    column, row = view.shown_position(centroid_zyx, scan.shape_zyx)  # type: ignore[arg-type]
    centre_mm = ((column + 0.5) * view.pixel_width_mm, (row + 0.5) * view.pixel_height_mm)
    zoom_mm = _zoom_field(full_mm, centre_mm, reported.finding.long_axis_mm)

    aspect = (full_mm[3] - full_mm[2]) / (full_mm[1] - full_mm[0])
    panel_in = width_in / 2
    figure = Figure(figsize=(width_in, panel_in * max(aspect, 1.0)), dpi=dpi, facecolor="black")
    canvas = FigureCanvasAgg(figure)
    gap = 0.01
    context = figure.add_axes((0.0, 0.0, 0.5 - gap, 1.0))
    zoom = figure.add_axes((0.5 + gap, 0.0, 0.5 - gap, 1.0))
    for axes, field in ((context, full_mm), (zoom, zoom_mm)):
        _draw_slice(axes, grey, mask, view, full_mm, field, colour)
    if zoom_mm != full_mm:  # a lesion as large as the slice has nothing to box
        context.add_patch(
            Rectangle(
                (zoom_mm[0], zoom_mm[2]),
                zoom_mm[1] - zoom_mm[0],
                zoom_mm[3] - zoom_mm[2],
                fill=False,
                edgecolor="white",
                linewidth=0.6,
                linestyle="--",
            )
        )
    bars = tuple(_scale_bar(axes, field) for axes, field in ((context, full_mm), (zoom, zoom_mm)))
    canvas.draw()
    width_px, height_px = canvas.get_width_height()
    panels = tuple(
        Panel(field, _box_px(axes, height_px), bar)
        for axes, field, bar in ((context, full_mm, bars[0]), (zoom, zoom_mm, bars[1]))
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="black")
    return KeyImage(
        number=reported.number,
        png=buffer.getvalue(),
        width_px=width_px,
        height_px=height_px,
        slice_index=index,
        on_centroid=on_centroid,
        window=window,
        view=view,
        panels=panels,
    )


def scale_bar_length_mm(field_width_mm: float) -> float:
    """The longest 1-2-5 length (mm) no more than a quarter of the field's width."""
    target = max(field_width_mm / 4, 1e-3)
    decade = 10 ** math.floor(math.log10(target))
    return max(step * decade for step in (1, 2, 5) if step * decade <= target)


def _slice_through(
    region: LesionRegion,
    view: AxialView,
    centroid_zyx: tuple[float, ...],
    shape_zyx: tuple[int, int, int],
) -> tuple[int, bool]:
    """The axial index through the centroid; the nearest slice with the lesion if it misses."""
    axis = view.through_axis
    wanted = int(np.clip(round(centroid_zyx[axis]), 0, shape_zyx[axis] - 1))
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(region.mask_zyx.any(axis=other)) + region.start_zyx[axis]
    if present.size == 0 or wanted in present:
        return wanted, True
    return int(present[np.argmin(np.abs(present - wanted))]), False


def _region_plane(
    region: LesionRegion, shape_zyx: tuple[int, int, int], view: AxialView, index: int
) -> np.ndarray:
    """The region's voxels on one axial slice, in array axis order (not yet oriented)."""
    axis = view.through_axis
    first, second = (a for a in range(3) if a != axis)
    plane = np.zeros((shape_zyx[first], shape_zyx[second]), dtype=bool)
    offset = index - region.start_zyx[axis]
    if 0 <= offset < region.mask_zyx.shape[axis]:
        cut = np.take(region.mask_zyx, offset, axis=axis)
        r0, c0 = region.start_zyx[first], region.start_zyx[second]
        plane[r0 : r0 + cut.shape[0], c0 : c0 + cut.shape[1]] = cut
    return plane


def _zoom_field(
    full_mm: tuple[float, float, float, float], centre_mm: tuple[float, float], long_axis_mm: float
) -> tuple[float, float, float, float]:
    """A square around the finding, moved (not shrunk) to stay inside the slice."""
    side = max(_MIN_ZOOM_MM, _ZOOM_PER_AXIS * long_axis_mm)
    left, right, top, bottom = full_mm
    side = min(side, right - left, bottom - top)
    x0 = float(np.clip(centre_mm[0] - side / 2, left, right - side))
    y0 = float(np.clip(centre_mm[1] - side / 2, top, bottom - side))
    return (x0, x0 + side, y0, y0 + side)


def _draw_slice(
    axes: Axes,
    grey: np.ndarray,
    mask: np.ndarray,
    view: AxialView,
    full_mm: tuple[float, float, float, float],
    field: tuple[float, float, float, float],
    colour: str,
) -> None:
    left, right, top, bottom = full_mm
    axes.imshow(
        grey,
        cmap="gray",
        vmin=0,
        vmax=255,
        extent=(left, right, bottom, top),
        interpolation="nearest",
        aspect="equal",
    )
    if mask.any():
        padded = np.pad(mask, 1).astype(np.float32)  # closes outlines touching the edge
        xs = (np.arange(padded.shape[1]) - 0.5) * view.pixel_width_mm
        ys = (np.arange(padded.shape[0]) - 0.5) * view.pixel_height_mm
        axes.contour(xs, ys, padded, levels=[0.5], colors=[colour], linewidths=1.2)
    axes.set_xlim(field[0], field[1])
    axes.set_ylim(field[3], field[2])  # y grows downwards, as on screen
    axes.set_axis_off()
    for (x, y), letter, align in (
        ((0.02, 0.5), view.left, ("left", "center")),
        ((0.98, 0.5), view.right, ("right", "center")),
        ((0.5, 0.98), view.top, ("center", "top")),
        ((0.5, 0.02), view.bottom, ("center", "bottom")),
    ):
        axes.text(
            x,
            y,
            letter,
            transform=axes.transAxes,
            ha=align[0],
            va=align[1],
            color="white",
            fontsize=11,
            fontweight="bold",
            path_effects=_OUTLINE,
        )


def _scale_bar(axes: Axes, field: tuple[float, float, float, float]) -> float:
    """A bar of a round length near the bottom-right corner; returns its length in mm."""
    left, right, top, bottom = field
    length = scale_bar_length_mm(right - left)
    margin = 0.06 * (right - left)
    x1 = right - margin
    y = bottom - 0.08 * (bottom - top)
    axes.plot([x1 - length, x1], [y, y], color=SCALE_BAR_COLOUR, linewidth=3, solid_capstyle="butt")
    axes.text(
        x1 - length / 2,
        y - 0.02 * (bottom - top),
        f"{length:g} mm",
        ha="center",
        va="bottom",
        color=SCALE_BAR_COLOUR,
        fontsize=8,
        path_effects=_OUTLINE,
    )
    return length


def _box_px(axes: Axes, height_px: int) -> tuple[float, float, float, float]:
    """The axes' image area in PNG pixels (origin top-left)."""
    box = axes.get_window_extent()
    return (float(box.x0), float(height_px - box.y1), float(box.x1), float(height_px - box.y0))
