"""The .deb's ``Depends``: the system libraries the frozen folder links but does not carry.

Read from the bundle itself, not written by hand: every ELF file's ``DT_NEEDED`` entries (what
the dynamic loader reads; ``meddiag_desktop.app.display_check.elf_needed``) minus the libraries
the folder ships. Each remaining library is mapped to its Debian package by asking dpkg which
package owns it on the build machine (the same kind of system the package is for); a library
the build machine lacks, such as ``libxcb-icccm.so.4`` on a headless builder, is named by
Debian's rule for library packages (``libxcb-icccm4``). These are the libraries Qt's xcb
plugin needs, among others, which the spec deliberately leaves to the system.

    .venv/bin/python packaging/deb_depends.py build/dist/meddiag-desktop
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meddiag_desktop.app.display_check import debian_package, elf_needed  # noqa: E402

# The dynamic loader and libc are Essential in Debian; CUDA comes with the GPU build's own
# instructions (packaging/README.md), never from a Debian dependency.
IMPLIED = re.compile(r"^(ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv)")
GPU_LIBRARIES = re.compile(r"^lib(cuda|cublas|cudnn|cufft|curand|nvinfer|nvonnxparser|nvrtc)")


def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def system_libraries(folder: Path) -> dict[str, list[str]]:
    """Sonames the bundle needs but does not contain -> the bundle files that need them."""
    provided = {p.name for p in folder.rglob("*")}
    needs: dict[str, list[str]] = {}
    for path in elf_files(folder):
        try:
            needed = elf_needed(path)
        except ValueError:
            continue
        for soname in needed:
            if soname not in provided and not IMPLIED.match(soname):
                needs.setdefault(soname, []).append(str(path.relative_to(folder)))
    return needs


def library_paths() -> dict[str, str]:
    """soname -> path, from the dynamic loader's cache (64-bit entries)."""
    done = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False)
    paths = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*(\S+) \((?P<flags>[^)]*)\) => (?P<path>\S+)", line)
        if match and "x86-64" in match["flags"]:
            paths.setdefault(match[1], match["path"])
    return paths


def owning_package(path: str) -> str | None:
    done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
    if done.returncode != 0 or ":" not in done.stdout:
        real = str(Path(path).resolve())
        if real == path:
            return None
        done = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True, check=False)
        if done.returncode != 0 or ":" not in done.stdout:
            return None
    return done.stdout.split(":", 1)[0].split(",")[0].strip()


def depends(folder: Path) -> list[str]:
    paths = library_paths()
    packages = {"libc6"}
    for soname in system_libraries(folder):
        if GPU_LIBRARIES.match(soname):
            continue
        owner = owning_package(paths[soname]) if soname in paths else None
        packages.add(owner or debian_package(soname))
    return sorted(packages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the .deb Depends of a frozen folder")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if not (args.folder / "_internal").is_dir():
        print(f"deb_depends: {args.folder} is not a PyInstaller one-folder build", file=sys.stderr)
        return 2
    print(", ".join(depends(args.folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
