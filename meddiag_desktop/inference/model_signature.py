"""Signed model packages: ``signature.json`` says who vouches for a model folder's card and ONNX.

A card's sha256 only shows that the ONNX file is the one the card describes; anyone can write
both. A signature shows who made the pair: ``signature.json`` lists the package's files with
their sha256 (a small manifest), the signer's key id and the time, and carries an Ed25519
signature over all of that. The signed message is the document without its ``signature`` field,
as canonical JSON (sorted keys, no spaces, ASCII) after the line ``meddiag-model-signature/1``,
so a verifier rebuilds it byte for byte from what it reads.

:func:`verify_package` is what every run and every ``models add`` goes through. It reuses the
card's own sha256 check for the ONNX file (hashed once), hashes the card, and refuses with the
reason: no signature, a key this site does not trust (named by id), a signature that does not
match, or a file changed since signing (named). :func:`check_package` lets an admin's explicit
choice accept a package whose signature cannot be checked here (none, or an untrusted key), never
one whose signature fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from meddiag_desktop.inference.card import (
    CARD_FILE,
    CardError,
    ModelCard,
    read_card,
    sha256_of,
    verify_onnx,
)
from meddiag_desktop.inference.model_keys import ALGORITHM, ModelKeyError, key_id, read_private_key
from meddiag_desktop.inference.trusted_keys import TrustStore

SIGNATURE_FILE = "signature.json"
FORMAT = "meddiag-model-signature/1"
ALLOW_UNSIGNED_HINT = (
    "an admin can accept it anyway with --allow-unsigned (recorded in the audit trail)"
)


class SignatureProblem(StrEnum):
    UNSIGNED = "unsigned"  # no signature.json
    UNTRUSTED = "untrusted"  # signed, by a key this site does not trust
    INVALID = "invalid"  # the signature or a file does not match: tampered or damaged


class ModelSignatureError(CardError):
    """A model package refused for its signature; ``problem`` says which kind of refusal."""

    def __init__(self, path: Path, problem: SignatureProblem, reason: str) -> None:
        super().__init__(path, [reason])
        self.problem = problem
        self.reason = reason
        self.args = (f"{path}: model refused: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PackageSignature:
    """Who vouches for the model a run used: stored with the run and shown beside its results."""

    signed: bool
    key_id: str = ""
    signer: str = ""  # the name this site trusts the key under
    signed_at: str = ""
    unsigned_reason: str = ""  # for an accepted unsigned package: why it could not be verified

    def describe(self) -> str:
        if self.signed:
            return f"signed by {self.signer} (key {self.key_id}, {self.signed_at[:10]})"
        return f"UNSIGNED model, accepted by an admin's choice ({self.unsigned_reason})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "signed" if self.signed else "unsigned",
            "key_id": self.key_id,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "unsigned_reason": self.unsigned_reason,
        }


def signed_message(document: dict[str, Any]) -> bytes:
    """The exact bytes signed: everything in ``signature.json`` but the signature itself."""
    content = {k: v for k, v in document.items() if k != "signature"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{FORMAT}\n{canonical}".encode("ascii")


def sign_package(folder: Path, private_key_file: Path, signer: str = "") -> dict[str, Any]:
    """Sign ``folder``'s card and ONNX file; writes ``signature.json`` and returns it.

    The card is validated and its sha256 checked first: signing a pair that does not belong
    together would vouch for a broken model.
    """
    key = read_private_key(private_key_file)
    card = read_card(folder)
    verify_onnx(card)
    document: dict[str, Any] = {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "signer": signer or private_key_file.stem,
        "signed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"name": card.name, "version": card.version},
        "files": [
            {"name": CARD_FILE, "sha256": sha256_of(folder / CARD_FILE)},
            {"name": card.onnx_file, "sha256": card.sha256},
        ],
    }
    document["signature"] = base64.b64encode(key.sign(signed_message(document))).decode("ascii")
    partial = folder / f".{SIGNATURE_FILE}.partial"
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / SIGNATURE_FILE)
    return document


def read_signature(folder: Path) -> dict[str, Any] | None:
    """``signature.json`` as written, or None when the folder has none; checks its shape only."""
    path = folder / SIGNATURE_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelSignatureError(
            path, SignatureProblem.INVALID, f"{SIGNATURE_FILE} is not valid JSON ({exc})"
        ) from exc
    problems = _shape_problems(document)
    if problems:
        raise ModelSignatureError(path, SignatureProblem.INVALID, "; ".join(problems))
    return dict(document)


def verify_package(card: ModelCard, trust: TrustStore) -> PackageSignature:
    """The signer of ``card``'s package; raises ModelSignatureError (or CardError) with why not."""
    folder = card.folder
    verify_onnx(card)  # the existing check: the ONNX file is the one the card names
    document = read_signature(folder)
    if document is None:
        raise ModelSignatureError(
            folder,
            SignatureProblem.UNSIGNED,
            f"the package is unsigned (it has no {SIGNATURE_FILE})",
        )
    path = folder / SIGNATURE_FILE
    wanted = document["key_id"]
    trusted = trust.get(wanted)
    if trusted is None:
        raise ModelSignatureError(
            path,
            SignatureProblem.UNTRUSTED,
            f"signed with key {wanted} ('{document.get('signer', '')}'), which this "
            "workstation does not trust (an admin trusts it with: meddiag models trust KEY.pub)",
        )
    try:
        trusted.public_key.verify(base64.b64decode(document["signature"]),
                                  signed_message(document))
    except InvalidSignature as exc:
        raise ModelSignatureError(
            path,
            SignatureProblem.INVALID,
            f"the signature does not match {SIGNATURE_FILE}'s content for key {wanted}: the "
            "file was edited or was not signed with that key",
        ) from exc
    _check_files(card, document["files"], path)
    return PackageSignature(True, wanted, trusted.name, str(document["signed_at"]))


def check_package(card: ModelCard, trust: TrustStore, allow_unsigned: bool) -> PackageSignature:
    """:func:`verify_package`, but an admin's ``allow_unsigned`` accepts an unsigned package or
    one signed by an untrusted key. A signature that fails is refused even then: that package
    was changed after someone vouched for it."""
    try:
        return verify_package(card, trust)
    except ModelSignatureError as exc:
        if not allow_unsigned or exc.problem is SignatureProblem.INVALID:
            if exc.problem is not SignatureProblem.INVALID:
                exc.args = (f"{exc.args[0]}; {ALLOW_UNSIGNED_HINT}",)
            raise
        return PackageSignature(False, unsigned_reason=exc.reason)


def signature_summary(folder: Path, trust: TrustStore) -> str:
    """What ``signature.json`` claims, for listings: read, not verified (no file is hashed;
    :func:`verify_package` does that when the model is added and before every run)."""
    try:
        document = read_signature(folder)
    except ModelSignatureError as exc:
        return f"signature unusable: {exc.reason}"
    if document is None:
        return "unsigned"
    try:
        trusted = trust.get(document["key_id"])
    except ModelKeyError as exc:
        return f"cannot be checked: {exc}"
    if trusted is None:
        return f"signed with key {document['key_id']}, which is not trusted here"
    return f"signed by {trusted.name} (key {trusted.key_id}, {document['signed_at'][:10]})"


def _check_files(card: ModelCard, files: list[dict[str, str]], path: Path) -> None:
    signed = {entry["name"]: entry["sha256"] for entry in files}
    for required in (CARD_FILE, card.onnx_file):
        if required not in signed:
            raise ModelSignatureError(
                path, SignatureProblem.INVALID, f"{SIGNATURE_FILE} does not cover {required}"
            )
    for name, expected in signed.items():
        target = card.folder / name
        if not target.is_file():
            raise ModelSignatureError(
                path, SignatureProblem.INVALID, f"{name}, signed in {SIGNATURE_FILE}, is missing"
            )
        # The ONNX file was hashed by verify_onnx already: card.sha256 is its actual sha256.
        actual = card.sha256 if name == card.onnx_file else sha256_of(target)
        if actual != expected:
            raise ModelSignatureError(
                path,
                SignatureProblem.INVALID,
                f"{name} has changed since the package was signed (sha256 {actual}, signed "
                f"{expected})",
            )


def _shape_problems(document: object) -> list[str]:
    if not isinstance(document, dict):
        return [f"{SIGNATURE_FILE} must hold a JSON object"]
    problems = []
    if document.get("format") != FORMAT:
        problems.append(f"'format' must be {FORMAT!r}, got {document.get('format')!r}")
    if document.get("algorithm") != ALGORITHM:
        problems.append(
            f"'algorithm' {document.get('algorithm')!r} is not supported (only {ALGORITHM})"
        )
    for field_name in ("key_id", "signed_at", "signature"):
        if not isinstance(document.get(field_name), str):
            problems.append(f"'{field_name}' is missing or not text")
    try:
        if len(base64.b64decode(str(document.get("signature", "")), validate=True)) != 64:
            problems.append("'signature' must be 64 bytes, base64")
    except (binascii.Error, ValueError):
        problems.append("'signature' is not base64")
    files = document.get("files")
    if not isinstance(files, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("sha256"), str)
        for entry in files
    ):
        problems.append("'files' must be a list of {name, sha256}")
    else:
        for entry in files:
            name = entry["name"]
            # Only files of the package itself: never a path that leaves the folder.
            if not name or Path(name).name != name or name in (".", ".."):
                problems.append(f"'files' names {name!r}, which is not a file of the folder")
    return problems
