"""Text from files and databases made safe to print, log and show.

A DICOM SeriesDescription, a NIfTI file name or a database row written by an earlier import is
text an outsider chose. Printed raw, an ESC sequence in it can retitle or clear a terminal, hide
lines, or fake output; a bidi override (U+202E) can make a name read backwards. :func:`printable`
is the one place that neutralises such text; everything that prints, logs or shows untrusted
text goes through it (domain metadata on entry, the CLI's streams, the log record factory).

Standard library only, so every layer may use it.
"""

from __future__ import annotations

import logging
import re

# Terminal escape sequences, removed whole so no parameter bytes are left to read as text:
# CSI (ESC [ or 8-bit 0x9B) with its parameter/intermediate/final bytes; the string commands
# OSC, DCS, SOS, PM, APC (ESC ] P X ^ _ or 8-bit 0x9D 0x90 0x98 0x9E 0x9F) up to their
# terminator (BEL, ESC \ or 0x9C); and the two-byte escapes (ESC c, ESC ( B, ...). An
# unterminated string command loses only its introducer: the text after it stays readable.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)
# Characters that move the cursor or break the line: a space keeps the words apart.
_LAYOUT = re.compile("[\t\n\r\v\f\u0085\u2028\u2029]")
# What is left: C0 controls, DEL, C1 controls, and the bidi embeddings, overrides, isolates
# and marks that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_KEPT_LAYOUT = re.compile("[\v\f\u0085\u2028\u2029]")


def printable(text: str, *, keep_lines: bool = False) -> str:
    """``text`` without terminal escape sequences, control characters or bidi controls.

    With ``keep_lines`` (whole printed lines, log messages, tracebacks) newline, tab and carriage
    return stay, since they are the program's own layout; otherwise (one field such as a series
    description) they become spaces, so a field cannot start a fake line of output.
    """
    if text.isprintable() and text.isascii():
        return text  # the common case costs one scan
    cleaned = _ESCAPE_SEQUENCE.sub("", text)
    cleaned = _KEPT_LAYOUT.sub(" ", cleaned) if keep_lines else _LAYOUT.sub(" ", cleaned)
    if keep_lines:
        return _CONTROL.sub(lambda m: m.group() if m.group() in "\t\n\r" else "", cleaned)
    return _CONTROL.sub("", cleaned)


def install_log_sanitiser() -> None:
    """Make every log record's text printable, whichever handler later writes it.

    A record factory rather than a handler filter: it covers handlers added later (a log file,
    Qt's message view) and loggers that do not propagate. The message is formatted here and the
    arguments dropped; a traceback is formatted here too, since its text quotes file names and
    exception messages. Calling it twice changes nothing.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "meddiag_sanitises", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg = printable(record.getMessage(), keep_lines=True)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = printable(
                logging.Formatter().formatException(record.exc_info), keep_lines=True
            )
        if record.stack_info:
            record.stack_info = printable(record.stack_info, keep_lines=True)
        return record

    factory.meddiag_sanitises = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
