"""The panel under the series table: everything about one series, and why others cannot open.

Table cells are short and a tooltip needs a steady mouse; a reader who expected a series in the
list should see the reason it cannot be opened without hunting for it.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from meddiag_desktop.domain import SeriesInfo

_MAX_LISTED = 8


def _name(series: SeriesInfo) -> str:
    return escape(series.description or series.kind.capitalize())


def _date(value: str) -> str:
    """DICOM dates are YYYYMMDD; show them as ISO dates, anything else as it is."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def describe_series(series: SeriesInfo) -> str:
    """Rich text for one series: identity, geometry, and the reason or warnings."""
    meta = series.metadata
    facts = [
        series.modality or "modality unknown",
        str(series.kind),
        f"{series.file_count} file(s)",
    ]
    if series.size_xyz[0]:
        facts.append("{} × {} × {} voxels".format(*series.size_xyz))
    lines = [f"<b>{_name(series)}</b> — {escape(', '.join(facts))}"]
    number = f"series {meta.series_number}" if meta.series_number else ""
    study = " · ".join(v for v in (meta.study_description, _date(meta.study_date), number) if v)
    if study:
        lines.append(escape(study))
    if series.reason:
        lines.append(
            f"<span style='color:#e3b341'>Cannot be opened: {escape(series.reason)}</span>"
        )
    lines.extend(f"<span style='color:#e3b341'>⚠ {escape(w)}</span>" for w in series.warnings)
    return "<br>".join(lines)


def summarise_unloadable(found: list[SeriesInfo]) -> str:
    """Rich text listing each series that cannot be opened with its reason."""
    blocked = [s for s in found if not s.loadable]
    if not blocked:
        return ""
    items = [f"• {_name(s)}: {escape(s.reason)}" for s in blocked[:_MAX_LISTED]]
    if len(blocked) > _MAX_LISTED:
        items.append(f"… and {len(blocked) - _MAX_LISTED} more")
    return "<b>Greyed series cannot be opened:</b><br>" + "<br>".join(items)


class SeriesDetails(QLabel):
    """Shows the series under the mouse, else the open one, plus the unloadable summary."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("seriesDetails")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._found: list[SeriesInfo] = []
        self._opened: SeriesInfo | None = None
        self._refresh(None)

    def set_series(self, found: list[SeriesInfo]) -> None:
        self._found = list(found)
        self._opened = None
        self._refresh(None)

    def set_opened(self, series: SeriesInfo | None) -> None:
        self._opened = series
        self._refresh(None)

    def show_hovered(self, series: SeriesInfo | None) -> None:
        self._refresh(series)

    def _refresh(self, hovered: SeriesInfo | None) -> None:
        focus = hovered or self._opened
        parts = [describe_series(focus)] if focus is not None else []
        summary = summarise_unloadable(self._found)
        if summary and (focus is None or focus.loadable):
            parts.append(summary)
        if not self._found:
            parts = ["No folder open yet."]
        self.setText("<br><br>".join(parts))
