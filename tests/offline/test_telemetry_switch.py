"""The telemetry switch is thrown by importing the package, whatever the environment said."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meddiag_desktop.offline import remove_telemetry_leftovers, telemetry_leftovers_dir

SWITCH = "ORT_DISABLE_TELEMETRY"


def test_importing_the_package_switches_onnxruntime_telemetry_off() -> None:
    env = {**os.environ, SWITCH: "0"}
    done = subprocess.run(
        [sys.executable, "-c", f"import os, meddiag_desktop; print(os.environ[{SWITCH!r}])"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert done.stdout.strip() == "1"


def test_onnxruntime_imported_first_is_warned_about() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import onnxruntime, meddiag_desktop"],
        capture_output=True, text=True, check=True,
    )
    assert "imported before meddiag_desktop" in done.stderr


def test_leftover_event_queue_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    queue = telemetry_leftovers_dir()
    queue.mkdir(parents=True)
    (queue / "deviceid").write_text("x")
    (queue / "onnxruntime.db").write_bytes(b"events")
    removed = remove_telemetry_leftovers()
    assert queue in removed
    assert not (tmp_path / ".cache" / "Microsoft").exists()
    assert (tmp_path / ".cache").is_dir()  # the user's cache folder itself stays


def test_other_microsoft_folders_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    queue = telemetry_leftovers_dir()
    queue.mkdir(parents=True)
    other = queue.parent / "dotnet"
    other.mkdir()
    remove_telemetry_leftovers()
    assert other.is_dir() and not queue.exists()
