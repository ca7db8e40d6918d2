"""Window/level choice for greyscale display, kept free of Qt so it is easy to test.

CT values are calibrated (Hounsfield units), so fixed, named windows mean the same thing on every
scanner; MR values are arbitrary, so the window follows the data (1st-99th percentile).
Files without a modality (NIfTI, MHA) count as CT when their air sits at about -1000 HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Volume

_SAMPLE_VOXELS = 2_000_000  # percentiles of a subsample are close enough and much faster


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


CT_PRESETS: tuple[WindowLevel, ...] = (
    WindowLevel(400, 40, "Soft tissue"),
    WindowLevel(1500, -600, "Lung"),
    WindowLevel(80, 40, "Brain"),
    WindowLevel(2000, 500, "Bone"),
)


def percentile_window(volume: Volume, low_pct: float = 1.0, high_pct: float = 99.0) -> WindowLevel:
    """The window spanning the given percentiles of the voxel values."""
    low, high = _percentiles(volume, (low_pct, high_pct))
    width = max(high - low, 1e-6)
    return WindowLevel(round(width, 3), round(low + width / 2, 3), "Auto (1-99 %)")


def looks_like_ct(volume: Volume) -> bool:
    """CT by its modality or, for files that do not say (NIfTI, MHA), by air at about -1000 HU."""
    modality = volume.modality.upper()
    if modality:
        return modality == "CT"
    if not np.issubdtype(volume.array_zyx.dtype, np.integer):
        return False
    low, high = _percentiles(volume, (0.5, 99.9))
    return -1100 <= low <= -900 and high < 4000


def presets_for(volume: Volume) -> tuple[WindowLevel, ...]:
    """The windows worth offering, the default first: soft tissue for CT, else 1-99 %."""
    auto = percentile_window(volume)
    if looks_like_ct(volume):
        return (*CT_PRESETS, auto)
    return (auto,)


def _percentiles(volume: Volume, pcts: tuple[float, float]) -> tuple[float, float]:
    flat = volume.array_zyx.reshape(-1)
    step = max(1, flat.size // _SAMPLE_VOXELS)
    low, high = np.percentile(flat[::step], pcts)
    return float(low), float(high)
