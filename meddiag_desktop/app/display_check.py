"""Before Qt starts: is there a display, and can Qt's X11 (xcb) plugin load its libraries?

When the xcb plugin cannot start, Qt prints "xcb-cursor0 or libxcb-cursor0 is needed" and
aborts, whatever is really wrong: no display at all, or another xcb library missing (on a bare
Debian it was ``libxcb-icccm4``). A new user then installs a package they already have. So the
app checks first and says what is wrong: no display (with how to run offscreen), or which
libraries the plugin needs that this system lacks, with the Debian package of each.

The libraries are read from the plugin itself (the ``DT_NEEDED`` entries of its ELF dynamic
section, which is what the dynamic loader reads), so the list follows the Qt build installed;
a fixed list is the fallback when the plugin file cannot be found or read. Nothing here imports
Qt's GUI modules: loading them is what could abort.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

EXIT_NO_DISPLAY = 2
XCB_PLUGIN = "libqxcb.so"
XCB_QPA_LIBRARY = "libQt6XcbQpa.so.6"  # the plugin's body: most of the xcb libraries are its
# What Qt 6's xcb plugin and libQt6XcbQpa need outside Qt, for when they cannot be read.
FALLBACK_XCB_LIBRARIES = (
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-util.so.1", "libxcb-image.so.0",
    "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render-util.so.0", "libxcb-shm.so.0",
    "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb-render.so.0", "libxcb-shape.so.0",
    "libxcb-xkb.so.1", "libxcb.so.1", "libX11-xcb.so.1", "libX11.so.6", "libxkbcommon.so.0",
    "libxkbcommon-x11.so.0", "libGL.so.1",
)  # fmt: skip
NO_DISPLAY_TEXT = (
    "meddiag-desktop: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
    "Start it from a desktop session (or over ssh -X), or without a screen with "
    "QT_QPA_PLATFORM=offscreen meddiag-desktop ..."
)

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
_SONAME = re.compile(r"^(?P<base>.+?)\.so(?:\.(?P<major>\d+))?")


@dataclass(frozen=True)
class MissingLibrary:
    """A library the plugin needs that the dynamic loader could not open, and why."""

    soname: str
    reason: str

    @property
    def debian_package(self) -> str:
        return debian_package(self.soname)


def debian_package(soname: str) -> str:
    """The Debian package that ships a library, by Debian's naming rule for shared libraries:
    the name before ``.so``, lower-cased, then the major version (after a hyphen when the name
    ends in a digit): ``libxcb-icccm.so.4`` is ``libxcb-icccm4``, ``libxkbcommon-x11.so.0``
    is ``libxkbcommon-x11-0``."""
    match = _SONAME.match(soname)
    if match is None:
        return soname
    base, major = match["base"].lower(), match["major"] or ""
    if not major:
        return base
    return f"{base}-{major}" if base[-1].isdigit() else f"{base}{major}"


def elf_needed(path: Path) -> list[str]:
    """The libraries an ELF file names as ``DT_NEEDED``, in its order (what ``ldd`` starts from).

    Raises ValueError when the file is not an ELF shared object this function understands.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError(f"{path}: not an ELF file")
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    header = struct.unpack_from(order + ("HHIQQQIHHH" if wide else "HHIIIIIHHH"), data, 16)
    phoff, phentsize, phnum = header[4], header[8], header[9]
    segment = order + ("IIQQQQQQ" if wide else "IIIIIIII")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None  # (offset, filesz)
    for index in range(phnum):
        fields = struct.unpack_from(segment, data, phoff + index * phentsize)
        if wide:
            p_type, _flags, offset, vaddr, _paddr, filesz = fields[:6]
        else:
            p_type, offset, vaddr, _paddr, filesz = fields[:5]
        if p_type == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        raise ValueError(f"{path}: no dynamic section (a static file?)")
    entry = order + ("qQ" if wide else "iI")
    size = struct.calcsize(entry)
    needed: list[int] = []
    strtab_vaddr = None
    for position in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(entry, data, position)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed.append(value)
        elif tag == _DT_STRTAB:
            strtab_vaddr = value
    strtab = _file_offset(loads, strtab_vaddr) if strtab_vaddr is not None else None
    if strtab is None:
        raise ValueError(f"{path}: its string table is outside the file")
    names = []
    for name_offset in needed:
        start = strtab + name_offset
        names.append(data[start : data.index(b"\0", start)].decode("ascii", "replace"))
    return names


def _file_offset(loads: Sequence[tuple[int, int, int]], vaddr: int) -> int | None:
    """Where in the file a loaded address lies (the dynamic section speaks in addresses)."""
    for start, offset, size in loads:
        if start <= vaddr < start + size:
            return offset + vaddr - start
    return None


def xcb_plugin_libraries(plugins_dir: Path, qt_lib_dir: Path) -> list[str]:
    """What the xcb plugin and its ``libQt6XcbQpa`` need that Qt does not ship itself."""
    files = (plugins_dir / "platforms" / XCB_PLUGIN, qt_lib_dir / XCB_QPA_LIBRARY)
    try:
        names = [name for path in files for name in elf_needed(path)]
    except (OSError, ValueError, struct.error):
        return list(FALLBACK_XCB_LIBRARIES)
    shipped = {p.name for p in qt_lib_dir.iterdir()} if qt_lib_dir.is_dir() else set()
    return list(dict.fromkeys(n for n in names if n not in shipped))


def missing_libraries(sonames: Iterable[str]) -> list[MissingLibrary]:
    """The libraries the dynamic loader cannot open, each with the loader's reason.

    Opening them is what Qt is about to do anyway; one that loads stays loaded, harmlessly.
    """
    missing = []
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
        except OSError as exc:
            missing.append(MissingLibrary(soname, str(exc)))
    return missing


def missing_libraries_text(missing: Sequence[MissingLibrary]) -> str:
    names = ", ".join(m.soname for m in missing)
    packages = " ".join(dict.fromkeys(m.debian_package for m in missing))
    return (
        f"meddiag-desktop: Qt's X11 (xcb) display plugin cannot start: this system lacks "
        f"{names}.\nInstall them (Debian/Ubuntu: sudo apt install {packages}), or run without "
        "a screen with QT_QPA_PLATFORM=offscreen meddiag-desktop ..."
    )


def requested_platform(qt_args: Sequence[str], env: Mapping[str, str]) -> str:
    """The Qt platform plugin Qt will try first: ``-platform NAME`` or ``QT_QPA_PLATFORM``
    (whose ``a;b`` lists fall back in order, ``name:options`` carry options); "" when unset."""
    value = env.get("QT_QPA_PLATFORM", "")
    for index, arg in enumerate(qt_args[:-1]):
        if arg in ("-platform", "--platform"):
            value = qt_args[index + 1]
    return value.split(";")[0].split(":")[0].strip()


def display_problem(
    qt_args: Sequence[str],
    env: Mapping[str, str],
    libraries: Iterable[str] | None = None,
    platform: str = sys.platform,
) -> str | None:
    """What keeps Qt's xcb plugin from starting, in words for the user; None when nothing does
    (or when another platform plugin, such as offscreen or wayland, will be used).

    ``libraries`` defaults to what the installed plugin needs (read lazily: only when there is
    a display to check them for).
    """
    chosen = requested_platform(qt_args, env)
    if chosen and chosen != "xcb":
        return None
    if not chosen and (not platform.startswith("linux") or env.get("WAYLAND_DISPLAY")):
        return None  # not X11 by default, or a Wayland session Qt will use first
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return NO_DISPLAY_TEXT
    if libraries is None:
        libraries = _installed_xcb_libraries()
    missing = missing_libraries(libraries)
    if missing:
        return missing_libraries_text(missing)
    display = env.get("DISPLAY", "")
    if display and not env.get("WAYLAND_DISPLAY") and not x_server_answers(display):
        return (
            f"meddiag-desktop: cannot connect to the X display {display!r} (DISPLAY): is the "
            "X server running and may this user use it?\nOr run without a screen with "
            "QT_QPA_PLATFORM=offscreen meddiag-desktop ..."
        )
    return None


def x_server_answers(display: str) -> bool:
    """Whether an X server accepts a connection on ``display`` (what Qt's plugin does first);
    True when libxcb cannot be asked, so this check never stops a start it cannot judge."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error object at worst
    try:
        return bool(connection) and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection:
            xcb.xcb_disconnect(connection)


def _installed_xcb_libraries() -> list[str]:
    from PySide6.QtCore import QLibraryInfo  # QtCore only: it loads no platform plugin

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    libs = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath))
    return xcb_plugin_libraries(plugins, libs)


def check_display(qt_args: Sequence[str]) -> int | None:
    """Print what keeps the app from opening a window and return the exit code; None if fine."""
    problem = display_problem(qt_args, os.environ)
    if problem is None:
        return None
    print(problem, file=sys.stderr)
    return EXIT_NO_DISPLAY
