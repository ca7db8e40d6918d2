"""The contract between a plane view and the mouse tools (ruler, ROI, brush, eraser).

A view forwards left-button press/drag/release to the active tool with positions in display
millimetres (see :mod:`meddiag_desktop.viewer.plane_geometry`); with no active tool the left
button moves the linked crosshair. Tools draw their items into the view's ``view_box`` (whose
coordinates are those millimetres) and convert positions to voxels through the view.
"""

from __future__ import annotations

from typing import Protocol

import pyqtgraph as pg

from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.plane_geometry import PlaneMapping, VoxelZYX


class PlaneViewLike(Protocol):
    """What a tool may use of a plane view."""

    @property
    def mapping(self) -> PlaneMapping | None: ...

    @property
    def slice_index(self) -> int: ...

    @property
    def volume(self) -> Volume | None: ...

    @property
    def view_box(self) -> pg.ViewBox: ...

    def voxel_at_mm(self, x_mm: float, y_mm: float) -> VoxelZYX | None: ...


class ViewTool(Protocol):
    """A left-button tool; the viewer activates one at a time for all three views."""

    name: str

    def press(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None: ...

    def drag(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None: ...

    def release(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None: ...

    def deactivate(self) -> None:
        """Called when another tool (or none) becomes active: drop temporary items."""
        ...
