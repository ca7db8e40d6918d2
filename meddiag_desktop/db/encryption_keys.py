"""The key of an encrypted case database: from a passphrase (argon2id) or the OS keyring.

An encrypted SQLite database (SQLCipher) has a small, non-secret header file beside it,
``meddiag.sqlite3.keyinfo`` (JSON): the KDF and its parameters, a random per-database salt and
a key check value. Nothing in it helps an attacker beyond what the KDF allows: the check value
is an HKDF output of the derived key, so it only lets *this* app say "wrong passphrase" at
once instead of SQLCipher's "file is not a database".

Keys (all 32 bytes):

- the *master key* = argon2id(passphrase, salt) with the parameters in the key file (RFC 9106's
  second recommendation by default: 3 passes over 64 MiB, 4 lanes; ~0.2 s here);
- the SQLCipher page key = HKDF-SHA256(master, info "...sqlcipher page key"), handed to SQLCipher
  as a raw key (``PRAGMA key = "x'...'"``), so SQLCipher's own PBKDF2 does not run again on every
  new connection;
- the mask-file key = HKDF-SHA256(master, info "...mask files") for AES-256-GCM
  (:mod:`.mask_encryption`);
- the check value = the first 16 bytes of HKDF-SHA256(master, info "...key check").

A database is *encrypted* when its key file exists and its first bytes are not SQLite's plain
header (:func:`is_encrypted`): the header decides, so a key file left by an interrupted
``meddiag db encrypt`` beside a still-plain database changes nothing.

The passphrase reaches the app through ``$MEDDIAG_DB_PASSPHRASE``, the CLI's prompt, the GUI's
dialog, or the OS keyring (which stores the master key, not the passphrase; optional: the
``keyring`` package, and a backend, which headless Linux lacks).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meddiag_desktop.db import errors

KEYINFO_SUFFIX = ".keyinfo"
PASSPHRASE_ENVIRONMENT_VARIABLE = "MEDDIAG_DB_PASSPHRASE"
KEYRING_SERVICE = "MedDiag Desktop database key"
PLAIN_SQLITE_HEADER = b"SQLite format 3\x00"
MIN_PASSPHRASE_LENGTH = 10
_FORMAT = "meddiag-desktop-keyinfo"
_FORMAT_VERSION = 1
_SALT_BYTES = 16
_CHECK_BYTES = 16
_HKDF_INFO_SQLCIPHER = b"meddiag-desktop v1 sqlcipher page key"
_HKDF_INFO_MASKS = b"meddiag-desktop v1 mask files aes-256-gcm"
_HKDF_INFO_CHECK = b"meddiag-desktop v1 key check"


class WrongPassphraseError(errors.CaseDatabaseError):
    """The database is encrypted and the passphrase (or stored key) given does not open it."""


class PassphraseRequiredError(errors.CaseDatabaseError):
    """The database is encrypted and no passphrase was given."""


class KeyringUnavailableError(errors.CaseDatabaseError):
    """No OS keyring can be used here (package or backend missing)."""


@dataclass(frozen=True)
class KdfParameters:
    """argon2id cost: RFC 9106's second recommended option by default."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4

    def check_bounds(self, where: Path) -> None:
        """Refuse a key file whose cost would take forever or exhaust memory (a tampered one)."""
        if not (
            1 <= self.time_cost <= 64
            and 8 <= self.memory_cost_kib <= 4 * 1024 * 1024
            and 1 <= self.parallelism <= 64
        ):
            raise errors.DatabaseCorruptError(f"the key file {where} has impossible KDF parameters")


@dataclass(frozen=True)
class KeyInfo:
    """The contents of the ``.keyinfo`` file (nothing secret)."""

    salt: bytes
    check: bytes
    kdf: KdfParameters = field(default_factory=KdfParameters)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "cipher": "sqlcipher4 (AES-256-CBC, HMAC-SHA512 per page); masks AES-256-GCM",
            "kdf": {
                "name": "argon2id",
                "time_cost": self.kdf.time_cost,
                "memory_cost_kib": self.kdf.memory_cost_kib,
                "parallelism": self.kdf.parallelism,
                "salt": self.salt.hex(),
            },
            "subkeys": "HKDF-SHA256 of the argon2id output",
            "check": self.check.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, where: Path) -> KeyInfo:
        try:
            if data["format"] != _FORMAT or int(data["version"]) != _FORMAT_VERSION:
                raise errors.DatabaseCorruptError(
                    f"the key file {where} is of an unknown format or version"
                )
            kdf = data["kdf"]
            if kdf["name"] != "argon2id":
                raise errors.DatabaseCorruptError(f"the key file {where} names an unknown KDF")
            info = cls(
                salt=bytes.fromhex(kdf["salt"]),
                check=bytes.fromhex(data["check"]),
                kdf=KdfParameters(
                    int(kdf["time_cost"]), int(kdf["memory_cost_kib"]), int(kdf["parallelism"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, errors.CaseDatabaseError):
                raise
            raise errors.DatabaseCorruptError(f"the key file {where} is damaged ({exc})") from exc
        info.kdf.check_bounds(where)
        if len(info.salt) < 8 or len(info.check) != _CHECK_BYTES:
            raise errors.DatabaseCorruptError(f"the key file {where} is damaged (salt or check)")
        return info


@dataclass(frozen=True, repr=False)
class DatabaseKey:
    """The master key of one database; hands out its sub-keys. Never printed (no repr)."""

    master: bytes

    def __repr__(self) -> str:
        return "DatabaseKey(<secret>)"

    def _subkey(self, info: bytes, length: int = 32) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
            self.master
        )

    def sqlcipher_pragma_value(self) -> str:
        """The value for ``PRAGMA key = "..."``: SQLCipher's raw-key form ``x'<64 hex>'``."""
        return f"x'{self._subkey(_HKDF_INFO_SQLCIPHER).hex()}'"

    def mask_key(self) -> bytes:
        return self._subkey(_HKDF_INFO_MASKS)

    def check_value(self) -> bytes:
        return self._subkey(_HKDF_INFO_CHECK, _CHECK_BYTES)


def keyinfo_path(database_file: Path) -> Path:
    return database_file.with_name(database_file.name + KEYINFO_SUFFIX)


def has_plain_header(database_file: Path) -> bool:
    """Whether the file starts with SQLite's plain header (False if missing or empty)."""
    try:
        with open(database_file, "rb") as handle:
            return handle.read(len(PLAIN_SQLITE_HEADER)) == PLAIN_SQLITE_HEADER
    except OSError:
        return False


def is_encrypted(database_file: Path) -> bool:
    """Encrypted: a non-empty file without SQLite's plain header, with its key file beside it.

    Without a key file a headerless file is treated as plain (and reported damaged by SQLite),
    as before encryption existed.
    """
    try:
        if database_file.stat().st_size == 0:
            return False
    except OSError:
        return False
    return keyinfo_path(database_file).is_file() and not has_plain_header(database_file)


def derive_master_key(passphrase: str, salt: bytes, kdf: KdfParameters) -> DatabaseKey:
    from argon2.low_level import Type, hash_secret_raw

    return DatabaseKey(
        hash_secret_raw(
            passphrase.encode("utf-8"),
            salt,
            time_cost=kdf.time_cost,
            memory_cost=kdf.memory_cost_kib,
            parallelism=kdf.parallelism,
            hash_len=32,
            type=Type.ID,
        )
    )


def new_key(passphrase: str, kdf: KdfParameters | None = None) -> tuple[KeyInfo, DatabaseKey]:
    """A fresh salt, the key derived from ``passphrase`` with it, and the key file contents."""
    check_new_passphrase(passphrase)
    parameters = kdf or KdfParameters()
    salt = secrets.token_bytes(_SALT_BYTES)
    key = derive_master_key(passphrase, salt, parameters)
    return KeyInfo(salt=salt, check=key.check_value(), kdf=parameters), key


def check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise errors.CaseDatabaseError(
            f"the passphrase is too short: use at least {MIN_PASSPHRASE_LENGTH} characters "
            "(several words are easier to remember than symbols)"
        )


def read_keyinfo(database_file: Path) -> KeyInfo:
    path = keyinfo_path(database_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.DatabaseAccessError(
            f"the database {database_file} is encrypted but its key file {path} is missing: "
            "restore it from a backup (it holds no secret, only the salt)"
        ) from None
    except (OSError, ValueError) as exc:
        raise errors.DatabaseCorruptError(f"the key file {path} cannot be read ({exc})") from exc
    return KeyInfo.from_json(data, path)


def write_keyinfo(database_file: Path, info: KeyInfo) -> Path:
    """Write the key file durably (temporary name, fsync, rename, folder fsync)."""
    from meddiag_desktop.db.crash_safe_files import fsync_folder

    path = keyinfo_path(database_file)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(info.to_json(), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    fsync_folder(path.parent)
    return path


def unlock(database_file: Path, passphrase: str, info: KeyInfo | None = None) -> DatabaseKey:
    """The key of the encrypted database from its passphrase; WrongPassphraseError if not."""
    info = info or read_keyinfo(database_file)
    key = derive_master_key(passphrase, info.salt, info.kdf)
    check_key(database_file, key, info)
    return key


def check_key(database_file: Path, key: DatabaseKey, info: KeyInfo | None = None) -> None:
    info = info or read_keyinfo(database_file)
    if not hmac.compare_digest(key.check_value(), info.check):
        raise WrongPassphraseError(
            f"the database {database_file} is encrypted and this passphrase does not open it"
        )


def environment_passphrase() -> str | None:
    return os.environ.get(PASSPHRASE_ENVIRONMENT_VARIABLE) or None


# Passphrases typed at the CLI's prompt, for the rest of this process only (child processes do
# not inherit them, as they would an environment variable). The GUI passes its own explicitly.
_typed_passphrases: dict[Path, str] = {}


def remember_passphrase(database_file: Path, passphrase: str) -> None:
    _typed_passphrases[database_file.resolve()] = passphrase


def key_for(database_file: Path, passphrase: str | None = None) -> DatabaseKey:
    """The key of an encrypted database: from ``passphrase``, else ``$MEDDIAG_DB_PASSPHRASE``,
    else the OS keyring; PassphraseRequiredError when none gives one."""
    info = read_keyinfo(database_file)
    given = (
        passphrase or _typed_passphrases.get(database_file.resolve()) or environment_passphrase()
    )
    if given:
        return unlock(database_file, given, info)
    stored = keyring_key(database_file)
    if stored is not None:
        check_key(database_file, stored, info)
        return stored
    raise PassphraseRequiredError(
        f"the database {database_file} is encrypted: give its passphrase (the prompt, the "
        f"start-up dialog or ${PASSPHRASE_ENVIRONMENT_VARIABLE})"
    )


def passphrase_needed(database_file: Path | None) -> bool:
    """Whether opening this file needs a passphrase that nothing here gives: it is encrypted and
    neither ``$MEDDIAG_DB_PASSPHRASE`` nor the OS keyring holds its key (the app then asks)."""
    if database_file is None or not is_encrypted(database_file):
        return False
    if _typed_passphrases.get(database_file.resolve()) or environment_passphrase():
        return False
    return keyring_key(database_file) is None


def _keyring() -> Any:
    """The keyring module when a usable backend exists; KeyringUnavailableError otherwise."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        raise KeyringUnavailableError(
            "the OS keyring cannot be used: the 'keyring' package is not installed "
            "(pip install 'meddiag-desktop[keyring]')"
        ) from None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        raise KeyringUnavailableError(
            "the OS keyring cannot be used: no keyring backend is available on this system "
            "(headless Linux has none; use the passphrase instead)"
        )
    return keyring


def keyring_status() -> str:
    """One line for ``db info``: which keyring would be used, or why none can be."""
    try:
        return f"available ({type(_keyring().get_keyring()).__name__})"
    except KeyringUnavailableError as exc:
        return f"unavailable: {exc}".replace("the OS keyring cannot be used: ", "")


def keyring_key(database_file: Path) -> DatabaseKey | None:
    """The key stored in the OS keyring for this database file; None when none (or no keyring)."""
    try:
        keyring = _keyring()
        stored = keyring.get_password(KEYRING_SERVICE, str(database_file.resolve()))
    except KeyringUnavailableError:
        return None
    except Exception:  # a locked or broken backend: fall back to the passphrase
        return None
    if not stored:
        return None
    try:
        return DatabaseKey(bytes.fromhex(stored))
    except ValueError:
        return None


def store_in_keyring(database_file: Path, key: DatabaseKey) -> None:
    """Keep the master key in the OS keyring (so no passphrase is asked on this account)."""
    keyring = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, str(database_file.resolve()), key.master.hex())
    except Exception as exc:
        raise KeyringUnavailableError(f"the OS keyring refused to store the key ({exc})") from exc
