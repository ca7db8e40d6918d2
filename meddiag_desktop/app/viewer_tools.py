"""The reading tools as window actions: navigate, ruler, ROIs, brush, eraser, undo and redo.

One instance of each tool lives for the window; the checked action decides which one gets the
left mouse button in all three views. The brush and eraser edit the label map the viewer shows
(through one :class:`MaskEditor`), so an edit is visible in every view at once.

Painting is only possible while the window is in Edit or Add-manual mode
(:meth:`ViewerTools.set_painting_allowed`): outside them the brush and eraser actions are
disabled and the tools hold no editor, so no stroke can change the label map. Before, a stroke
outside Edit mode changed the overlay while Save and Discard stayed disabled, and the overlay no
longer matched the stored finding. Keys come from :mod:`meddiag_desktop.viewer.keymap`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup

from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.brush_tool import BrushTool
from meddiag_desktop.viewer.keymap import bind_action, key_names
from meddiag_desktop.viewer.mask_editor import MaskEditor
from meddiag_desktop.viewer.measure_tools import RoiTool, RulerTool
from meddiag_desktop.viewer.mpr_viewer import MprViewer
from meddiag_desktop.viewer.plane_geometry import Plane
from meddiag_desktop.viewer.plane_view import PlaneView
from meddiag_desktop.viewer.view_tool import ViewTool


class ViewerTools(QObject):
    """Actions for the toolbar and menus; the viewer and the label map they act on."""

    mask_edited = Signal()
    tool_changed = Signal(str)  # the active tool's name, "" for navigate

    def __init__(self, viewer: MprViewer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._viewer = viewer
        self.editor: MaskEditor | None = None
        self._painting_allowed = False
        self.ruler = RulerTool()
        self.rectangle = RoiTool("rectangle")
        self.ellipse = RoiTool("ellipse")
        self.brush = BrushTool(mode="paint")
        self.eraser = BrushTool(mode="erase")
        for brush in (self.brush, self.eraser):
            brush.mask_edited.connect(self._edited)
            brush.stroke_finished.connect(lambda _changed: self._update_undo())  # one undo step
        for plane in Plane:  # a measurement shows on the slice it was drawn on only
            view = viewer.plane_view(plane)
            view.slice_changed.connect(lambda _index, v=view: self._sync_measurements(v))
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        self.navigate_action = self._tool_action("Navigate", "tool.navigate", None)
        self.ruler_action = self._tool_action("Ruler", "tool.ruler", self.ruler)
        self.rectangle_action = self._tool_action("Rectangle ROI", "tool.rectangle", self.rectangle)
        self.ellipse_action = self._tool_action("Ellipse ROI", "tool.ellipse", self.ellipse)
        self.brush_action = self._tool_action("Brush", "tool.brush", self.brush)
        self.eraser_action = self._tool_action("Eraser", "tool.eraser", self.eraser)
        self.navigate_action.setChecked(True)
        self.undo_action = self._action("Undo", "tool.undo", self.undo)
        self.redo_action = self._action("Redo", "tool.redo", self.redo)
        self.smaller_action = self._action(
            "Smaller brush", "tool.smaller_brush", lambda: self._resize(-1)
        )
        self.larger_action = self._action(
            "Larger brush", "tool.larger_brush", lambda: self._resize(1)
        )
        self.clear_action = self._action(
            "Clear measurements", "tool.clear_measurements", self.clear
        )
        self.set_labels(None, None)

    @property
    def tool_actions(self) -> list[QAction]:
        return self._group.actions()

    @property
    def edit_actions(self) -> list[QAction]:
        return [self.undo_action, self.redo_action, self.smaller_action, self.larger_action]

    def set_labels(self, labels_zyx: np.ndarray | None, volume: Volume | None) -> None:
        """The label map brush and eraser edit (the one the viewer shows), or None."""
        self.editor = MaskEditor(labels_zyx, volume) if labels_zyx is not None and volume else None
        self._hand_editor()

    @property
    def painting_allowed(self) -> bool:
        return self._painting_allowed

    def set_painting_allowed(self, allowed: bool) -> None:
        """Let the brush and eraser change the label map (Edit and Add-manual modes) or not."""
        self._painting_allowed = bool(allowed)
        self._hand_editor()

    def _hand_editor(self) -> None:
        """The brushes get the editor only while painting is allowed: a stroke without one is a
        no-op, whoever sends it (a key, a mouse, a test)."""
        can_paint = self.editor is not None and self._painting_allowed
        for brush in (self.brush, self.eraser):
            brush.set_editor(self.editor if can_paint else None)
        for action in (self.brush_action, self.eraser_action):
            action.setEnabled(can_paint)
        if not can_paint and self._viewer.active_tool in (self.brush, self.eraser):
            self.activate(None)
        self._update_undo()

    def activate(self, tool: ViewTool | None) -> None:
        """Give the left button to ``tool`` (None: navigate / crosshair); the brush and eraser
        only while painting is allowed."""
        if tool in (self.brush, self.eraser) and self.brush.editor is None:
            tool = None
        for action in self._group.actions():
            if action.data() is tool or (tool is None and action is self.navigate_action):
                action.setChecked(True)
        self._viewer.set_active_tool(tool)
        self.tool_changed.emit(tool.name if tool is not None else "")

    def clear(self) -> None:
        """Remove every ruler and ROI (a new scan was opened)."""
        for tool in (self.ruler, self.rectangle, self.ellipse):
            tool.clear()

    def _sync_measurements(self, view: PlaneView) -> None:
        for tool in (self.ruler, self.rectangle, self.ellipse):
            tool.sync(view)

    def undo(self) -> None:
        if self.editor is not None and self._painting_allowed and self.editor.undo():
            self._edited()

    def redo(self) -> None:
        if self.editor is not None and self._painting_allowed and self.editor.redo():
            self._edited()

    def _edited(self) -> None:
        self._viewer.refresh_overlay()
        self._update_undo()
        self.mask_edited.emit()

    def _update_undo(self) -> None:
        editing = self.editor is not None and self._painting_allowed
        self.undo_action.setEnabled(editing and self.editor is not None and self.editor.can_undo)
        self.redo_action.setEnabled(editing and self.editor is not None and self.editor.can_redo)

    def _resize(self, steps: int) -> None:
        for brush in (self.brush, self.eraser):
            brush.step_radius(steps)

    def _tool_action(self, text: str, command: str, tool: ViewTool | None) -> QAction:
        action = QAction(text, self)
        action.setCheckable(True)
        if tool is self.brush or tool is self.eraser:
            action.setToolTip(
                f"{text}: while editing a finding ({key_names('review.edit')}) or adding one "
                f"({key_names('review.add_manual')})"
            )
        bind_action(action, command)
        action.setData(tool)
        action.triggered.connect(lambda _checked=False, t=tool: self.activate(t))
        self._group.addAction(action)
        return action

    def _action(self, text: str, command: str, slot) -> QAction:
        action = QAction(text, self)
        bind_action(action, command)
        action.triggered.connect(slot)
        return action
