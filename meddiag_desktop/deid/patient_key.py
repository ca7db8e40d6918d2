"""One patient's de-identification key: the pseudonym, new UIDs and the date offset.

The key is a pseudonym and a random per-patient secret, both kept only in the local database
(``pseudonyms`` table). Everything else is derived from the secret with HMAC-SHA256, so every
export of the patient, today or next year, gets the same new UID for the same original UID
and the same date offset, and nobody without the secret can derive either from the outputs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta

# The offset moves dates back by one to ten years: far enough that a study date in the output
# does not point at the real day, and never into the future.
_MIN_OFFSET_DAYS = 365
_OFFSET_SPAN_DAYS = 3288


@dataclass(frozen=True)
class PatientKey:
    """What de-identifies one patient's objects (see the module docstring)."""

    pseudonym: str  # e.g. ANON-7K3Q9XW2HD: the Patient's Name and Patient ID of the outputs
    secret: str = ""  # hex; random per patient, stored beside the pseudonym

    def __post_init__(self) -> None:
        if not self.pseudonym or len(self.secret) < 32:
            raise ValueError("a patient key needs a pseudonym and a secret of 16 bytes or more")

    def _digest(self, purpose: str, value: str = "") -> bytes:
        message = f"{purpose}\0{value}".encode()
        return hmac.new(bytes.fromhex(self.secret), message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The new UID of ``original``: the same for this patient in every export.

        A ``2.25`` UID (PS3.5 B.2) of a version-8 UUID (RFC 9562, custom) whose 122 free bits
        are the HMAC of the original UID.
        """
        number = int.from_bytes(self._digest("uid", original.strip())[:16], "big")
        number &= ~(0xF << 76)
        number |= 0x8 << 76  # version 8
        number &= ~(0x3 << 62)
        number |= 0x2 << 62  # RFC 4122/9562 variant
        return f"2.25.{number}"

    @property
    def date_offset(self) -> timedelta:
        """Whole days (negative: into the past) every date of this patient moves by."""
        value = int.from_bytes(self._digest("date offset")[:8], "big")
        return timedelta(days=-(_MIN_OFFSET_DAYS + value % _OFFSET_SPAN_DAYS))

    def shift_date(self, day: date) -> date:
        return day + self.date_offset
