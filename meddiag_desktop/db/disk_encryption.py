"""Is the folder holding the case database on an encrypted disk? (``meddiag db info``)

The app's own encryption (SQLCipher, sealed masks) covers the database and its masks; the
operating system's full-disk encryption also covers everything else on the disk: the imported
scans, exports, logs, swap, temporary files. docs/threat-model.md says why both matter.

- Linux (tested here): the mount holding the folder is found in ``/proc/self/mountinfo`` (the
  longest mount point above it, the last one mounted there); its block device's sysfs entry
  (``/sys/dev/block/MAJOR:MINOR``) is walked down through ``slaves/`` (LVM, RAID) and the disk is
  encrypted when every path down passes a device-mapper device whose ``dm/uuid`` starts with
  ``CRYPT-`` (dm-crypt: ``CRYPT-LUKS2-...``, ``CRYPT-PLAIN-...``). eCryptfs and the FUSE
  encrypting file systems count as encrypted; tmpfs is memory, not disk; overlay, network and
  ZFS mounts are reported as unknown (the host, server or ``zfs get encryption`` decides).
- Windows (not tested here): ``manage-bde -status C:`` (BitLocker; needs an administrator,
  otherwise unknown). macOS (not tested here): ``fdesetup status`` (FileVault).

A self-encrypting drive (OPAL) cannot be seen from here: it reports as not encrypted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

_ENCRYPTING_FILE_SYSTEMS = {
    "ecryptfs": "eCryptfs",
    "fuse.gocryptfs": "gocryptfs",
    "fuse.cryfs": "CryFS",
    "fuse.encfs": "EncFS",
    "fuse.securefs": "securefs",
}
_MEMORY_FILE_SYSTEMS = {"tmpfs", "ramfs"}
_UNKNOWABLE_FILE_SYSTEMS = {
    "overlay": "an overlay file system (a container): the host's disk decides",
    "nfs": "a network share: the server decides",
    "nfs4": "a network share: the server decides",
    "cifs": "a network share: the server decides",
    "smb3": "a network share: the server decides",
    "fuse.sshfs": "a network share: the server decides",
    "zfs": "ZFS: ask 'zfs get encryption' for the dataset",
    "9p": "a shared folder of a virtual machine: the host decides",
    "virtiofs": "a shared folder of a virtual machine: the host decides",
}
_COMMAND_TIMEOUT_S = 10


class DiskEncryptionState(StrEnum):
    ENCRYPTED = "encrypted"
    NOT_ENCRYPTED = "not encrypted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DiskEncryption:
    state: DiskEncryptionState
    detail: str  # how it was found, for a person

    def __str__(self) -> str:
        return f"{self.state.value} ({self.detail})"


@dataclass(frozen=True)
class _Mount:
    mount_point: str
    device: str  # "MAJOR:MINOR"
    fs_type: str
    source: str


def disk_encryption(folder: Path) -> DiskEncryption:
    """Whether ``folder`` (or its nearest existing parent) lies on an encrypted disk."""
    if sys.platform.startswith("linux"):
        return linux_disk_encryption(folder)
    if sys.platform == "win32":
        return _windows(folder)
    if sys.platform == "darwin":
        return _macos()
    return DiskEncryption(DiskEncryptionState.UNKNOWN, f"no check for {sys.platform}")


def linux_disk_encryption(
    folder: Path, mountinfo: Path = Path("/proc/self/mountinfo"), sysfs: Path = Path("/sys")
) -> DiskEncryption:
    """The Linux check of the module docstring (``mountinfo`` and ``sysfs`` for the tests)."""
    existing = folder.expanduser().absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        mount = _mount_of(existing.resolve(), mountinfo.read_text(encoding="utf-8"))
    except OSError as exc:
        return DiskEncryption(DiskEncryptionState.UNKNOWN, f"cannot read {mountinfo}: {exc}")
    if mount is None:
        return DiskEncryption(DiskEncryptionState.UNKNOWN, "no mount found for the folder")
    where = f"{mount.mount_point} on {mount.source} ({mount.fs_type})"
    if mount.fs_type in _ENCRYPTING_FILE_SYSTEMS:
        return DiskEncryption(
            DiskEncryptionState.ENCRYPTED, f"{where}: {_ENCRYPTING_FILE_SYSTEMS[mount.fs_type]}"
        )
    if mount.fs_type in _MEMORY_FILE_SYSTEMS:
        return DiskEncryption(DiskEncryptionState.UNKNOWN, f"{where}: in memory, not on a disk")
    if mount.fs_type in _UNKNOWABLE_FILE_SYSTEMS:
        return DiskEncryption(
            DiskEncryptionState.UNKNOWN, f"{where}: {_UNKNOWABLE_FILE_SYSTEMS[mount.fs_type]}"
        )
    device = mount.device
    if device.startswith("0:") and mount.source.startswith("/dev/"):
        try:  # btrfs and others mount an anonymous device: the source names the real one
            number = os.stat(mount.source).st_rdev
            device = f"{os.major(number)}:{os.minor(number)}"
        except OSError:
            pass
    entry = sysfs / "dev" / "block" / device
    if not entry.exists():
        return DiskEncryption(DiskEncryptionState.UNKNOWN, f"{where}: not a block device")
    crypt = _crypt_devices(entry.resolve(), set())
    if crypt is None:
        return DiskEncryption(
            DiskEncryptionState.NOT_ENCRYPTED, f"{where}: no dm-crypt/LUKS device below it"
        )
    return DiskEncryption(DiskEncryptionState.ENCRYPTED, f"{where}: dm-crypt {', '.join(crypt)}")


def _mount_of(path: Path, mountinfo: str) -> _Mount | None:
    best: _Mount | None = None
    text = str(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        dash = fields.index("-")
        point = _unescape(fields[4])
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        # Among mounts above the path, the deepest wins; at the same point, the last mounted.
        if inside and (best is None or len(point) >= len(best.mount_point)):
            source = _unescape(fields[dash + 2]) if len(fields) > dash + 2 else ""
            best = _Mount(point, fields[2], fields[dash + 1], source)
    return best


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _crypt_devices(entry: Path, seen: set[Path]) -> list[str] | None:
    """The dm-crypt devices covering every path down from ``entry``; None when one path has
    none."""
    if entry in seen:
        return None
    seen.add(entry)
    uuid_file = entry / "dm" / "uuid"
    try:
        uuid = uuid_file.read_text(encoding="ascii").strip()
    except OSError:
        uuid = ""
    if uuid.startswith("CRYPT-"):
        kind = uuid.split("-")[1] if uuid.count("-") >= 1 else "CRYPT"
        return [f"{entry.name} ({kind})"]
    slaves = sorted((entry / "slaves").glob("*")) if (entry / "slaves").is_dir() else []
    if not slaves:
        return None
    found: list[str] = []
    for slave in slaves:
        below = _crypt_devices(slave.resolve(), seen)
        if below is None:
            return None
        found += below
    return found


def parse_manage_bde(output: str) -> DiskEncryption:
    """BitLocker's state from ``manage-bde -status C:`` (English output)."""
    protection = re.search(r"Protection Status:\s*(.+)", output)
    conversion = re.search(r"Conversion Status:\s*(.+)", output)
    if protection is None:
        return DiskEncryption(DiskEncryptionState.UNKNOWN, "manage-bde gave no protection status")
    status = protection.group(1).strip()
    converted = conversion.group(1).strip() if conversion else "?"
    detail = f"BitLocker: {status}, {converted}"
    if status.lower().startswith("protection on") and "fully encrypted" in converted.lower():
        return DiskEncryption(DiskEncryptionState.ENCRYPTED, detail)
    return DiskEncryption(DiskEncryptionState.NOT_ENCRYPTED, detail)


def parse_fdesetup(output: str) -> DiskEncryption:
    """FileVault's state from ``fdesetup status``."""
    line = output.strip().splitlines()[0] if output.strip() else ""
    if "FileVault is On" in line:
        return DiskEncryption(DiskEncryptionState.ENCRYPTED, line)
    if "FileVault is Off" in line:
        return DiskEncryption(DiskEncryptionState.NOT_ENCRYPTED, line)
    return DiskEncryption(DiskEncryptionState.UNKNOWN, line or "fdesetup said nothing")


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _windows(folder: Path) -> DiskEncryption:
    drive = folder.expanduser().absolute().drive or "C:"
    output = _run(["manage-bde", "-status", drive])
    if output is None:
        return DiskEncryption(
            DiskEncryptionState.UNKNOWN,
            f"'manage-bde -status {drive}' needs an administrator: see Settings, Privacy & "
            "security, Device encryption",
        )
    return parse_manage_bde(output)


def _macos() -> DiskEncryption:
    output = _run(["fdesetup", "status"])
    if output is None:
        return DiskEncryption(DiskEncryptionState.UNKNOWN, "'fdesetup status' did not answer")
    return parse_fdesetup(output)
