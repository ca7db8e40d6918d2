"""``meddiag-desktop --self-test`` from the source tree, its failure path, the About text and
the shipped folders of a checkout.

The self-test runs in a subprocess through the installed console script, as a user (or
``packaging/build.sh`` on the frozen build) runs it: it makes its own QApplication and exits.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import meddiag_desktop
from meddiag_desktop.app.main_window import about_text
from meddiag_desktop.resource_files import shipped_dir

pytestmark = pytest.mark.gui
REPO_ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "meddiag-desktop"
NOT_A_MEDICAL_DEVICE = "MedDiag Desktop is not a medical device."


def pyproject_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def _user_env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """A user whose home and XDG folders are empty folders under ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_self_test_passes_from_the_source_tree(tmp_path: Path) -> None:
    if not CONSOLE_SCRIPT.is_file():
        pytest.fail(f"no console script {CONSOLE_SCRIPT}: pip install -e '.[dev]' makes it")
    env = _user_env(tmp_path)
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--self-test"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    version = pyproject_version()
    assert len(lines) == 1, done.stdout
    line = lines[0]
    assert line.startswith(f"meddiag-desktop {version} self-test passed (source)"), line
    assert re.search(r"model demo-lung-nodules \S+ on CPU in [\d.]+ s", line), line
    stored = re.search(r"(\d+) finding\(s\) stored", line)
    assert stored and int(stored.group(1)) >= 1, line
    assert "window rendered 1280x800" in line, line
    assert "FAILED" not in done.stderr
    # Its settings and database lived in a temporary folder: the user's home is untouched.
    assert _files_under(Path(env["HOME"])) == []


def test_self_test_without_the_demo_model_fails_and_says_why(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    env = _user_env(tmp_path, MEDDIAG_BUNDLED_MODELS=str(empty))
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--self-test"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    failed = [line for line in done.stderr.splitlines() if "self-test FAILED:" in line]
    assert len(failed) == 1, done.stderr
    assert failed[0].startswith(f"meddiag-desktop {pyproject_version()} self-test FAILED: ")
    assert "demo-lung-nodules" in failed[0] and "none installed" in failed[0], failed[0]
    assert _files_under(Path(env["HOME"])) == []


def test_self_test_that_runs_out_of_time_fails_at_the_step_it_reached(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from meddiag_desktop.app.self_test import run_self_test\n"
        "sys.exit(run_self_test(deadline_s=0.01))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_user_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    failed = [line for line in done.stderr.splitlines() if "self-test FAILED:" in line]
    assert len(failed) == 1, done.stderr
    reason = failed[0].split("self-test FAILED:", 1)[1].strip()
    # The step it was at, then why: "make and load the demo case: no result within 0.01 s".
    assert re.fullmatch(r"[a-z][a-z ]+: no result within [0-9.]+ s", reason), reason


def test_about_text_shows_the_version_and_the_regulatory_statement() -> None:
    version = pyproject_version()
    assert meddiag_desktop.__version__ == version  # the installed metadata is current
    text = about_text()
    assert f"MedDiag Desktop {version}</h3>" in text
    assert NOT_A_MEDICAL_DEVICE in text
    assert "Do not use it for patient care." in text
    assert "(source build)" in text


def test_shipped_folders_resolve_in_the_checkout() -> None:
    resources = shipped_dir("resources")
    models = shipped_dir("models")
    assert resources == REPO_ROOT / "resources"
    assert models == REPO_ROOT / "models"
    assert (resources / "icons" / "meddiag-desktop.svg").is_file()
    card_file = models / "demo_lung_nodules" / "card.toml"
    assert card_file.is_file()
    with open(card_file, "rb") as f:
        card = tomllib.load(f)
    assert card["name"] == "demo-lung-nodules"
    assert card["not_for_clinical_use"] is True
    assert (card_file.parent / card["file"]["onnx"]).is_file()
    with pytest.raises(ValueError, match="unknown shipped folder"):
        shipped_dir("tests")
