"""Regression guard: PySide6 6.12.0 on CPython 3.11 drops a reference to ``True`` per emit.

The process then aborts (``bool_dealloc``) after about a thousand emits, which a slice viewer
reaches within seconds; ``pyproject.toml`` excludes that combination and this test proves it.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal

EMITS = 10_000
ALLOWED_DRIFT = 5


class _Emitter(QObject):
    ticked = Signal()


@pytest.mark.gui
def test_signal_emit_does_not_leak_references_to_true(qapp) -> None:
    emitter = _Emitter()
    received: list[int] = []
    emitter.ticked.connect(lambda: received.append(1))
    before = sys.getrefcount(True)
    for _ in range(EMITS):
        emitter.ticked.emit()
    drift = sys.getrefcount(True) - before
    assert len(received) == EMITS
    assert abs(drift) <= ALLOWED_DRIFT, f"refcount of True drifted by {drift} over {EMITS} emits"
