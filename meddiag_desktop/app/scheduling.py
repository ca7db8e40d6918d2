"""The app's share of a busy CPU: a scheduling group of its own, as a terminal gives the CLI.

Linux's default scheduler (with ``CONFIG_SCHED_AUTOGROUP``, on in the major distributions'
kernels) shares the CPU fairly between sessions first and between threads only within a
session. Every terminal starts a session, so ``meddiag infer`` typed into one gets a whole
session's share however many busy processes run elsewhere. An app started by a desktop
launcher without per-app cgroups, or from a script, joins the session of everything else
started that way, and its two model threads then count against every busy thread in that
session. Measured on the 2-core development machine: two busy loops in one session got 3.1 s of
CPU each in 6 s while one loop in a session of its own got 5.75 s; and with 4 busy loops in the
session the app was started in (bench/app_vs_cli.py), the same demo run took 1.54x the CLI's
time in the app as it was, 0.99x in the app in its own session (the same CPU seconds in all).

So a freshly started app that does not lead a session already starts its own (``setsid``),
unless it was started from a terminal, whose job control (Ctrl+C, ``fg``) then keeps working.
Nothing changes on other systems or where the call is refused (a process-group leader).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def use_own_scheduling_group() -> bool:
    """Start a new session so the kernel schedules this app as its own group; True if done."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setsid"):
        return False
    if os.getsid(0) == os.getpid():
        return False  # leads its session already (as a terminal's shell does)
    if _started_from_a_terminal():
        return False
    try:
        os.setsid()
    except OSError as exc:  # EPERM: a process-group leader cannot start a session
        log.info("the app shares its session's CPU share (new session refused: %s)", exc)
        return False
    log.info("the app runs in a session of its own (its own share of a busy CPU)")
    return True


def _started_from_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # no stdin at all, or a closed one
        return False
