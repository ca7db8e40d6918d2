"""Why a de-identification cannot go ahead, in words a user can act on."""

from __future__ import annotations


class DeidError(ValueError):
    """A de-identification the user asked for that cannot be done as asked."""


class BurnedInAnnotationError(DeidError):
    """Source images may show identifying text in their pixels, which no header change removes.

    Refused unless the user confirms (``--allow-burned-in``, or the app's question).
    """
