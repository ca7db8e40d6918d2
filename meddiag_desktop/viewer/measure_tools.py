"""Ruler and region-of-interest tools for the plane views.

Display coordinates are millimetres (see :mod:`meddiag_desktop.viewer.plane_geometry`), so a
line's length on screen is its in-plane length in the patient, exact for any pixel spacing.
An ROI's statistics are over the pixels whose centres lie inside the drawn shape on the slice it
was drawn on; its area is that pixel count times the pixel area (the area the mean and SD are
over, not the geometric area of the drawn shape, which differs by under a pixel's worth along the
outline). SD is the sample standard deviation (n - 1), as ImageJ reports it.

Measurements stay until removed (right-click > Remove, :meth:`delete_last`, :meth:`clear`);
each belongs to the view and slice it was drawn on, and :meth:`sync` shows only those of the
slice a view is on. Handles move and resize them; their labels follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.plane_geometry import PlaneMapping
from meddiag_desktop.viewer.view_tool import PlaneViewLike

_COLOUR = "#ffd54f"
_HOVER_COLOUR = "#ffffff"
_LABEL_FILL = (0, 0, 0, 180)
_LABEL_POINT_SIZE = 10
_Z_ABOVE_IMAGES = 20


# ---- Qt-free measurement ----------------------------------------------------------------------
class RoiShape(StrEnum):
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the scan's values under an ROI on one slice (HU for CT)."""

    mean: float
    sd: float  # sample standard deviation (n - 1); 0 for a single pixel
    minimum: float
    maximum: float
    pixel_count: int
    area_mm2: float  # pixel_count x pixel area


def roi_statistics(
    slice_values: np.ndarray, mask: np.ndarray, *, pixel_area_mm2: float
) -> RoiStats:
    """Mean, SD, range, pixel count and area of ``slice_values`` where ``mask`` is set."""
    if slice_values.shape != mask.shape:
        raise ValueError(f"mask {mask.shape} does not fit the slice {slice_values.shape}")
    values = slice_values[mask].astype(np.float64)
    count = int(values.size)
    if count == 0:
        return RoiStats(math.nan, math.nan, math.nan, math.nan, 0, 0.0)
    return RoiStats(
        mean=float(values.mean()),
        sd=float(values.std(ddof=1)) if count > 1 else 0.0,
        minimum=float(values.min()),
        maximum=float(values.max()),
        pixel_count=count,
        area_mm2=count * pixel_area_mm2,
    )


def shape_mask(
    mapping: PlaneMapping, shape: RoiShape, rect_mm: tuple[float, float, float, float]
) -> np.ndarray:
    """Displayed pixels whose centres lie inside a rectangle or the ellipse inscribed in it.

    ``rect_mm`` is ``(x, y, width, height)`` in display millimetres.
    """
    x, y, width, height = rect_mm
    mask = np.zeros((mapping.rows, mapping.columns), dtype=bool)
    if width <= 0 or height <= 0:
        return mask
    pw, ph = mapping.pixel_width_mm, mapping.pixel_height_mm
    # pixels whose centres (c + 0.5) * pw can fall in [x, x + width]
    c_lo, c_hi = (
        max(0, math.ceil(x / pw - 0.5)),
        min(mapping.columns - 1, math.floor((x + width) / pw - 0.5)),
    )
    r_lo, r_hi = (
        max(0, math.ceil(y / ph - 0.5)),
        min(mapping.rows - 1, math.floor((y + height) / ph - 0.5)),
    )
    if c_lo > c_hi or r_lo > r_hi:
        return mask
    if shape is RoiShape.RECTANGLE:
        mask[r_lo : r_hi + 1, c_lo : c_hi + 1] = True
        return mask
    rows, columns = np.mgrid[r_lo : r_hi + 1, c_lo : c_hi + 1]
    u = ((columns + 0.5) * pw - (x + width / 2)) / (width / 2)
    v = ((rows + 0.5) * ph - (y + height / 2)) / (height / 2)
    mask[r_lo : r_hi + 1, c_lo : c_hi + 1] = u * u + v * v <= 1.0
    return mask


def ruler_text(length_mm: float) -> str:
    return f"{length_mm:.1f} mm"


def roi_text(stats: RoiStats, unit: str) -> str:
    suffix = f" {unit}" if unit else ""
    if stats.pixel_count == 0:
        return "no pixels inside"
    return (
        f"mean {stats.mean:.1f}{suffix}  SD {stats.sd:.1f}\n"
        f"area {stats.area_mm2:.1f} mm²  ({stats.pixel_count} px)"
    )


def value_unit(volume: Volume) -> str:
    """The unit of the scan's values where it is known (CT: Hounsfield units)."""
    return "HU" if volume.modality.upper() == "CT" else ""


# ---- the view items ---------------------------------------------------------------------------
def _label_item() -> pg.TextItem:
    text = pg.TextItem(color=_COLOUR, fill=pg.mkBrush(*_LABEL_FILL), anchor=(0, 0))
    font = QFont()
    font.setPointSize(_LABEL_POINT_SIZE)
    text.setFont(font)
    text.setZValue(_Z_ABOVE_IMAGES + 1)
    return text


def _style(roi: pg.ROI) -> None:
    roi.setPen(pg.mkPen(_COLOUR, width=2))
    roi.hoverPen = pg.mkPen(_HOVER_COLOUR, width=2)
    roi.setZValue(_Z_ABOVE_IMAGES)


class Measurement:
    """One ruler or ROI in one view, on the slice it was drawn on."""

    def __init__(self, view: PlaneViewLike, mapping: PlaneMapping, slice_index: int) -> None:
        self.view_box = view.view_box
        self.mapping = mapping
        self.slice_index = slice_index
        self.label = _label_item()
        self.roi: pg.ROI  # set by subclasses
        self._label_at = (0.0, 0.0, 0.0)  # x mm, y mm, offset in screen pixels
        # labels are kept inside the visible area: follow zoom, pan and resize
        self.view_box.sigRangeChanged.connect(self.place_label)
        self.view_box.sigResized.connect(self.place_label)

    @property
    def text(self) -> str:
        return self.label.toPlainText()

    def items(self) -> tuple[pg.GraphicsObject, ...]:
        return (self.roi, self.label)

    def set_visible(self, visible: bool) -> None:
        for item in self.items():
            item.setVisible(visible)

    def remove(self) -> None:
        self.view_box.sigRangeChanged.disconnect(self.place_label)
        self.view_box.sigResized.disconnect(self.place_label)
        for item in self.items():
            if item.scene() is not None:
                self.view_box.removeItem(item)

    def update_label(self) -> None:
        raise NotImplementedError

    def set_label_position(self, x_mm: float, y_mm: float, offset_px: float = 0.0) -> None:
        self._label_at = (x_mm, y_mm, offset_px)
        self.place_label()

    def place_label(self, *_signal_args: object) -> None:
        """Put the label's top-left corner near its point, moved inside the visible area so a
        measurement at the edge of the view keeps a readable label."""
        x_mm, y_mm, offset_px = self._label_at
        pixel = self.view_box.viewPixelSize()  # millimetres per screen pixel
        visible = self.view_box.viewRect()
        if not all(math.isfinite(v) and v > 0 for v in pixel) or visible.isEmpty():
            self.label.setPos(x_mm, y_mm)
            return
        size = self.label.textItem.boundingRect()
        width_mm, height_mm = size.width() * pixel[0], size.height() * pixel[1]
        x = x_mm + offset_px * pixel[0]
        y = y_mm + offset_px * pixel[1]
        x = max(visible.left(), min(x, visible.right() - width_mm))
        y = max(visible.top(), min(y, visible.bottom() - height_mm))
        self.label.setPos(x, y)


class Ruler(Measurement):
    def __init__(
        self,
        view: PlaneViewLike,
        mapping: PlaneMapping,
        slice_index: int,
        start_mm: tuple[float, float],
    ) -> None:
        super().__init__(view, mapping, slice_index)
        self.roi = pg.LineSegmentROI([start_mm, start_mm], removable=True)
        _style(self.roi)

    @property
    def endpoints_mm(self) -> tuple[tuple[float, float], tuple[float, float]]:
        first, second = (self.roi.mapToParent(h.pos()) for h in self.roi.endpoints)
        return (first.x(), first.y()), (second.x(), second.y())

    @property
    def length_mm(self) -> float:
        (x0, y0), (x1, y1) = self.endpoints_mm
        return math.hypot(x1 - x0, y1 - y0)

    def move_end(self, end_mm: tuple[float, float]) -> None:
        self.roi.movePoint(self.roi.endpoints[1], end_mm, finish=False)

    def update_label(self) -> None:
        (x0, y0), (x1, y1) = self.endpoints_mm
        self.label.setText(ruler_text(self.length_mm))
        # beside the lower end (screen y grows downward), clear of the line
        end = (x1, y1) if y1 >= y0 else (x0, y0)
        self.set_label_position(*end, offset_px=6.0)


class RegionOfInterest(Measurement):
    def __init__(
        self,
        view: PlaneViewLike,
        mapping: PlaneMapping,
        slice_index: int,
        volume: Volume,
        shape: RoiShape,
        start_mm: tuple[float, float],
    ) -> None:
        super().__init__(view, mapping, slice_index)
        self.shape = shape
        self.volume = volume
        self._unit = value_unit(volume)
        self.stats: RoiStats | None = None
        cls = pg.RectROI if shape is RoiShape.RECTANGLE else pg.EllipseROI
        self.roi = cls(start_mm, (1e-3, 1e-3), removable=True, rotatable=False, invertible=False)
        for handle in self.roi.getHandles():  # statistics assume an unrotated shape
            if handle.typ == "r":
                self.roi.removeHandle(handle)
        _style(self.roi)

    @property
    def rect_mm(self) -> tuple[float, float, float, float]:
        pos, size = self.roi.pos(), self.roi.size()
        return pos.x(), pos.y(), size.x(), size.y()

    def span(self, start_mm: tuple[float, float], end_mm: tuple[float, float]) -> None:
        x0, x1 = sorted((start_mm[0], end_mm[0]))
        y0, y1 = sorted((start_mm[1], end_mm[1]))
        self.roi.setPos((x0, y0), update=False, finish=False)
        self.roi.setSize((max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)), finish=False)

    def mask(self) -> np.ndarray:
        return shape_mask(self.mapping, self.shape, self.rect_mm)

    def update_label(self) -> None:
        values = self.mapping.extract(self.volume.array_zyx, self.slice_index)
        pixel_area = self.mapping.pixel_width_mm * self.mapping.pixel_height_mm
        self.stats = roi_statistics(values, self.mask(), pixel_area_mm2=pixel_area)
        self.label.setText(roi_text(self.stats, self._unit))
        x, y, _, height = self.rect_mm
        self.set_label_position(x, y + height)  # below the shape (screen y grows downward)


# ---- the tools --------------------------------------------------------------------------------
class _MeasureTool:
    """Keeps the measurements a tool drew; subclasses create them."""

    name = "measure"

    def __init__(self) -> None:
        self._measurements: list[Measurement] = []
        self._drawing: Measurement | None = None
        self._start_mm: tuple[float, float] = (0.0, 0.0)

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return tuple(self._measurements)

    def press(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        self._finish_drawing()
        mapping, volume = view.mapping, view.volume
        if mapping is None or volume is None:
            return
        self._start_mm = (x_mm, y_mm)
        measurement = self._create(view, mapping, volume, (x_mm, y_mm))
        for item in measurement.items():
            view.view_box.addItem(item, ignoreBounds=True)
        measurement.roi.sigRegionChanged.connect(lambda _roi, m=measurement: m.update_label())
        measurement.roi.sigRemoveRequested.connect(lambda _roi, m=measurement: self.remove(m))
        self._measurements.append(measurement)
        self._drawing = measurement
        measurement.update_label()

    def drag(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        if self._drawing is not None:
            self._extend(self._drawing, (x_mm, y_mm))

    def release(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        drawing = self._drawing
        if drawing is None:
            return
        self._extend(drawing, (x_mm, y_mm))
        self._finish_drawing()

    def deactivate(self) -> None:
        self._finish_drawing()

    def remove(self, measurement: Measurement) -> None:
        if measurement in self._measurements:
            self._measurements.remove(measurement)
            measurement.remove()
        if measurement is self._drawing:
            self._drawing = None

    def delete_last(self) -> bool:
        """Remove the newest measurement (the Delete key); False when there is none."""
        if not self._measurements:
            return False
        self.remove(self._measurements[-1])
        return True

    def clear(self) -> None:
        """Remove every measurement (a new scan is shown)."""
        for measurement in list(self._measurements):
            self.remove(measurement)

    def sync(self, view: PlaneViewLike) -> None:
        """Show the view's measurements of the slice it shows now and hide the others."""
        for measurement in self._measurements:
            if measurement.view_box is view.view_box:
                measurement.set_visible(measurement.slice_index == view.slice_index)

    def _finish_drawing(self) -> None:
        drawing, self._drawing = self._drawing, None
        if drawing is not None and self._too_small(drawing):
            self.remove(drawing)  # a click, not a measurement

    def _create(
        self,
        view: PlaneViewLike,
        mapping: PlaneMapping,
        volume: Volume,
        start_mm: tuple[float, float],
    ) -> Measurement:
        raise NotImplementedError

    def _extend(self, measurement: Measurement, end_mm: tuple[float, float]) -> None:
        raise NotImplementedError

    def _too_small(self, measurement: Measurement) -> bool:
        raise NotImplementedError


class RulerTool(_MeasureTool):
    """Drag to measure a distance in millimetres; several rulers can stay on screen."""

    name = "ruler"

    @property
    def rulers(self) -> tuple[Ruler, ...]:
        return tuple(m for m in self._measurements if isinstance(m, Ruler))

    def _create(
        self,
        view: PlaneViewLike,
        mapping: PlaneMapping,
        volume: Volume,
        start_mm: tuple[float, float],
    ) -> Measurement:
        return Ruler(view, mapping, view.slice_index, start_mm)

    def _extend(self, measurement: Measurement, end_mm: tuple[float, float]) -> None:
        assert isinstance(measurement, Ruler)
        measurement.move_end(end_mm)

    def _too_small(self, measurement: Measurement) -> bool:
        assert isinstance(measurement, Ruler)
        mapping = measurement.mapping
        return measurement.length_mm < min(mapping.pixel_width_mm, mapping.pixel_height_mm)


class RoiTool(_MeasureTool):
    """Drag a rectangle or an ellipse; its label shows mean, SD, area and pixel count."""

    def __init__(self, shape: RoiShape | str = RoiShape.RECTANGLE) -> None:
        super().__init__()
        self.shape = RoiShape(shape)
        self.name = f"{self.shape.value} roi"

    @property
    def rois(self) -> tuple[RegionOfInterest, ...]:
        return tuple(m for m in self._measurements if isinstance(m, RegionOfInterest))

    def _create(
        self,
        view: PlaneViewLike,
        mapping: PlaneMapping,
        volume: Volume,
        start_mm: tuple[float, float],
    ) -> Measurement:
        return RegionOfInterest(view, mapping, view.slice_index, volume, self.shape, start_mm)

    def _extend(self, measurement: Measurement, end_mm: tuple[float, float]) -> None:
        assert isinstance(measurement, RegionOfInterest)
        measurement.span(self._start_mm, end_mm)

    def _too_small(self, measurement: Measurement) -> bool:
        assert isinstance(measurement, RegionOfInterest)
        _, _, width, height = measurement.rect_mm
        mapping = measurement.mapping
        return width < mapping.pixel_width_mm or height < mapping.pixel_height_mm
