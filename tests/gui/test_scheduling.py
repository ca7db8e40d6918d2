"""The app starts a session of its own (its own CPU share under Linux's autogroup scheduler)
when launched without a terminal, and leaves a terminal's job control alone (issue 17, item 3).

Each case runs in a child process: starting a session in the test process itself would detach
pytest from its terminal.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="sessions decide the CPU share on Linux only"
)

PROBE = """
import json, os, sys
from meddiag_desktop.app import scheduling
if sys.argv[1] == "terminal":
    scheduling._started_from_a_terminal = lambda: True
before = os.getsid(0)
done = scheduling.use_own_scheduling_group()
print(json.dumps({"done": done, "before": before, "after": os.getsid(0), "pid": os.getpid()}))
"""


def probe(case: str, **popen: object) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, case],
        stdin=subprocess.DEVNULL,  # as from a desktop launcher: no terminal on stdin
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        **popen,  # type: ignore[arg-type]
    )
    answer: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_launched_without_a_terminal_it_leads_a_session_of_its_own() -> None:
    answer = probe("launcher")
    assert answer["done"] is True
    assert answer["after"] == answer["pid"] != answer["before"]


def test_from_a_terminal_it_keeps_the_terminals_session() -> None:
    answer = probe("terminal")
    assert answer["done"] is False and answer["after"] == answer["before"]


def test_a_session_leader_stays_as_it_is() -> None:
    answer = probe("leader", start_new_session=True)
    assert answer["done"] is False and answer["after"] == answer["before"] == answer["pid"]


def test_a_process_group_leader_cannot_and_does_not_fail() -> None:
    answer = probe("group-leader", process_group=0)
    assert answer["done"] is False and answer["after"] == answer["before"]
