"""Ed25519 key pairs for signing model packages: make one, read one, and name it by a key id.

A key pair is two PEM files: ``KEY`` (the private key, PKCS#8, created readable by its owner
only, never overwritten) and ``KEY.pub`` (the public key, SubjectPublicKeyInfo), which is what a
site trusts. The key id is the first 16 hex digits of the sha256 of the raw 32-byte public key:
short enough to read out over the phone, long enough that two keys never share one by chance.
Ed25519 because it is the signature the ``cryptography`` package offers with no parameters to
get wrong; nothing here invents any cryptography.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
PUBLIC_SUFFIX = ".pub"


class ModelKeyError(ValueError):
    """A key file that cannot be used; the message names the file and the problem."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The id signatures and the trust store name a key by."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_from_pem(text: str | bytes, where: Path | str) -> Ed25519PublicKey:
    """Parse a PEM public key; raises ModelKeyError naming ``where`` for anything but Ed25519."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ModelKeyError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ModelKeyError(f"{where}: the key is not an {ALGORITHM} key")
    return key


def read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelKeyError(f"{path}: cannot read the public key ({exc.strerror or exc})") from exc
    if b"PRIVATE KEY" in data:
        raise ModelKeyError(
            f"{path}: this is a private key; trust the public half ({path.name}{PUBLIC_SUFFIX})"
        )
    return public_key_from_pem(data, path)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelKeyError(f"{path}: cannot read the private key ({exc.strerror or exc})") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ModelKeyError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelKeyError(f"{path}: the key is not an {ALGORITHM} key")
    return key


def generate_key_pair(out: Path) -> tuple[Path, Path, str]:
    """Write a new private key to ``out`` (mode 0600) and its public half to ``out.pub``.

    Refuses to overwrite either file: replacing a signing key by accident would leave every
    package signed with it unverifiable. Returns (private path, public path, key id).
    """
    public_path = out.with_name(out.name + PUBLIC_SUFFIX)
    for path in (out, public_path):
        if path.exists():
            raise ModelKeyError(f"{path}: already exists; choose another name (keys are never "
                                "overwritten)")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 in one step, so the key is never readable by others, not even for a moment.
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private)
    public_path.write_text(public_pem(key.public_key()), encoding="ascii")
    return out, public_path, key_id(key.public_key())
