"""Nothing leaves the machine: switch off the telemetry that libraries carry in native code.

onnxruntime 1.31 (the GPU wheel included) has Microsoft's 1DS telemetry in its native library: a
process that creates a session looks up ``mobile.events.data.microsoft.com`` from several threads
about ten seconds later and queues events under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``.
``onnxruntime.disable_telemetry_events()`` stops neither (measured, ../shared/PITFALLS.md); the
environment variable ``ORT_DISABLE_TELEMETRY=1`` does, but only when it is set before onnxruntime
is first imported, because the library decides once per process. So the package's ``__init__``
calls :func:`switch_off_telemetry` before anything else can import onnxruntime: the CLI, the app,
the frozen app and the tests all import ``meddiag_desktop`` first.

OpenVINO (the CPU runtime, inference/cpu_runtime.py) is worse: ``import openvino`` imports its
model converter, which starts Intel's Google Analytics client (the ``openvino_telemetry``
package, a dependency of the wheel) and, with no consent file in ``~/intel``, counts that as
consent: it writes ``~/intel/openvino_ga_cid`` and forks a process that connects to
``www.google-analytics.com`` (seen with a Python audit hook and strace, openvino 2026.4.1).
OpenVINO falls back to a do-nothing stub when ``openvino_telemetry`` cannot be imported, so the
module is blocked in ``sys.modules`` here, before anything can import openvino.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

# Every switch a bundled library honours, set whatever the user's environment said: a hospital
# workstation must not phone home because someone exported ORT_DISABLE_TELEMETRY=0.
TELEMETRY_SWITCHES = {"ORT_DISABLE_TELEMETRY": "1"}


# Modules that only send telemetry: importing them fails, so their users take their stubs.
BLOCKED_MODULES = ("openvino_telemetry",)


def switch_off_telemetry() -> None:
    """Set the telemetry switches in this process's environment (inherited by its children)
    and block the telemetry-only modules (a None entry makes their import raise ImportError)."""
    os.environ.update(TELEMETRY_SWITCHES)
    for name in BLOCKED_MODULES:
        if sys.modules.get(name) is not None:
            warnings.warn(
                f"{name} was imported before meddiag_desktop; import meddiag_desktop first",
                RuntimeWarning,
                stacklevel=2,
            )
        sys.modules[name] = None  # type: ignore[assignment]
    if "onnxruntime" in sys.modules:
        warnings.warn(
            "onnxruntime was imported before meddiag_desktop, so its telemetry switch may have "
            "been read already; import meddiag_desktop first",
            RuntimeWarning,
            stacklevel=2,
        )


def telemetry_leftovers_dir() -> Path:
    """Where onnxruntime queues its events and keeps a device id when telemetry is on."""
    return Path.home() / ".cache" / "Microsoft" / "DeveloperTools" / ".onnxruntime"


def remove_telemetry_leftovers() -> list[Path]:
    """Delete the event queue and device id an earlier, unprotected run left behind.

    A queue left on disk would be sent by the next onnxruntime process that has telemetry on.
    Empty parent folders that only held it go too. Returns what was removed.
    """
    removed: list[Path] = []
    folder = telemetry_leftovers_dir()
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    for parent in (folder.parent, folder.parent.parent):
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        removed.append(parent)
    return removed
