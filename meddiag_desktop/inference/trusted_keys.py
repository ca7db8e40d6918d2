"""The public keys this workstation accepts model packages from.

Two sources: the project key that ships in ``resources/keys`` (it signs the bundled models, so
it is trusted without asking) and the site's own keys, added by an admin with
``meddiag models trust KEY.pub`` and kept in ``trusted_model_keys.json`` in the user data folder
(``$MEDDIAG_MODEL_TRUST`` names another file, for tests and for sites that manage it centrally).
The file holds the keys themselves, not paths to them, so moving the USB stick a key came on
changes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meddiag_desktop.inference.model_keys import (
    ModelKeyError,
    key_id,
    public_key_from_pem,
    public_pem,
    read_public_key,
)
from meddiag_desktop.resource_files import ShippedFileError, resource_path
from meddiag_desktop.user_folders import user_data_dir

TRUST_FILE = "trusted_model_keys.json"
TRUST_ENV = "MEDDIAG_MODEL_TRUST"
PROJECT_KEY_PARTS = ("keys", "meddiag-project-model-key.pub")
PROJECT_KEY_NAME = "MedDiag Desktop project"
SHIPPED = "shipped"
SITE = "site"


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    name: str
    public_key: Ed25519PublicKey
    source: str  # SHIPPED or SITE
    trusted_at: str = ""  # ISO time, site keys only
    trusted_by: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "source": self.source,
            "trusted_at": self.trusted_at,
            "trusted_by": self.trusted_by,
            "public_key": public_pem(self.public_key),
        }


def trust_file() -> Path:
    configured = os.environ.get(TRUST_ENV)
    return Path(configured) if configured else user_data_dir() / TRUST_FILE


def project_key() -> TrustedKey | None:
    """The shipped project key, or None when this installation lacks it (then the bundled
    models are refused as signed by an untrusted key, which says what is missing)."""
    try:
        path = resource_path(*PROJECT_KEY_PARTS)
    except ShippedFileError:
        return None
    public_key = read_public_key(path)
    return TrustedKey(key_id(public_key), PROJECT_KEY_NAME, public_key, SHIPPED)


class TrustStore:
    """Shipped keys plus the site's file; :meth:`get` is all verification needs."""

    def __init__(self, path: Path | None = None, shipped: tuple[TrustedKey, ...] | None = None):
        self.path = path if path is not None else trust_file()
        if shipped is None:
            found = project_key()
            shipped = (found,) if found is not None else ()
        self.shipped = shipped

    def keys(self) -> list[TrustedKey]:
        site = [k for k in self._site_keys() if k.key_id not in {s.key_id for s in self.shipped}]
        return [*self.shipped, *site]

    def get(self, wanted: str) -> TrustedKey | None:
        return next((k for k in self.keys() if k.key_id == wanted), None)

    def trust(self, public_key_file: Path, name: str, actor: str) -> tuple[TrustedKey, bool]:
        """Add a site key; returns it and whether it is new (trusting a key twice is a no-op)."""
        public_key = read_public_key(public_key_file)
        found = self.get(key_id(public_key))
        if found is not None:
            return found, False
        added = TrustedKey(
            key_id(public_key),
            name,
            public_key,
            SITE,
            datetime.now(UTC).isoformat(timespec="seconds"),
            actor,
        )
        self._write([*self._site_keys(), added])
        return added, True

    def untrust(self, wanted: str) -> TrustedKey:
        """Remove a site key by id; the shipped key cannot be removed here (it ships)."""
        if any(k.key_id == wanted for k in self.shipped):
            raise ModelKeyError(
                f"key {wanted} ships with the app (it signs the bundled models) and cannot be "
                "removed from the trust store"
            )
        site = self._site_keys()
        removed = next((k for k in site if k.key_id == wanted), None)
        if removed is None:
            known = ", ".join(k.key_id for k in self.keys()) or "none"
            raise ModelKeyError(f"{self.path}: no trusted key {wanted} (trusted: {known})")
        self._write([k for k in site if k.key_id != wanted])
        return removed

    def _site_keys(self) -> list[TrustedKey]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["keys"]
            keys = []
            for entry in entries:
                public_key = public_key_from_pem(entry["public_key"], self.path)
                if key_id(public_key) != entry["key_id"]:
                    raise ModelKeyError(
                        f"{self.path}: the entry for key {entry['key_id']} holds another key"
                    )
                keys.append(
                    TrustedKey(
                        entry["key_id"],
                        str(entry.get("name", "")),
                        public_key,
                        SITE,
                        str(entry.get("trusted_at", "")),
                        str(entry.get("trusted_by", "")),
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            # Refusing every site key is the safe failure; say which file to repair.
            raise ModelKeyError(f"{self.path}: the trust store is damaged ({exc})") from exc
        return keys

    def _write(self, keys: list[TrustedKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entries = [{k: v for k, v in key.to_dict().items() if k != "source"} for key in keys]
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"keys": entries}, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.path)
