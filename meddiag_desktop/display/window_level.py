"""Window/level choice for greyscale display, kept free of Qt so it is easy to test.

CT values are calibrated (Hounsfield units), so fixed, named windows mean the same thing on every
scanner; MR values are arbitrary, so the window follows the data (percentiles of the voxels).
Files without a modality (NIfTI, MHA) count as CT when their air sits at about -1000 HU.

:class:`SliceWindower` turns a slice into 8-bit grey through a lookup table for 8- and 16-bit
data (one table lookup per pixel, no float copy), so paging through a CT stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Volume

_SAMPLE_VOXELS = 2_000_000  # percentiles of a subsample are close enough and much faster
DRAG_PIXELS_PER_WIDTH = 256  # a right-drag this long changes the width by its own size


@dataclass(frozen=True)
class WindowLevel:
    """A display window in scanner units: ``width`` around the centre ``level``."""

    width: float
    level: float
    name: str = ""

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2

    def label(self) -> str:
        return f"W {self.width:g}  L {self.level:g}"


# Standard CT windows (width, level) in HU, as listed by Radiopaedia's "Windowing (CT)" article;
# soft tissue stays first: the default wherever the scan does not name its region.
CT_PRESETS: tuple[WindowLevel, ...] = (
    WindowLevel(400, 40, "Soft tissue"),
    WindowLevel(80, 40, "Brain"),
    WindowLevel(200, 75, "Subdural"),
    WindowLevel(40, 40, "Stroke"),
    WindowLevel(1500, -600, "Lung"),
    WindowLevel(350, 50, "Mediastinum"),
    WindowLevel(400, 50, "Abdomen"),
    WindowLevel(150, 30, "Liver"),
    WindowLevel(1800, 400, "Bone"),
)
# (low, high) percentiles offered for uncalibrated data (MR, PET, unknown); the first is the default
PERCENTILE_CHOICES: tuple[tuple[float, float], ...] = ((1.0, 99.0), (0.5, 99.5), (5.0, 95.0))


def percentile_window(volume: Volume, low_pct: float = 1.0, high_pct: float = 99.0) -> WindowLevel:
    """The window spanning the given percentiles of the voxel values."""
    low, high = _percentiles(volume, (low_pct, high_pct))
    return _window_between(low, high, low_pct, high_pct)


def percentile_windows(volume: Volume) -> tuple[WindowLevel, ...]:
    """One window per entry of :data:`PERCENTILE_CHOICES`, from a single subsample."""
    pcts = tuple(p for pair in PERCENTILE_CHOICES for p in pair)
    values = _percentiles(volume, pcts)
    return tuple(
        _window_between(values[2 * i], values[2 * i + 1], low_pct, high_pct)
        for i, (low_pct, high_pct) in enumerate(PERCENTILE_CHOICES)
    )


def value_range(volume: Volume) -> tuple[float, float]:
    """(min, max) of a subsample of the voxels: scales right-drag and bounds the width."""
    low, high = _percentiles(volume, (0.0, 100.0))
    return low, high


def looks_like_ct(volume: Volume) -> bool:
    """CT by its modality or, for files that do not say (NIfTI, MHA), by air at about -1000 HU."""
    modality = volume.modality.upper()
    if modality:
        return modality == "CT"
    if not np.issubdtype(volume.array_zyx.dtype, np.integer):
        return False
    low, high = _percentiles(volume, (0.5, 99.9))
    return -1100 <= low <= -900 and high < 4000


# A CT whose descriptions name one of these regions opens in the window it is read in first
# (as reading-room hanging protocols do): a head CT in soft tissue hides what it is taken for.
ANATOMY_WINDOWS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"HEAD", "BRAIN", "CRANIUM", "CRANIAL", "SKULL", "NEURO"}), "Brain"),
    (frozenset({"CHEST", "THORAX", "THORACIC", "LUNG", "LUNGS", "PULMONARY"}), "Lung"),
)


def presets_for(volume: Volume) -> tuple[WindowLevel, ...]:
    """The windows worth offering, the default first: for CT the window of the region its
    descriptions name (brain, lung), else soft tissue; for other scans 1-99 %."""
    if looks_like_ct(volume):
        first = ct_default_window(volume)
        ordered = sorted(CT_PRESETS, key=lambda preset: preset.name != first)  # stable
        return (*ordered, percentile_window(volume))
    return percentile_windows(volume)


def ct_default_window(volume: Volume) -> str:
    """The name of the CT preset to open with; soft tissue when no one region is named."""
    metadata = volume.metadata
    return _region_preset(f"{metadata.study_description} {metadata.series_description}")


def key_image_window(volume: Volume) -> WindowLevel:
    """The window a report's key images are drawn in: for CT the preset of the one region that
    BodyPartExamined or the descriptions name (lung for a chest CT), else soft tissue; 1-99 %
    for uncalibrated scans (MR, PET). Unlike the viewer's opening window, BodyPartExamined
    counts here: a printed image cannot be re-windowed, so every hint the scan gives is used."""
    if not looks_like_ct(volume):
        return percentile_window(volume)
    metadata = volume.metadata
    name = _region_preset(
        f"{metadata.body_part_examined} {metadata.study_description} "
        f"{metadata.series_description}"
    )
    return next(preset for preset in CT_PRESETS if preset.name == name)


def _region_preset(text: str) -> str:
    """The preset for the one region ``text`` names; soft tissue for none or several."""
    words = set(re.findall(r"[A-Z]+", text.upper()))
    named = {preset for regions, preset in ANATOMY_WINDOWS if words & regions}
    return named.pop() if len(named) == 1 else CT_PRESETS[0].name


def dragged_window(
    start: WindowLevel, dx_px: float, dy_px: float, data_span: float, min_width: float = 1.0
) -> WindowLevel:
    """The window after a right-drag of ``(dx_px, dy_px)`` screen pixels from ``start``.

    Like most PACS: dragging right widens the window (less contrast), dragging down raises the
    level (the image gets darker). The step per pixel is proportional to the starting width, so
    narrow brain windows are as easy to adjust as wide lung ones; a floor tied to the data's
    range keeps a very narrow window from getting stuck.
    """
    per_pixel = max(start.width, data_span * 0.01, min_width) / DRAG_PIXELS_PER_WIDTH
    width = max(min_width, start.width + dx_px * per_pixel)
    level = start.level + dy_px * per_pixel
    return WindowLevel(_tidy(width, min_width), _tidy(level, min_width), "Custom")


class SliceWindower:
    """Maps slices of one dtype to uint8 grey for a window, through a table where it can.

    8- and 16-bit integers (nearly all CT and MR) go through a 256- or 65,536-entry table indexed
    by the raw bits; anything else is scaled in float32.
    """

    def __init__(self, dtype: np.dtype, window: WindowLevel) -> None:
        self._dtype = np.dtype(dtype)
        self._window = window
        self._lut: np.ndarray | None = None
        self._lut_offset = 0
        if self._dtype.kind in "iu" and self._dtype.itemsize <= 2:
            info = np.iinfo(self._dtype)
            self._lut_offset = int(info.min)
            self._lut = self._table(window)

    @property
    def window(self) -> WindowLevel:
        return self._window

    def set_window(self, window: WindowLevel) -> None:
        self._window = window
        if self._lut is not None:
            self._lut = self._table(window)

    def to_uint8(self, plane: np.ndarray) -> np.ndarray:
        """``plane`` (any strides) windowed to a new contiguous uint8 array."""
        if plane.dtype != self._dtype:
            raise ValueError(f"slice dtype {plane.dtype} is not {self._dtype}")
        if self._lut is None:
            return _scaled(plane, self._window)
        if self._dtype.kind == "u":
            return np.take(self._lut, plane)  # np.take: twice as fast as lut[plane]
        # signed: the raw bits with the sign bit flipped count up from the minimum value
        unsigned = plane.view(np.dtype(f"u{self._dtype.itemsize}"))
        sign_bit = unsigned.dtype.type(1 << (8 * self._dtype.itemsize - 1))
        return np.take(self._lut, unsigned ^ sign_bit)

    def _table(self, window: WindowLevel) -> np.ndarray:
        values = np.arange(2 ** (8 * self._dtype.itemsize), dtype=np.float64) + self._lut_offset
        return _scaled(values, window)


def _scaled(values: np.ndarray, window: WindowLevel) -> np.ndarray:
    scale = np.float32(255.0 / max(window.width, 1e-12))
    shifted = values.astype(np.float32, copy=False) - np.float32(window.low)
    return np.clip(np.rint(shifted * scale), 0, 255).astype(np.uint8)


def _window_between(low: float, high: float, low_pct: float, high_pct: float) -> WindowLevel:
    width = max(high - low, 1e-6)
    name = f"Auto ({low_pct:g}-{high_pct:g} %)"
    return WindowLevel(round(width, 3), round(low + width / 2, 3), name)


def _tidy(value: float, min_width: float) -> float:
    """Whole numbers for integer data (CT, most MR); a few decimals for float data."""
    return float(round(value)) if min_width >= 1 else float(f"{value:.4g}")


def _percentiles(volume: Volume, pcts: tuple[float, ...]) -> tuple[float, ...]:
    flat = volume.array_zyx.reshape(-1)
    step = max(1, flat.size // _SAMPLE_VOXELS)
    values = np.percentile(flat[::step], pcts)
    return tuple(float(v) for v in values)
