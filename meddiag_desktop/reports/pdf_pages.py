"""What every page of the PDF report carries: header, disclaimer footer, page number, DRAFT.

Kept apart from the report's contents (:mod:`meddiag_desktop.reports.pdf_report`) because it is
drawn straight on the canvas, around the flowing story, and because "Page N of M" needs the page
count, known only once the whole story has been laid out (:func:`numbered_canvas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

FONT = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
MONO = "DejaVuSansMono"
MARGIN = 15 * mm
HEADER_HEIGHT = 10 * mm
FOOTER_HEIGHT = 17 * mm
DRAFT_COLOUR = colors.Color(0.8, 0.0, 0.0)


def register_fonts() -> None:
    """Embed DejaVu (shipped with matplotlib): unlike the 14 standard PDF fonts, which cover
    Latin-1 only, it draws the accented, Greek and Cyrillic names a patient list holds."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in (FONT, BOLD, MONO):
        pdfmetrics.registerFont(TTFont(name, str(folder / f"{name}.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


@dataclass(frozen=True)
class PageFurniture:
    """The text every page carries, already made printable (not yet XML-escaped)."""

    header_left: str  # e.g. "MedDiag Desktop review report · case 12"
    header_right: str  # e.g. the patient's name and ID
    disclaimer: str
    draft: bool

    def draw(self, canvas: Canvas, page_width: float, page_height: float) -> None:
        """Header, footer disclaimer and (for a draft) the DRAFT marks of one page."""
        canvas.saveState()
        top = page_height - MARGIN
        width = page_width - 2 * MARGIN
        canvas.setFont(BOLD if self.draft else FONT, 8)
        canvas.setFillColor(DRAFT_COLOUR if self.draft else colors.black)
        left = f"DRAFT, NOT SIGNED · {self.header_left}" if self.draft else self.header_left
        left = _fit(left, BOLD if self.draft else FONT, 8, width * 0.6)
        canvas.drawString(MARGIN, top - 8, left)
        canvas.setFillColor(colors.black)
        canvas.setFont(FONT, 8)
        canvas.drawRightString(
            page_width - MARGIN, top - 8, _fit(self.header_right, FONT, 8, width * 0.38)
        )
        canvas.setStrokeColor(colors.grey)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, top - HEADER_HEIGHT + 4, page_width - MARGIN, top - HEADER_HEIGHT + 4)
        canvas.line(
            MARGIN, MARGIN + FOOTER_HEIGHT - 3, page_width - MARGIN, MARGIN + FOOTER_HEIGHT - 3
        )
        note = Paragraph(escape(self.disclaimer), FOOTER_STYLE)
        _, height = note.wrap(width, FOOTER_HEIGHT)
        note.drawOn(canvas, MARGIN, MARGIN + FOOTER_HEIGHT - 5 - height)
        canvas.restoreState()

    def draw_watermark(self, canvas: Canvas, page_width: float, page_height: float) -> None:
        """A large translucent DRAFT across the page, over the images too, so no one misses it."""
        if not self.draft:
            return
        canvas.saveState()
        canvas.setFillColor(DRAFT_COLOUR)
        canvas.setFillAlpha(0.16)
        canvas.translate(page_width / 2, page_height / 2)
        canvas.rotate(50)
        canvas.setFont(BOLD, 120)
        canvas.drawCentredString(0, -40, "DRAFT")
        canvas.restoreState()


FOOTER_STYLE = ParagraphStyle("footer", fontName=FONT, fontSize=6.5, leading=8)


def numbered_canvas(page_width: float, created_at: datetime) -> type[Canvas]:
    """A canvas class that writes "Page N of M" on every page once M is known.

    Pages are kept until the document is saved, then each is finished with its number; the
    usual ReportLab recipe for totals that are known only at the end. The document's creation
    date is ``created_at`` (the export's time), not the moment the bytes were written, so the
    same export gives the same file.
    """
    stamp = pdf_date(created_at)

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []
            self.setDateFormatter(lambda *_: stamp)

        def showPage(self) -> None:  # ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(FONT, 7)
                self.drawRightString(page_width - MARGIN, MARGIN, f"Page {number} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def pdf_date(moment: datetime) -> str:
    """A PDF date string (``D:YYYYMMDDHHmmSS+00'00'``) in UTC; naive times count as UTC."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"D:{utc:%Y%m%d%H%M%S}+00'00'"


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` points, for one-line page headers."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"
