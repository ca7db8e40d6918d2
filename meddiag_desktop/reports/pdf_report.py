"""The PDF report of one review: what a person files, written with ReportLab (no Qt).

Everything in it comes from one :class:`ReviewOutcome`, so it holds the kept findings only.
Text is real text in an embedded font (selectable, searchable, read aloud by screen readers);
the key images are drawn by :mod:`meddiag_desktop.reports.key_images`. Widths follow the page's
frame, so A4 and Letter both fit, long values wrap and many findings flow onto further pages.
Every page carries the not-a-medical-device statement and its number; an unsigned review says
DRAFT on every page and in the document's title.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from meddiag_desktop import __version__
from meddiag_desktop.reports.finding_table import COLUMNS, finding_rows, intensity_unit
from meddiag_desktop.reports.follow_up_pdf import follow_up_flowables
from meddiag_desktop.reports.key_images import render_key_image
from meddiag_desktop.reports.pdf_pages import (
    BOLD,
    DRAFT_COLOUR,
    FONT,
    FOOTER_HEIGHT,
    HEADER_HEIGHT,
    MARGIN,
    MONO,
    PageFurniture,
    numbered_canvas,
    register_fonts,
)
from meddiag_desktop.reports.review_outcome import NOT_A_MEDICAL_DEVICE, ReviewOutcome
from meddiag_desktop.safe_text import printable

PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": A4, "Letter": letter}
MISSING = "—"
# Relative widths of the findings table's columns; a column added to COLUMNS later gets
# DEFAULT_WEIGHT, and all are scaled to the frame, so the table never runs off the page.
COLUMN_WEIGHTS = {
    "number": 2.4,
    "label": 5.6,
    "slice": 3.4,
    "x_mm": 4.4,
    "y_mm": 4.4,
    "z_mm": 4.4,
    "volume_ml": 4.8,
    "long_axis_mm": 4.4,
    "short_axis_mm": 4.4,
    "mean_intensity": 4.2,
    "confidence": 6.6,
    "decision": 5.4,
    "decided_by": 5.4,
    "decided_at": 6.4,
    "tracking_uid": 8.6,
}
DEFAULT_WEIGHT = 5.0
_CELL_PADDING = 2.0
# Decimals the PDF prints: those finding_row rounds to, so each value is rounded once (printing
# a rounded 25.47 -> 25.5 again as "26" would disagree with the CSV and the SR) and the PDF shows
# the CSV's and JSON's numbers digit for digit, trailing zeros kept.
_DECIMALS = {
    "x_mm": 2,
    "y_mm": 2,
    "z_mm": 2,
    "volume_ml": 4,
    "long_axis_mm": 2,
    "short_axis_mm": 2,
    "mean_intensity": 1,
    "confidence": 3,
}
_SEX = {"M": "male", "F": "female", "O": "other"}

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=11.5)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=7.5, leading=9.5)
_TITLE = ParagraphStyle("title", parent=_BODY, fontName=BOLD, fontSize=15, leading=19)
_HEADING = ParagraphStyle(
    "heading",
    parent=_BODY,
    fontName=BOLD,
    fontSize=11,
    leading=14,
    spaceBefore=9,
    spaceAfter=4,
    keepWithNext=1,  # never a heading alone at the foot of a page
)
_DRAFT = ParagraphStyle("draft", parent=_BODY, fontName=BOLD, textColor=DRAFT_COLOUR, fontSize=11)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=6.6, leading=8)
_CELL_HEAD = ParagraphStyle("cell_head", parent=_CELL, fontName=BOLD)
_MONO = ParagraphStyle("mono", parent=_BODY, fontName=MONO, fontSize=7.5, leading=9.5)


def write_pdf_report(outcome: ReviewOutcome, path: Path, page_size: str = "A4") -> Path:
    """Write the report of ``outcome`` to exactly ``path`` ("A4" or "Letter" pages).

    The caller chooses a temporary name and renames it: this writes the file in one go when the
    layout is done, so a failure leaves nothing behind but may leave ``path`` absent.
    """
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page size must be one of {', '.join(PAGE_SIZES)}, not {page_size!r}")
    register_fonts()
    page_width, page_height = PAGE_SIZES[page_size]
    title = f"MedDiag Desktop review report, case {outcome.case_id}"
    doc = BaseDocTemplate(
        str(path),
        pagesize=(page_width, page_height),
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + HEADER_HEIGHT,
        bottomMargin=MARGIN + FOOTER_HEIGHT,
        title=f"DRAFT - {title}" if outcome.draft else title,
        author=printable(outcome.reviewer),
        subject=NOT_A_MEDICAL_DEVICE,
        creator=f"MedDiag Desktop {__version__}",
        invariant=True,  # the same review gives the same bytes (no random IDs)
    )
    furniture = _furniture(outcome, title)

    def decorate(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        furniture.draw(canvas, page_width, page_height)

    def watermark(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        furniture.draw_watermark(canvas, page_width, page_height)

    # No frame padding: tables are sized to doc.width, which is the frame's full width.
    frame = Frame(
        doc.leftMargin,
        doc.bottomMargin,
        doc.width,
        doc.height,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc.addPageTemplates(
        [PageTemplate(id="page", frames=[frame], onPage=decorate, onPageEnd=watermark)]
    )
    doc.build(
        _story(outcome, doc.width),
        canvasmaker=numbered_canvas(page_width, outcome.exported_at),
    )
    return path


def _furniture(outcome: ReviewOutcome, title: str) -> PageFurniture:
    meta = outcome.scan.metadata
    who = " · ".join(part for part in (_person_name(meta.patient_name), meta.patient_id) if part)
    return PageFurniture(
        header_left=title,
        header_right=printable(who),
        disclaimer=f"{NOT_A_MEDICAL_DEVICE}",
        draft=outcome.draft,
    )


def _story(outcome: ReviewOutcome, width: float) -> list[Flowable]:
    story: list[Flowable] = [Paragraph("MedDiag Desktop review report", _TITLE)]
    if outcome.draft:
        story.append(
            Paragraph("DRAFT: this review has not been signed. It is not a final report.", _DRAFT)
        )
    story += [
        Spacer(1, 3),
        Paragraph(f"<b>{_text(NOT_A_MEDICAL_DEVICE)}</b>", _SMALL),
        Paragraph("Patient and study", _HEADING),
        _pairs(_patient_and_study(outcome), width),
        Paragraph("Review", _HEADING),
        _pairs(_review(outcome), width),
        Paragraph("Model", _HEADING),
        *_model(outcome, width),
        Paragraph(f"Findings ({len(outcome.findings)} kept)", _HEADING),
        *_findings(outcome, width),
    ]
    if outcome.follow_up is not None:
        story += [
            Paragraph("Follow-up", _HEADING),
            *follow_up_flowables(outcome.follow_up, width),
        ]
    story += [
        *_key_images(outcome, width, Paragraph("Key images", _HEADING)),
        Paragraph("Audit summary", _HEADING),
        *_audit(outcome, width),
        Paragraph("Warnings", _HEADING),
        *_warnings(outcome),
    ]
    return story


def _patient_and_study(outcome: ReviewOutcome) -> list[tuple[str, str]]:
    meta = outcome.scan.metadata
    scanner = " ".join(part for part in (meta.manufacturer, meta.manufacturer_model) if part)
    return [
        ("Patient name", _person_name(meta.patient_name)),
        ("Patient ID", meta.patient_id),
        ("Birth date", _date(meta.patient_birth_date)),
        ("Sex", _SEX.get(meta.patient_sex.upper(), meta.patient_sex)),
        ("Study date", _date(meta.study_date)),
        ("Study description", meta.study_description),
        ("Series description", meta.series_description),
        ("Series number", meta.series_number),
        ("Modality", meta.modality),
        ("Body part", meta.body_part_examined),
        ("Institution", meta.institution),
        ("Scanner", scanner),
        ("Study Instance UID", meta.study_uid),
        ("Series Instance UID", meta.series_uid),
        ("Case", str(outcome.case_id)),
    ]


def _review(outcome: ReviewOutcome) -> list[tuple[str, str]]:
    signed = _when(outcome.signed_at) if outcome.signed_at else "not signed (DRAFT)"
    return [
        ("Reviewer", outcome.reviewer),
        ("Signed off", signed),
        ("Exported", f"{_when(outcome.exported_at)} by {outcome.exported_by}"),
    ]


def _model(outcome: ReviewOutcome, width: float) -> list[Flowable]:
    model = outcome.model
    if model is None:
        return [
            Paragraph(
                "No model was run on this case: every finding is manual, outlined by the "
                "radiologist.",
                _BODY,
            )
        ]
    intended = model.intended_use or (
        "not known: the model's card is no longer installed on this workstation"
    )
    rows = [
        ("Name", model.name),
        ("Version", model.version),
        ("SHA-256", model.sha256),
        ("Execution provider", model.provider),
        ("Run", f"#{model.run_id}" if model.run_id is not None else ""),
        ("Run finished", _when(model.run_finished_at) if model.run_finished_at else ""),
        ("Intended use", intended),
    ]
    return [_pairs(rows, width, mono={"SHA-256"})]


def _findings(outcome: ReviewOutcome, width: float) -> list[Flowable]:
    rows = finding_rows(outcome)
    if not rows:
        return [Paragraph("No findings were kept.", _BODY)]
    unit = intensity_unit(outcome)
    titles = [
        f"Mean ({unit})" if c.key == "mean_intensity" else _titled(c.title, c.unit) for c in COLUMNS
    ]
    cells = [[_cell(c.key, row.get(c.key)) for c in COLUMNS] for row in rows]
    widths = _column_widths(titles, cells, [c.key for c in COLUMNS], width)
    header = [Paragraph(_text(title), _CELL_HEAD) for title in titles]
    body = [[Paragraph(_text(value), _CELL) for value in row] for row in cells]
    table = Table([header, *body], colWidths=widths, repeatRows=1)
    table.setStyle(_grid_style())
    note = (
        "Only the findings the radiologist kept are listed (accepted, edited, manual); rejected "
        "and unreviewed findings are left out. x, y, z: the centroid in patient coordinates "
        "(DICOM LPS: x to the patient's left, y to posterior, z to head), mm. Slice: the axial "
        "slice through the centroid, numbered from 1 as the viewer shows it. Axes: the longest "
        "diameter in that slice and the longest perpendicular to it (RECIST). Confidence: the "
        f"model's mean lesion probability ({MISSING} for manual findings)."
    )
    return [table, Spacer(1, 3), Paragraph(_text(note), _SMALL)]


def _key_images(outcome: ReviewOutcome, width: float, heading: Flowable) -> list[Flowable]:
    """Caption and image of each finding, kept together; the heading goes with the first
    (ReportLab's keepWithNext does not join a heading to a KeepTogether)."""
    if not outcome.findings:
        return [heading, Paragraph("No findings, so no key images.", _BODY)]
    out: list[Flowable] = []
    lead: list[Flowable] = [heading]
    for reported in outcome.findings:
        image = render_key_image(outcome, reported)
        f = reported.finding
        where = f"axial slice {image.slice_index + 1}"
        if not image.on_centroid:
            where += " (the outline does not reach the centroid's slice; nearest slice shown)"
        caption = (
            f"<b>#{reported.number} {_text(f.label_name)}</b>, {_text(reported.decision.value)} "
            f"by {_text(reported.decided_by)}: {where}, long axis {f.long_axis_mm:.1f} mm, "
            f"short axis {f.short_axis_mm:.1f} mm, volume {f.volume_ml:.3f} mL. "
            f"Window {_text(image.window.name)} ({_text(image.window.label())}). "
            f"Image left = patient's {_side(image.view.left)}, top = {_side(image.view.top)}. "
            f"Left: the whole slice (dashed box: the zoom); right: zoom. "
            f"Tracking UID {_text(reported.tracking_uid)}."
        )
        picture = Image(
            io.BytesIO(image.png), width=width, height=width * image.height_px / image.width_px
        )
        group = [*lead, Paragraph(caption, _SMALL), Spacer(1, 2), picture]
        out += [KeepTogether(group), Spacer(1, 8)]
        lead = []
    return out


def _audit(outcome: ReviewOutcome, width: float) -> list[Flowable]:
    if not outcome.audit:
        return [Paragraph("No audit events were recorded for this case.", _BODY)]
    header = [Paragraph(t, _CELL_HEAD) for t in ("When", "Who", "Event", "What happened")]
    rows = [
        [Paragraph(_text(v), _CELL) for v in (_when(a.occurred_at), a.actor, a.action, a.text)]
        for a in outcome.audit
    ]
    table = Table([header, *rows], colWidths=_shares(width, (3, 2.4, 3, 9.6)), repeatRows=1)
    table.setStyle(_grid_style())
    return [table]


def _warnings(outcome: ReviewOutcome) -> list[Flowable]:
    run = outcome.model.run_warnings if outcome.model else ()
    lines = list(dict.fromkeys((*outcome.warnings, *outcome.scan.warnings, *run)))  # once each
    if not lines:
        return [Paragraph("None.", _BODY)]
    return [Paragraph(f"• {_text(line)}", _BODY) for line in lines]


def _pairs(rows: Iterable[tuple[str, str]], width: float, mono: set[str] | None = None) -> Table:
    """A two-column label/value table; values wrap inside the frame."""
    data = [
        [
            Paragraph(f"<b>{_text(label)}</b>", _BODY),
            Paragraph(_text(value) or MISSING, _MONO if label in (mono or set()) else _BODY),
        ]
        for label, value in rows
    ]
    table = Table(data, colWidths=_shares(width, (1, 3.2)))
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _grid_style() -> TableStyle:
    return TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]
    )


def _column_widths(
    titles: Sequence[str], cells: Sequence[Sequence[str]], keys: Sequence[str], width: float
) -> list[float]:
    """Widths that add up to ``width``: each column first gets its longest word (so "Confidence"
    or "-127.48" is not split), capped for UIDs, which may break; what is left is shared by
    :data:`COLUMN_WEIGHTS`. If even the words do not fit, all shrink alike and words break."""
    padding = 2 * _CELL_PADDING + 0.5
    cap = width * 0.12
    natural = []
    for i, title in enumerate(titles):
        words = [(word, BOLD) for word in title.split()]
        words += [(word, FONT) for row in cells for word in row[i].split()]
        longest = max((stringWidth(w, font, _CELL.fontSize) for w, font in words), default=0.0)
        natural.append(min(longest + padding, cap))
    spare = width - sum(natural)
    if spare < 0:
        return _shares(width, natural)
    weights = [COLUMN_WEIGHTS.get(key, DEFAULT_WEIGHT) for key in keys]
    return [n + spare * w / sum(weights) for n, w in zip(natural, weights, strict=True)]


def _shares(width: float, weights: Sequence[float]) -> list[float]:
    return [width * w / sum(weights) for w in weights]


def _cell(key: str, value: Any) -> str:
    """A findings-table value as the PDF prints it (the CSV/JSON keep the raw numbers)."""
    if value is None or value == "":
        return MISSING
    if key == "decided_at":
        return _when(datetime.fromisoformat(value))
    if key in _DECIMALS and isinstance(value, int | float):
        return f"{value:.{_DECIMALS[key]}f}"
    return str(value)


def _titled(title: str, unit: str) -> str:
    return f"{title} ({unit})" if unit else title


def _text(value: object) -> str:
    """Header- or database-derived text, made printable and escaped for Paragraph markup."""
    return escape(printable(str(value)))


def _person_name(name: str) -> str:
    """A DICOM PN (``FAMILY^Given^Middle``) as people write it: ``FAMILY, Given Middle``."""
    alphabetic = name.split("=")[0]
    parts = [part.strip() for part in alphabetic.split("^")]
    family, rest = parts[0], " ".join(part for part in parts[1:] if part)
    return f"{family}, {rest}" if family and rest else family or rest


def _date(value: str) -> str:
    """A DICOM DA (YYYYMMDD) as ISO 8601; anything else as it is."""
    text = value.strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def _when(moment: datetime | None) -> str:
    if moment is None:
        return MISSING
    zone = moment.tzname() or ""
    return f"{moment:%Y-%m-%d %H:%M} {zone}".strip()


def _side(letter: str) -> str:
    return {"R": "right", "L": "left", "A": "anterior", "P": "posterior"}.get(letter, letter)
