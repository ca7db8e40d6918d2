"""Text folding for the worklist: one normal form for names, IDs and free-text search.

DICOM person names look like ``DOE^JOHN``; users type ``doe j``. Folding (Unicode NFKC,
case-folded, ``^`` as a space, runs of spaces as one) makes both the same, and a prefix becomes a
half-open range ``[prefix, prefix+1)`` that a plain B-tree index answers on SQLite and (with the
"C" collation on those columns) on PostgreSQL alike.
"""

from __future__ import annotations

import unicodedata


def fold(*parts: str) -> str:
    """The searchable form of some text; keep in step with migration 0002's frozen copy."""
    text = unicodedata.normalize("NFKC", " ".join(p for p in parts if p)).casefold()
    return " ".join(text.replace("^", " ").split())


def prefix_range(prefix: str) -> tuple[str, str] | None:
    """(low, high) with low <= folded text < high exactly for texts starting with ``prefix``."""
    low = fold(prefix)
    if not low:
        return None
    last = ord(low[-1])
    step = 2 if 0xD7FF <= last < 0xDFFF else 1  # skip the surrogate block
    return low, low[:-1] + chr(min(last + step, 0x10FFFF))
