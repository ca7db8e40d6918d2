"""The report's "Follow-up" section: the comparison with the prior study, lesion by lesion.

A table of the lesion tracks (sizes at both studies, volume change, doubling time, target or
not), the RECIST 1.1 line with the rule that decided it, and one small plot per lesion of its
volume at every study it was seen on, drawn with matplotlib's Agg renderer.
"""

from __future__ import annotations

import io
from datetime import date
from xml.sax.saxutils import escape

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, Image, Paragraph, Spacer, Table, TableStyle

from meddiag_desktop.reports.follow_up_summary import FollowUpLesion, FollowUpSummary, TimePoint
from meddiag_desktop.reports.pdf_pages import BOLD, FONT
from meddiag_desktop.safe_text import printable

_BODY = ParagraphStyle("fu_body", fontName=FONT, fontSize=9, leading=11.5)
_SMALL = ParagraphStyle("fu_small", parent=_BODY, fontSize=7.5, leading=9.5)
_CELL = ParagraphStyle("fu_cell", parent=_BODY, fontSize=6.6, leading=8)
_HEAD = ParagraphStyle("fu_head", parent=_CELL, fontName=BOLD)
_MISSING = "—"
_PLOTS_PER_ROW = 4
_COLUMNS = (
    ("Lesion", 1.4),
    ("Status", 1.6),
    ("Prior", 1.2),
    ("Current", 1.6),
    ("Volume (mL) prior → current", 3.4),
    ("Change", 1.5),
    ("Long axis (mm) prior → current", 3.2),
    ("Doubling time (days)", 1.9),
    ("Target", 1.2),
)


def follow_up_flowables(summary: FollowUpSummary, width: float) -> list[Flowable]:
    """The section's content (its heading is the caller's)."""
    days = f", {summary.days_between} days earlier" if summary.days_between is not None else ""
    intro = (
        f"Compared with case {summary.prior_case_id} (study of "
        f"{summary.prior_study_date or 'unknown date'}{days}), registered "
        f"{summary.registration_type or 'rigid'}"
        + (
            f" (final mutual information {summary.registration_metric:.3f})"
            if summary.registration_metric is not None
            else ""
        )
        + "."
    )
    before, after = summary.sum_of_diameters_mm
    recist = (
        f"<b>RECIST 1.1: {_text(summary.response)}</b>. Sum of target diameters "
        f"{_mm(before)} → {_mm(after)} mm. Rule: {_text(summary.rule)}"
    )
    out: list[Flowable] = [Paragraph(_text(intro), _BODY), Spacer(1, 3)]
    out += [_table(summary, width), Spacer(1, 3), Paragraph(recist, _BODY), Spacer(1, 4)]
    start = _first_date(summary)
    end = _date(summary.current_study_date)
    span = float((end - start).days) if start is not None and end is not None else None
    plots = [_plot(lesion, width / _PLOTS_PER_ROW, start, span) for lesion in summary.lesions]
    if plots:
        rows = [plots[i : i + _PLOTS_PER_ROW] for i in range(0, len(plots), _PLOTS_PER_ROW)]
        rows[-1] += [Spacer(1, 1)] * (_PLOTS_PER_ROW - len(rows[-1]))
        grid = Table(rows, colWidths=[width / _PLOTS_PER_ROW] * _PLOTS_PER_ROW)
        grid.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        out += [grid]
    note = (
        "Status: matched (the same lesion in both studies, after registering the prior study to "
        "this one), new (only in this study), gone (only in the prior). Doubling time: "
        "t·ln 2 / ln(V2/V1); negative for a shrinking lesion. A matched lesion keeps the "
        "prior study's tracking UID in this case's DICOM SR."
    )
    return [*out, Spacer(1, 3), Paragraph(_text(note), _SMALL)]


def _table(summary: FollowUpSummary, width: float) -> Table:
    header = [Paragraph(_text(title), _HEAD) for title, _ in _COLUMNS]
    rows = [
        [
            Paragraph(_text(value), _CELL)
            for value in (
                lesion.track_id,
                lesion.status,
                lesion.prior_finding or _MISSING,
                lesion.current_finding or _MISSING,
                _pair(lesion.volume_ml, "{:.3f}"),
                _number(lesion.volume_change_pct, "{:+.0f}%"),
                _pair(lesion.long_axis_mm, "{:.1f}"),
                _number(lesion.doubling_time_days, "{:.0f}"),
                "yes" if lesion.target else "",
            )
        ]
        for lesion in summary.lesions
    ]
    weights = [w for _, w in _COLUMNS]
    table = Table(
        [header, *rows], colWidths=[width * w / sum(weights) for w in weights], repeatRows=1
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _plot(lesion: FollowUpLesion, width: float, start: date | None, span: float | None) -> Image:
    """The lesion's volume at each study (days from ``start``), as a small PNG."""
    points = [p for p in lesion.history if p.volume_ml is not None]
    figure = Figure(figsize=(1.75, 1.25), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.27, 0.25, 0.68, 0.58))
    days = _days(points, start)
    volumes = [float(p.volume_ml or 0.0) for p in points]
    axes.plot(days, volumes, marker="o", markersize=3, linewidth=1)
    axes.set_title(f"{lesion.track_id} ({lesion.status})", fontsize=6.5)
    axes.set_xlabel("days", fontsize=5.5, labelpad=1)
    axes.set_ylabel("volume (mL)", fontsize=5.5, labelpad=1)
    axes.tick_params(labelsize=5, length=2, pad=1)
    axes.set_ylim(bottom=0)
    if span is not None:
        margin = max(span * 0.08, 2.0)
        axes.set_xlim(min([0.0, *days]) - margin, max([span, *days]) + margin)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
    scale = 0.95 * width / (1.75 * 72)
    return Image(io.BytesIO(buffer.getvalue()), width=1.75 * 72 * scale, height=1.25 * 72 * scale)


def _first_date(summary: FollowUpSummary) -> date | None:
    """The earliest study any lesion was seen on: day 0 of every plot."""
    dates = [_date(summary.prior_study_date), _date(summary.current_study_date)]
    dates += [_date(p.study_date) for lesion in summary.lesions for p in lesion.history]
    known = [d for d in dates if d is not None]
    return min(known) if known else None


def _days(points: list[TimePoint], start: date | None) -> list[float]:
    dates = [_date(p.study_date) for p in points]
    known = [d for d in dates if d is not None]
    if start is None or len(known) != len(dates):
        return [float(i) for i in range(len(points))]
    return [float((d - start).days) for d in known]


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _text(value: object) -> str:
    return escape(printable(str(value)))


def _mm(value: float | None) -> str:
    return _MISSING if value is None else f"{value:.1f}"


def _pair(values: tuple[float | None, float | None], form: str) -> str:
    return " → ".join(_MISSING if v is None else form.format(v) for v in values)


def _number(value: float | None, form: str) -> str:
    return _MISSING if value is None else form.format(value)
