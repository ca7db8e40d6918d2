"""Write THIRD_PARTY_LICENSES: the licence of every library the packaged app bundles.

Collected from the installed distributions' own metadata, never by hand, so it follows the
versions that were really bundled: the runtime requirement closure of ``meddiag-desktop`` (its
``[project] dependencies`` in ``pyproject.toml``, then each installed dependency's
``Requires-Dist`` followed recursively, environment markers evaluated, requested extras such as
``psycopg[binary]`` taken; the dev and train extras are not bundled), plus the Python interpreter
the build embeds. For each:
name, version, the licence it declares (``License-Expression``, else ``License``, else its
trove classifiers) and the full text of every licence/notice file it ships.

    .venv/bin/python packaging/collect_licenses.py build/THIRD_PARTY_LICENSES

A distribution that is required but not installed, or that declares no licence at all, stops
the build with a one-line message (exit 2): shipping a library without its licence is the
mistake this script exists to prevent.
"""

from __future__ import annotations

import argparse
import re
import sys
import sysconfig
import tomllib
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT_DISTRIBUTION = "meddiag-desktop"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
LICENCE_FILE = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)
RULE = "=" * 78
# The libraries' own files say it; the app's frozen folder keeps Qt as replaceable shared
# libraries, which is what the LGPL asks of an application that links Qt dynamically.
QT_NOTE = (
    "Qt and PySide6 are used under the GNU LGPL version 3. They are shipped as separate shared "
    "libraries in the program's folder, which a user may replace with a compatible build; the "
    "source of Qt and PySide6 is available from the Qt Project (qt.io) and on request."
)


class LicenceError(RuntimeError):
    """A bundled distribution is missing or declares no licence."""


def project_table() -> dict:
    """``[project]`` of pyproject.toml: the source of truth (an editable install's metadata can
    predate the newest dependency)."""
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras | {""}
    )


def runtime_closure() -> list[Distribution]:
    """The installed runtime dependencies of this project, recursively, sorted by name."""
    seen: dict[str, Distribution] = {}
    taken: dict[str, set[str]] = {}
    pending = [Requirement(text) for text in project_table()["dependencies"]]
    pending = [r for r in pending if _applies(r, set())]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if name in seen and extras <= taken[name]:
            continue
        try:
            found = seen.get(name) or distribution(name)
        except PackageNotFoundError as exc:
            raise LicenceError(f"{name} is required but not installed") from exc
        seen[name] = found
        taken[name] = taken.get(name, set()) | extras
        for text in found.requires or []:
            dependency = Requirement(text)
            if _applies(dependency, taken[name]):
                pending.append(dependency)
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def declared_licence(dist: Distribution) -> str:
    """What the distribution says its licence is, in its own words (one line)."""
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 120:
        return text
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    if classifiers:
        return "; ".join(classifiers)
    return "see the licence text below" if text else ""


def licence_texts(dist: Distribution) -> list[tuple[str, str]]:
    """(file name, text) of every licence, copying and notice file the distribution ships."""
    texts = []
    for file in dist.files or []:
        if LICENCE_FILE.search(file.name) and not file.name.endswith((".py", ".pyc")):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                texts.append((str(file), path.read_text(encoding="utf-8", errors="replace")))
    long_field = (dist.metadata.get("License") or "").strip()
    if not texts and "\n" in long_field:
        texts.append(("License (metadata field)", long_field))
    return texts


def python_licence() -> tuple[str, str]:
    """The embedded interpreter's licence, from its own installation."""
    for folder in (sysconfig.get_paths()["stdlib"], sys.base_prefix):
        path = Path(folder) / "LICENSE.txt"
        if path.is_file():
            return str(path), path.read_text(encoding="utf-8", errors="replace")
    return "", "Python Software Foundation License Version 2 (PSF-2.0)."


def render() -> str:
    version = project_table()["version"]
    parts = [
        f"MedDiag Desktop {version}: third-party software bundled with this program",
        "Generated by packaging/collect_licenses.py from the installed distributions' metadata.",
        "",
        QT_NOTE,
        "",
    ]
    closure = runtime_closure()
    missing = [
        d.metadata["Name"] for d in closure if not declared_licence(d) and not licence_texts(d)
    ]
    if missing:
        raise LicenceError(f"no licence declared or shipped by: {', '.join(missing)}")
    for dist in closure:
        name_line = f"{dist.metadata['Name']} {dist.version}"
        parts += [RULE, name_line, f"Licence: {declared_licence(dist)}"]
        texts = licence_texts(dist)
        if not texts:
            parts.append(
                "(the distribution ships no licence file; the licence named above applies)"
            )
        for name, text in texts:
            parts += ["", f"--- {name} ---", text.rstrip()]
        parts.append("")
    where, text = python_licence()
    interpreter = ".".join(str(n) for n in sys.version_info[:3])
    parts += [RULE, f"Python {interpreter}", "Licence: PSF-2.0", ""]
    parts += [f"--- {where} ---", text.rstrip()]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="file to write (e.g. build/THIRD_PARTY_LICENSES)")
    args = parser.parse_args(argv)
    try:
        text = render()
    except LicenceError as exc:
        print(f"collect_licenses: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    count = text.count(RULE)
    print(f"wrote {args.out} ({count} distributions, {len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
