"""Text an outsider wrote (DICOM descriptions, names, stored rows) cannot drive the terminal.

A crafted SeriesDescription retitled and cleared the terminal through ``meddiag scan``,
``import`` and ``cases list``. Here the same kind of file, written with pydicom from a real
slice, goes through all three; the output must hold no control character and still show the
description's words.
"""

from __future__ import annotations

import io
import logging
import re
import sqlite3
from pathlib import Path

import pydicom
import pytest

from meddiag_desktop import cli
from meddiag_desktop.domain import ScanMetadata
from meddiag_desktop.safe_text import install_log_sanitiser, printable

# Title change (OSC 0, BEL-terminated), clear screen and home (CSI), 8-bit CSI colour, a
# string command ended by ST, a bidi override, backspace, bell and DEL.
HOSTILE = (
    "\x1b]0;PWNED\x07\x1b[2J\x1b[HCT ABDOMEN\x9b31m \x1bPq#0\x1b\\WITH \u202eLATSAC\u202c"
    " CONTRAST\x08\x07\x7f"
)
# Anything a terminal acts on: C0 but newline, tab and the progress bar's carriage return;
# DEL; C1; bidi embeddings, overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_printable_removes_escape_sequences_whole_and_keeps_the_words() -> None:
    assert printable(HOSTILE) == "CT ABDOMEN WITH LATSAC CONTRAST"
    assert printable("plain CT Thorax 1.0 B31f") == "plain CT Thorax 1.0 B31f"
    assert printable("Tête café") == "Tête café"  # letters beyond ASCII are text


def test_printable_keeps_an_unterminated_string_readable() -> None:
    """A terminal would swallow the rest; we drop only the introducer."""
    assert printable("\x1b]0;left open CT") == "0;left open CT"


def test_printable_fields_cannot_fake_a_new_line_but_whole_lines_keep_theirs() -> None:
    assert printable("CT\nloadable\r\tx") == "CT loadable  x"
    assert printable("a\n\tb\r\x1b[31mc\u2028", keep_lines=True) == "a\n\tb\rc "


def test_scan_metadata_is_printable_whatever_the_file_said() -> None:
    metadata = ScanMetadata(series_description=HOSTILE, patient_name="DOE^\x1b[8mJOHN")
    assert metadata.series_description == "CT ABDOMEN WITH LATSAC CONTRAST"
    assert metadata.patient_name == "DOE^JOHN"


def test_log_records_are_printable_whichever_handler_writes_them() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("meddiag.test_safe_text")
    logger.addHandler(handler)
    logger.propagate = False
    previous = logging.getLogRecordFactory()
    try:
        install_log_sanitiser()
        install_log_sanitiser()  # twice changes nothing
        logger.warning("series %s", HOSTILE)
        try:
            raise ValueError(HOSTILE)
        except ValueError:
            logger.exception("failed on %s", "\x1b[2Jfile.dcm")
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert not CONTROL.search(text)
    assert "series CT ABDOMEN WITH LATSAC CONTRAST" in text
    assert "failed on file.dcm" in text and "ValueError: CT ABDOMEN" in text


@pytest.fixture
def hostile_series(sample_data: Path, tmp_path: Path) -> Path:
    """The real 3-slice CT, rewritten with an escape-laden description and patient name."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for source in sorted((sample_data / "dicom/ct_3slice_with_seg").glob("*.dcm")):
        ds = pydicom.dcmread(source)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SeriesDescription = HOSTILE
        ds.StudyDescription = "\x1b[2JSTUDY\u202e"
        ds.PatientName = "EVIL\x1b]2;x\x07^PATIENT"
        ds.save_as(folder / source.name)
    return folder


@pytest.fixture(autouse=True)
def _restore_log_record_factory():
    """The CLI installs the log sanitiser for its process; keep the test session as it was."""
    previous = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(previous)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out + err


def test_hostile_dicom_text_reaches_no_terminal(
    hostile_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    outputs = {
        "scan": _run(capsys, "scan", str(hostile_series)),
        "scan --json": _run(capsys, "scan", "--json", str(hostile_series)),
        "import": _run(capsys, "import", str(hostile_series), "--db", db),
        "cases list": _run(capsys, "cases", "list", "--db", db),
        "cases show": _run(capsys, "cases", "show", "1", "--db", db),
    }
    for command, text in outputs.items():
        assert not CONTROL.search(text), f"meddiag {command} printed {CONTROL.search(text)}"
        assert "\\u001b" not in text and "\\u202e" not in text, command
    for command in ("scan", "import", "cases list"):
        assert "CT ABDOMEN WITH LATSAC CONTRAST" in outputs[command], outputs[command]
    assert getattr(logging.getLogRecordFactory(), "meddiag_sanitises", False)  # logs, too


def test_text_stored_raw_by_an_earlier_import_is_printable(
    hostile_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows written before this fix hold the raw text: the CLI's output layer cleans it too."""
    path = tmp_path / "cases.db"
    db = f"sqlite:///{path}"
    _run(capsys, "import", str(hostile_series), "--db", db)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE series SET description = ?", (HOSTILE,))
    for argv in (("cases", "list"), ("cases", "show", "1")):
        text = _run(capsys, *argv, "--db", db)
        assert not CONTROL.search(text), f"meddiag {' '.join(argv)}: {CONTROL.search(text)}"
        assert "CT ABDOMEN WITH LATSAC CONTRAST" in text
