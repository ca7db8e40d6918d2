"""Mask files of an encrypted database: AES-256-GCM envelopes around the ``.nii.gz`` bytes.

The cipher is the ``cryptography`` package's AESGCM (no cipher of our own). The key is the
database's mask-file key (HKDF of its master key, :mod:`.encryption_keys`). A file is::

    b"MDMASK-E"   8-byte magic
    0x01          format version
    12 bytes      a fresh random nonce for this file (never reused: 96 random bits per write)
    ...           AES-256-GCM ciphertext of the NIfTI bytes, with its 16-byte tag

The magic and version are the associated data, so they are authenticated too. The file keeps
its ``NAME.nii.gz`` name; its first bytes say whether it is sealed, so a masks folder half
converted by an interrupted ``meddiag db encrypt`` is still read whole.

The sha256 stored with each mask row is the sha256 of the NIfTI bytes (the plaintext), so
encrypting a database's masks changes no row, and a plain file and its sealed form verify
against the same row. GCM's tag already refuses any changed byte; the sha256 also catches a
sealed file swapped for another sealed file of the same database.

SimpleITK reads and writes files only, so the plaintext NIfTI passes through a private
scratch folder (:func:`plaintext_scratch`): in RAM (``/dev/shm``) where the system has it, else
the system's temporary folder (see docs/threat-model.md), and is removed at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from meddiag_desktop.db import errors

MAGIC = b"MDMASK-E"
VERSION = 1
_HEADER = MAGIC + bytes([VERSION])
_NONCE_BYTES = 12
_RAM_FOLDER = Path("/dev/shm")


class MaskCipher:
    """Seals and opens mask files with one database's mask-file key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise ValueError("the mask-file key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "MaskCipher(<secret>)"

    def seal(self, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _HEADER + nonce + self._aead.encrypt(nonce, plaintext, _HEADER)

    def open(self, sealed: bytes, where: Path) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not is_sealed(sealed) or len(sealed) < len(_HEADER) + _NONCE_BYTES + 16:
            raise errors.MaskIntegrityError(f"the mask file {where} is not a sealed mask file")
        start = len(_HEADER)
        nonce = sealed[start : start + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[start + _NONCE_BYTES :], _HEADER)
        except InvalidTag:
            raise errors.MaskIntegrityError(
                f"the mask file {where} has changed since it was saved, or was sealed with "
                "another database's key (AES-GCM authentication failed)"
            ) from None


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def file_is_sealed(path: Path) -> bool:
    with open(path, "rb") as handle:
        return is_sealed(handle.read(len(MAGIC)))


def read_content(path: Path, cipher: MaskCipher | None) -> bytes:
    """The NIfTI bytes of a mask file, sealed or plain. Raises OSError as ``open`` does."""
    data = path.read_bytes()
    if not is_sealed(data):
        return data
    if cipher is None:
        raise errors.MaskIntegrityError(
            f"the mask file {path} is encrypted, but the database was not opened with a key"
        )
    return cipher.open(data, path)


def content_sha256(path: Path, cipher: MaskCipher | None) -> str:
    """The sha256 of the mask's NIfTI bytes (what the mask rows store), sealed or plain."""
    return hashlib.sha256(read_content(path, cipher)).hexdigest()


def write_sealed(path: Path, plaintext: bytes, cipher: MaskCipher) -> None:
    """Write ``plaintext`` sealed to the new file ``path`` (owner only), fsynced (the caller
    renames it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with open(fd, "wb") as handle:
        handle.write(cipher.seal(plaintext))
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def plaintext_scratch() -> Iterator[Path]:
    """A private (0700) folder for SimpleITK's plaintext files, in RAM where possible."""
    base = _RAM_FOLDER if _RAM_FOLDER.is_dir() and os.access(_RAM_FOLDER, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="meddiag-mask-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
