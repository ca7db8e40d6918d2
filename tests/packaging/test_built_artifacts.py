"""What ``bash packaging/build.sh`` left in ``build/out``: the .deb, the tarball, the self-test.

These tests read the artifacts of the last build; they do not build. Without a build they skip,
unless ``MEDDIAG_REQUIRE_INSTALLER=1`` (CI runs build.sh first), where a missing build fails.

No ``__init__.py`` in this folder on purpose: ``tests/`` is on ``sys.path`` (its conftest), and
a package ``tests/packaging`` would shadow the ``packaging`` library that pytest and pip use.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "build" / "out"
REPORT = OUT / "build-report.json"
NAME = "meddiag-desktop"
OPT = f"./opt/{NAME}"
INTERNAL = f"{OPT}/_internal"
REQUIRE_ENV = "MEDDIAG_REQUIRE_INSTALLER"

pytestmark = pytest.mark.slow


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


def pyproject_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not REPORT.is_file():
        _missing("run bash packaging/build.sh first")
    return json.loads(REPORT.read_text())


@pytest.fixture(scope="module")
def version(report: dict[str, Any]) -> str:
    return pyproject_version()


@pytest.fixture(scope="module")
def deb(report: dict[str, Any]) -> Path:
    path = OUT / report["deb"]
    assert path.is_file(), f"build-report.json names {path}, which is not there"
    if shutil.which("dpkg-deb") is None:
        _missing("dpkg-deb is not installed (apt-get install dpkg)")
    return path


@pytest.fixture(scope="module")
def deb_entries(deb: Path) -> dict[str, tuple[str, str]]:
    """Path (as ``dpkg-deb -c`` prints it) -> (mode string, symlink target or "")."""
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    entries: dict[str, tuple[str, str]] = {}
    for line in listing.splitlines():
        mode, _owner, _size, _date, _time, rest = line.split(maxsplit=5)
        path, _, target = rest.partition(" -> ") if mode.startswith("l") else (rest, "", "")
        entries[path] = (mode, target)
    return entries


@pytest.fixture(scope="module")
def tar_members(report: dict[str, Any]) -> list[tarfile.TarInfo]:
    path = OUT / report["tarball"]
    assert path.is_file(), f"build-report.json names {path}, which is not there"
    with tarfile.open(path) as tar:
        return tar.getmembers()  # names only: the 200 MB are not extracted


def _files(entries: dict[str, tuple[str, str]]) -> list[str]:
    return [p for p, (mode, _) in entries.items() if not mode.startswith("d")]


# --- build-report.json and the self-test line -------------------------------------------------


def test_report_version_is_the_pyproject_version(report: dict[str, Any], version: str) -> None:
    assert report["version"] == version
    assert report["deb"] == f"{NAME}_{version}_amd64.deb"
    assert report["tarball"] == f"{NAME}-{version}-linux-x86_64.tar.gz"
    assert (OUT / report["deb"]).is_file()
    assert (OUT / report["tarball"]).is_file()


def test_report_says_how_the_network_was_blocked(report: dict[str, Any]) -> None:
    assert isinstance(report["network_guard"], str) and report["network_guard"].strip()
    assert report["install"] in {"scratch", "real"}
    for key in ("folder_mb", "tarball_mb", "deb_mb"):
        assert report[key] > 0, key


def test_installed_copy_passed_its_self_test(report: dict[str, Any], version: str) -> None:
    lines = (OUT / "self-test.txt").read_text().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert report["self_test"] == line
    assert line.startswith(f"{NAME} {version} self-test passed (frozen)"), line
    assert re.search(r"model demo-lung-nodules \S+ on CPU in [\d.]+ s", line), line
    stored = re.search(r"(\d+) finding\(s\) stored", line)
    assert stored and int(stored.group(1)) >= 1, line
    assert re.search(r"window rendered [1-9]\d*x[1-9]\d*", line), line


def test_installed_copy_lists_the_bundled_demo_model() -> None:
    if not REPORT.is_file():
        _missing("run bash packaging/build.sh first")
    text = (OUT / "models-list.txt").read_text()
    assert re.search(r"^\[bundled\] demo-lung-nodules \S+", text, re.MULTILINE), text


# --- the .deb ---------------------------------------------------------------------------------


def test_deb_control_fields(deb: Path, version: str) -> None:
    fields = ["Package", "Version", "Architecture", "Depends"]
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), *fields], capture_output=True, text=True, check=True
    ).stdout
    control = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert control["Package"] == NAME
    assert control["Version"] == version
    assert control["Architecture"] == "amd64"
    depends = {d.strip().split()[0] for d in control["Depends"].split(",")}
    # Qt's xcb platform plugin does not start without these (and pip's PySide6 does not ship them).
    for needed in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1"):
        assert needed in depends, f"Depends lacks {needed}: {control['Depends']}"


def test_deb_installs_the_program_and_its_desktop_integration(
    deb_entries: dict[str, tuple[str, str]],
) -> None:
    for path in (
        f"{OPT}/{NAME}",
        f"./usr/bin/{NAME}",
        "./usr/bin/meddiag",
    ):
        assert path in deb_entries, path
        assert deb_entries[path][0].startswith("-rwx"), f"{path} is not executable"
    assert deb_entries.get(f"{OPT}/meddiag", ("", ""))[0].startswith("l"), "no meddiag symlink"
    assert deb_entries[f"{OPT}/meddiag"][1] == NAME
    for path in (
        f"./usr/share/applications/{NAME}.desktop",
        "./usr/share/metainfo/io.github.meddiag.MedDiagDesktop.metainfo.xml",
        f"./usr/share/doc/{NAME}/copyright",
        f"./usr/share/icons/hicolor/scalable/apps/{NAME}.svg",
    ):
        assert path in deb_entries, path
    pngs = [
        p
        for p in deb_entries
        if re.fullmatch(rf"\./usr/share/icons/hicolor/\d+x\d+/apps/{NAME}\.png", p)
    ]
    assert pngs, "no hicolor PNG icon"


def test_deb_carries_the_demo_model_keys_licences_and_migrations(
    deb_entries: dict[str, tuple[str, str]],
) -> None:
    expected = [
        f"{INTERNAL}/models/demo_lung_nodules/model.onnx",
        f"{INTERNAL}/models/demo_lung_nodules/signature.json",
        f"{INTERNAL}/models/demo_lung_nodules/card.toml",
        f"{INTERNAL}/resources/THIRD_PARTY_LICENSES",
    ]
    public_keys = sorted((REPO_ROOT / "resources" / "keys").glob("*.pub"))
    assert public_keys, "the checkout has no resources/keys/*.pub"
    expected += [f"{INTERNAL}/resources/keys/{key.name}" for key in public_keys]
    migrations = REPO_ROOT / "meddiag_desktop" / "db" / "migrations"
    versions = sorted((migrations / "versions").glob("*.py"))
    assert len(versions) > 1
    expected += [f"{INTERNAL}/meddiag_desktop/db/migrations/env.py"]
    expected += [f"{INTERNAL}/meddiag_desktop/db/migrations/versions/{v.name}" for v in versions]
    missing = [path for path in expected if path not in deb_entries]
    assert not missing, missing


def test_deb_carries_the_qt_platform_plugins(deb_entries: dict[str, tuple[str, str]]) -> None:
    folder = f"{INTERNAL}/PySide6/Qt/plugins/platforms/"
    plugins = {p.removeprefix(folder) for p in deb_entries if p.startswith(folder)}
    assert "libqxcb.so" in plugins, plugins
    assert "libqoffscreen.so" in plugins, plugins
    assert any(re.fullmatch(r"libqwayland.*\.so", p) for p in plugins), plugins


def test_deb_ships_no_private_key_tests_or_dev_tools(
    deb_entries: dict[str, tuple[str, str]],
) -> None:
    bad = []
    for path in _files(deb_entries):
        parts = PurePosixPath(path).parts
        name = parts[-1]
        if "keys" in parts[:-1] and not name.endswith(".pub"):
            bad.append(f"{path}: a key folder file that is not a public key")
        if name.endswith((".pem", ".key")):
            bad.append(f"{path}: key material")
        if "tests" in parts or name == "conftest.py":
            bad.append(f"{path}: tests")
        if any(p.startswith(("torch", "libtorch")) for p in parts):
            bad.append(f"{path}: torch (training only)")
        if any(p.split("-")[0] in {"pytest", "_pytest", "pytestqt", "hypothesis"} for p in parts):
            bad.append(f"{path}: test tooling")
    assert not bad, "\n".join(bad)


# --- the tarball ------------------------------------------------------------------------------


def test_tarball_holds_one_versioned_folder(
    tar_members: list[tarfile.TarInfo], version: str
) -> None:
    top = f"{NAME}-{version}"
    tops = {m.name.split("/", 1)[0] for m in tar_members}
    assert tops == {top}
    by_name = {m.name: m for m in tar_members}
    exe = by_name.get(f"{top}/{NAME}")
    assert exe is not None and exe.isfile() and exe.mode & 0o111, "no executable"
    link = by_name.get(f"{top}/meddiag")
    assert link is not None and link.issym(), "no meddiag symlink"


def test_tarball_symlinks_resolve_inside_it(
    tar_members: list[tarfile.TarInfo], version: str
) -> None:
    """``meddiag -> meddiag-desktop`` too: tar's --transform must not rename link targets."""
    names = {m.name for m in tar_members}
    assert f"{NAME}-{version}/{NAME}" in names
    broken = []
    for member in tar_members:
        if member.issym():
            target = posixpath.normpath(
                posixpath.join(posixpath.dirname(member.name), member.linkname)
            )
            if target not in names:
                broken.append(f"{member.name} -> {member.linkname}")
    assert not broken, broken


def test_tarball_and_deb_carry_the_same_program(
    tar_members: list[tarfile.TarInfo],
    deb_entries: dict[str, tuple[str, str]],
    version: str,
) -> None:
    top = f"{NAME}-{version}/"
    in_tar = {m.name.removeprefix(top) for m in tar_members if m.name.startswith(top)}
    in_deb = {
        p.removeprefix(f"{OPT}/").rstrip("/")
        for p in deb_entries
        if p.startswith(f"{OPT}/") and p != f"{OPT}/"
    }
    assert in_tar == in_deb, (sorted(in_tar - in_deb)[:20], sorted(in_deb - in_tar)[:20])
