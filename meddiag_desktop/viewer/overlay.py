"""The label-map overlay drawn over each plane view, and the box around the selected finding.

A label map (one small integer per voxel, 0 = background) is shown as a second ``ImageItem``
above the grey image. Colours come from a 256-entry RGBA table that pyqtgraph hands to Qt as an
indexed 8-bit image, so a slice costs no RGBA or float copy; opacity is the item's own opacity
(applied while painting). Outline mode draws the ring of pixels just outside each region,
computed per displayed slice with a cheap 2-D dilation and difference.

Rejected findings are drawn apart from the others: their voxels are taken out of the coloured
image and drawn in a third item as a faint grey fill inside a dotted grey ring, whatever the
fill mode, so a lesion the reader threw out never looks like one they kept; the style's
``rejected_visible`` hides them instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from meddiag_desktop.viewer.plane_geometry import PlaneMapping

Colour = tuple[int, int, int]
LABEL_COUNT = 256  # labels 0..255; 0 is always transparent
# for labels the caller gave no colour: distinct, saturated, readable on grey
_FALLBACK_COLOURS: tuple[Colour, ...] = (
    (255, 80, 80), (80, 200, 255), (255, 200, 60), (120, 230, 120),
    (220, 120, 255), (255, 140, 60), (60, 230, 210), (255, 110, 190),
)  # fmt: skip
_OVERLAY_Z = 10
_HIGHLIGHT_Z = 20
_HIGHLIGHT_COLOUR = "#ffffff"
_HIGHLIGHT_MARGIN_VOXELS = 2
_REJECTED_Z = 11
_REJECTED_FILL = (150, 154, 160, 60)  # faint grey: the lesion is still findable under it
_REJECTED_RING = (205, 209, 214, 255)
_DASH_PIXELS = 2  # ring pixels on, then off, along rows and columns: a dotted outline


class OverlayMode(StrEnum):
    FILLED = "filled"
    OUTLINE = "outline"


@dataclass(frozen=True)
class OverlayStyle:
    """How the label map is drawn in every view."""

    opacity: float = 0.5
    mode: OverlayMode = OverlayMode.FILLED
    visible: bool = True
    rejected_visible: bool = True  # rejected findings: grey and dotted, or not drawn at all


@dataclass(frozen=True)
class RegionBox:
    """A voxel box ``[start, stop)`` per array axis (z, y, x): the selected finding."""

    start_zyx: tuple[int, int, int]
    stop_zyx: tuple[int, int, int]

    @classmethod
    def of(cls, region: object, shape_zyx: tuple[int, int, int]) -> RegionBox | None:
        """The box around ``region``, which may be:

        - a :class:`~meddiag_desktop.domain.Finding` (anything with ``bbox_index_xyz``), or its
          ``bbox_index_xyz`` itself: min x, y, z then max x, y, z, inclusive;
        - a tuple of three slices (as ``scipy.ndimage.find_objects`` returns);
        - a boolean mask or label array of the volume's shape (its nonzero voxels);
        - voxel indices, shape (N, 3) in (z, y, x) order, or one (z, y, x) voxel.

        None (or an empty region) gives None, which clears the highlight.
        """
        region = getattr(region, "bbox_index_xyz", region)
        if region is None:
            return None
        if (
            isinstance(region, tuple)
            and len(region) == 3
            and all(isinstance(s, slice) for s in region)
        ):
            bounds = [s.indices(n)[:2] for s, n in zip(region, shape_zyx, strict=True)]
            return cls._clamped([b[0] for b in bounds], [b[1] for b in bounds], shape_zyx)
        array = np.asarray(region)
        if array.shape == (6,):
            x0, y0, z0, x1, y1, z1 = (int(v) for v in array)
            return cls._clamped([z0, y0, x0], [z1 + 1, y1 + 1, x1 + 1], shape_zyx)
        if array.ndim == 3 and array.shape == shape_zyx:
            points = np.argwhere(array)
        else:
            points = array.reshape(-1, 3)
        if points.size == 0:
            return None
        return cls._clamped(list(points.min(axis=0)), list(points.max(axis=0) + 1), shape_zyx)

    @classmethod
    def _clamped(cls, start: list, stop: list, shape_zyx: tuple[int, int, int]) -> RegionBox | None:
        lo = [int(np.clip(v, 0, n)) for v, n in zip(start, shape_zyx, strict=True)]
        hi = [int(np.clip(v, 0, n)) for v, n in zip(stop, shape_zyx, strict=True)]
        if any(b <= a for a, b in zip(lo, hi, strict=True)):
            return None
        return cls((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))

    @property
    def centre_zyx(self) -> tuple[int, int, int]:
        z, y, x = ((a + b - 1) // 2 for a, b in zip(self.start_zyx, self.stop_zyx, strict=True))
        return z, y, x

    def displayed(self, mapping: PlaneMapping, slice_index: int) -> QRectF | None:
        """The box's rectangle in display millimetres on ``slice_index``; None off the box."""
        corners = [
            mapping.display_of(self.start_zyx),
            mapping.display_of(tuple(v - 1 for v in self.stop_zyx)),  # type: ignore[arg-type]
        ]
        slices = sorted(c[0] for c in corners)
        if not slices[0] <= slice_index <= slices[1]:
            return None
        rows = sorted(c[1] for c in corners)
        columns = sorted(c[2] for c in corners)
        margin = _HIGHLIGHT_MARGIN_VOXELS
        left = (columns[0] - margin) * mapping.pixel_width_mm
        top = (rows[0] - margin) * mapping.pixel_height_mm
        right = (columns[1] + 1 + margin) * mapping.pixel_width_mm
        bottom = (rows[1] + 1 + margin) * mapping.pixel_height_mm
        return QRectF(left, top, right - left, bottom - top)


def parse_colour(colour: Colour | str | QColor) -> Colour:
    """``(r, g, b)``, ``"#ff5050"`` (as model cards write them) or a QColor, as an RGB tuple."""
    if isinstance(colour, str):
        parsed = QColor(colour)
        if not parsed.isValid():
            raise ValueError(f"not a colour: {colour!r}")
        return parsed.red(), parsed.green(), parsed.blue()
    if isinstance(colour, QColor):
        return colour.red(), colour.green(), colour.blue()
    red, green, blue = (int(c) for c in colour)
    if not all(0 <= c <= 255 for c in (red, green, blue)):
        raise ValueError(f"colour components must be 0-255, got {colour!r}")
    return red, green, blue


def label_lut(colours: Mapping[int, Colour | str]) -> np.ndarray:
    """A (256, 4) uint8 RGBA table: label 0 transparent, the given colours opaque.

    Labels without a colour get one from a fixed palette, so nothing painted is invisible.
    """
    lut = np.zeros((LABEL_COUNT, 4), dtype=np.uint8)
    for label in range(1, LABEL_COUNT):
        lut[label, :3] = _FALLBACK_COLOURS[(label - 1) % len(_FALLBACK_COLOURS)]
        lut[label, 3] = 255
    for label, colour in colours.items():
        if not 0 < int(label) < LABEL_COUNT:
            raise ValueError(f"label {label} is outside 1..{LABEL_COUNT - 1}")
        lut[int(label), :3] = parse_colour(colour)
    return lut


def check_labels(labels_zyx: np.ndarray, shape_zyx: tuple[int, int, int]) -> None:
    """Raise ValueError unless ``labels_zyx`` can be drawn over a volume of ``shape_zyx``."""
    if labels_zyx.shape != shape_zyx:
        raise ValueError(f"label map shape {labels_zyx.shape} differs from the scan {shape_zyx}")
    if labels_zyx.dtype.kind not in "biu":
        raise ValueError(f"a label map holds integers, not {labels_zyx.dtype}")
    if labels_zyx.dtype.itemsize > 1 and labels_zyx.size:
        low, high = int(labels_zyx.min()), int(labels_zyx.max())
        if low < 0 or high >= LABEL_COUNT:
            raise ValueError(f"labels must be 0..{LABEL_COUNT - 1}, found {low}..{high}")


def as_uint8(plane: np.ndarray) -> np.ndarray:
    """A slice of labels as uint8 (a view when it already is; a small copy otherwise)."""
    return plane if plane.dtype == np.uint8 else plane.astype(np.uint8)


def outline(labels: np.ndarray) -> np.ndarray:
    """The ring of pixels just outside each region, in its label (3x3 dilation minus regions).

    Drawn outside, the outline never hides the region's own pixels, which matters for lesions a
    few voxels across. Two separable 3-tap maxima make the dilation; where regions of two labels
    nearly touch, the higher label wins.
    """
    tall = labels.copy()
    np.maximum(tall[1:], labels[:-1], out=tall[1:])
    np.maximum(tall[:-1], labels[1:], out=tall[:-1])
    grown = tall.copy()
    np.maximum(grown[:, 1:], tall[:, :-1], out=grown[:, 1:])
    np.maximum(grown[:, :-1], tall[:, 1:], out=grown[:, :-1])
    grown[labels != 0] = 0
    return grown


def rejected_lut() -> np.ndarray:
    """The (256, 4) RGBA table of the rejected-findings image: 1 = fill, 2 = dotted ring."""
    lut = np.zeros((LABEL_COUNT, 4), dtype=np.uint8)
    lut[1] = _REJECTED_FILL
    lut[2] = _REJECTED_RING
    return lut


def rejected_image(dimmed: np.ndarray, origin_rc: tuple[int, int]) -> np.ndarray:
    """The uint8 image of rejected pixels ``dimmed`` (bool): 1 inside, 2 on a dotted ring just
    outside. ``origin_rc``, the crop's place in the slice, keeps the dots still while scrolling."""
    ring = outline(dimmed.astype(np.uint8)) != 0
    rows, columns = np.indices(dimmed.shape)
    dotted = ((rows + origin_rc[0]) // _DASH_PIXELS + (columns + origin_rc[1]) // _DASH_PIXELS) % 2
    image = dimmed.astype(np.uint8)
    image[ring & (dotted == 0)] = 2
    return image


def _nonzero_span(labels: np.ndarray, pad: int) -> tuple[slice, slice]:
    """Row and column slices around the nonzero pixels, widened by ``pad`` within the image."""
    rows = np.flatnonzero(labels.any(axis=1))
    columns = np.flatnonzero(labels.any(axis=0))
    height, width = labels.shape
    return (
        slice(max(int(rows[0]) - pad, 0), min(int(rows[-1]) + 1 + pad, height)),
        slice(max(int(columns[0]) - pad, 0), min(int(columns[-1]) + 1 + pad, width)),
    )


class OverlayLayer:
    """The label-map image and the highlight box of one plane view."""

    def __init__(self, view_box: pg.ViewBox) -> None:
        self.image_item = pg.ImageItem()
        self.image_item.setZValue(_OVERLAY_Z)
        view_box.addItem(self.image_item, ignoreBounds=True)
        self.highlight_item = QGraphicsRectItem()
        pen = QPen(QColor(_HIGHLIGHT_COLOUR), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)  # the same thickness at every zoom
        self.highlight_item.setPen(pen)
        self.highlight_item.setZValue(_HIGHLIGHT_Z)
        self.highlight_item.hide()
        view_box.addItem(self.highlight_item, ignoreBounds=True)
        self.rejected_item = pg.ImageItem()
        self.rejected_item.setZValue(_REJECTED_Z)
        view_box.addItem(self.rejected_item, ignoreBounds=True)
        self._lut = label_lut({})
        self.style = OverlayStyle()
        self.crop_origin = (0, 0)  # displayed (row, column) of the drawn image's first pixel
        self.rejected_origin = (0, 0)

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = lut
        if self.image_item.image is not None:
            self.image_item.setLookupTable(lut)

    def set_style(self, style: OverlayStyle) -> None:
        self.style = style
        self.image_item.setOpacity(style.opacity)
        self.image_item.setVisible(style.visible)
        self.rejected_item.setVisible(style.visible and style.rejected_visible)

    def show_labels(
        self,
        labels: np.ndarray | None,
        pixel_mm: tuple[float, float],
        rejected: np.ndarray | None = None,
    ) -> None:
        """Draw one displayed slice of labels (None clears it); pixels are ``pixel_mm`` wide/high.

        ``rejected`` (bool, the slice's shape): pixels of rejected findings, drawn grey and
        dotted instead of in their label's colour. Only the box around the slice's labelled
        pixels is handed to Qt (lesions are small, and drawing a mostly transparent 512 x 512
        image costs milliseconds per frame); a slice without labels draws nothing at all.
        """
        self.crop_origin = (0, 0)
        if labels is not None and rejected is not None:
            rejected = rejected & (labels != 0)  # an erased voxel is not drawn as rejected
            if rejected.any():
                labels = np.where(rejected, 0, labels)
            else:
                rejected = None
        self._show_rejected(rejected if labels is not None else None, pixel_mm)
        if labels is None or not labels.any():
            self.image_item.clear()
            return
        outlined = self.style.mode is OverlayMode.OUTLINE
        rows, columns = _nonzero_span(labels, pad=1 if outlined else 0)
        shown = as_uint8(labels[rows, columns])
        if outlined:
            shown = outline(shown)
        # levels (0, 256) make pyqtgraph's label -> colour mapping the identity
        self.image_item.setImage(shown, levels=(0, LABEL_COUNT), lut=self._lut)
        width_mm, height_mm = pixel_mm
        self.crop_origin = (rows.start, columns.start)
        self.image_item.setRect(
            QRectF(
                columns.start * width_mm,
                rows.start * height_mm,
                shown.shape[1] * width_mm,
                shown.shape[0] * height_mm,
            )
        )

    def _show_rejected(self, rejected: np.ndarray | None, pixel_mm: tuple[float, float]) -> None:
        self.rejected_origin = (0, 0)
        if rejected is None:
            self.rejected_item.clear()
            return
        rows, columns = _nonzero_span(rejected, pad=1)
        self.rejected_origin = (rows.start, columns.start)
        shown = rejected_image(rejected[rows, columns], self.rejected_origin)
        self.rejected_item.setImage(shown, levels=(0, LABEL_COUNT), lut=rejected_lut())
        width_mm, height_mm = pixel_mm
        self.rejected_item.setRect(
            QRectF(
                columns.start * width_mm,
                rows.start * height_mm,
                shown.shape[1] * width_mm,
                shown.shape[0] * height_mm,
            )
        )

    def rejected_at(self, row: int, column: int) -> int:
        """What the rejected image draws at displayed pixel (row, column): 0 nothing, 1 fill,
        2 ring."""
        image = self.rejected_item.image
        if image is None:
            return 0
        r, c = row - self.rejected_origin[0], column - self.rejected_origin[1]
        if 0 <= r < image.shape[0] and 0 <= c < image.shape[1]:
            return int(image[r, c])
        return 0

    def label_at(self, row: int, column: int) -> int:
        """The label drawn at displayed pixel (row, column) of the slice (0 where none)."""
        image = self.image_item.image
        if image is None:
            return 0
        r, c = row - self.crop_origin[0], column - self.crop_origin[1]
        if 0 <= r < image.shape[0] and 0 <= c < image.shape[1]:
            return int(image[r, c])
        return 0

    def show_highlight(self, rect: QRectF | None) -> None:
        if rect is None:
            self.highlight_item.hide()
        else:
            self.highlight_item.setRect(rect)
            self.highlight_item.show()
