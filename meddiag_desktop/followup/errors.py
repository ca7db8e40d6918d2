"""What the follow-up comparison raises for problems a user can cause, and its cancel signal."""

from __future__ import annotations


class FollowUpError(ValueError):
    """The two cases cannot be compared as asked; the one-line message says why."""


class RegistrationCancelled(Exception):
    """The user cancelled the registration; nothing was stored."""
