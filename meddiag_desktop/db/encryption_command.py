"""``meddiag db encrypt|decrypt``, and the passphrase prompt for any command on an encrypted file.

The passphrase comes from ``$MEDDIAG_DB_PASSPHRASE`` (scripts), the OS keyring (when one was
filled with ``db encrypt --keyring``), or a prompt when the command runs in a terminal. The work
is :mod:`.encryption_conversion`'s; only parsing, asking and printing live here.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from meddiag_desktop.db import errors

_TRIES = 3


def add_parsers(db_commands: argparse._SubParsersAction, db_help: str) -> None:
    """Register ``encrypt`` and ``decrypt`` on the ``meddiag db`` subparsers."""
    encrypt = db_commands.add_parser(
        "encrypt",
        help="encrypt the SQLite database and its masks with a passphrase (SQLCipher)",
        description="Converts the database and its mask files in place, losing nothing: the "
        "encrypted copy is checked before it replaces the original, which is kept until the "
        "end; run it again after an interruption to finish. Close the app first. The new "
        "passphrase comes from $MEDDIAG_DB_PASSPHRASE or is asked twice. Without it nobody "
        "can open the database, MedDiag included: keep it safe. See docs/threat-model.md.",
    )
    encrypt.add_argument(
        "--keyring",
        action="store_true",
        help="also keep the key in this account's OS keyring (no passphrase asked here again)",
    )
    encrypt.add_argument("--db", metavar="URL", help=db_help)
    encrypt.set_defaults(run=run_db_encrypt, asks_own_passphrase=True)
    decrypt = db_commands.add_parser(
        "decrypt",
        help="turn an encrypted database and its masks back into plain files",
        description="The reverse of 'db encrypt', as safely (run it again after an "
        "interruption). The passphrase comes from $MEDDIAG_DB_PASSPHRASE or is asked.",
    )
    decrypt.add_argument("--db", metavar="URL", help=db_help)
    decrypt.set_defaults(run=run_db_decrypt, asks_own_passphrase=True)


def ask_for_database_passphrase(args: argparse.Namespace) -> None:
    """Before a command opens an encrypted database (``--db``): ask its passphrase in a
    terminal unless the environment or the keyring gives it; a wrong one fails here, at once."""
    if getattr(args, "asks_own_passphrase", False) or not hasattr(args, "db"):
        return
    path = _sqlite_path(args.db, quiet=True)
    if path is None:
        return
    from meddiag_desktop.db.encryption_keys import (
        environment_passphrase,
        is_encrypted,
        keyring_key,
        remember_passphrase,
    )

    if not is_encrypted(path) or environment_passphrase() or keyring_key(path) is not None:
        return
    if sys.stdin.isatty():  # otherwise the command fails with "give its passphrase"
        remember_passphrase(path, _existing_passphrase(path))


def run_db_encrypt(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.encryption_conversion import conversion_in_progress, encrypt_database
    from meddiag_desktop.db.encryption_keys import (
        environment_passphrase,
        is_encrypted,
        store_in_keyring,
        unlock,
    )

    path = _required_sqlite_path(args.db, "encrypt")
    if is_encrypted(path):  # finishing an interrupted run, or a second run
        passphrase = _existing_passphrase(path)
    else:
        passphrase = environment_passphrase() or _new_passphrase(path)
    resumed = conversion_in_progress(path) == "encrypt"  # a killed run's work, finished now
    report = encrypt_database(path, passphrase)
    keyinfo = f"{path.name}.keyinfo"
    state = "encrypted" if report.database_converted else "was already encrypted"
    print(f"database   {path}: {state} (SQLCipher; key file {keyinfo} beside it)")
    print(
        f"masks      {report.masks_rewritten} sealed now, {report.masks_already_done} already "
        "sealed (AES-256-GCM)"
    )
    code = _print_mask_trouble(report.masks_missing, report.masks_changed)
    if report.database_converted or resumed:
        _audit(path, passphrase, "encrypted", report.masks_rewritten)
    if args.keyring:
        store_in_keyring(path, unlock(path, passphrase))
        print("keyring    the key is kept in this account's OS keyring")
    for backup in report.plain_backups:
        print(f"warning    {backup} is an older backup and is NOT encrypted: delete it or keep it")
    print(
        f"Keep the passphrase safe, and {keyinfo} with the database (and its backups): without "
        "either, nobody can open it."
    )
    return code


def run_db_decrypt(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.encryption_conversion import conversion_in_progress, decrypt_database

    path = _required_sqlite_path(args.db, "decrypt")
    from meddiag_desktop.db.encryption_keys import is_encrypted, keyinfo_path

    if not is_encrypted(path) and not keyinfo_path(path).exists():
        print(f"database   {path}: not encrypted, nothing to do")
        return 0
    passphrase = _existing_passphrase(path) if is_encrypted(path) else ""
    resumed = conversion_in_progress(path) == "decrypt"
    report = decrypt_database(path, passphrase)
    state = "decrypted" if report.database_converted else "was already plain"
    print(f"database   {path}: {state}")
    print(f"masks      {report.masks_rewritten} made plain, {report.masks_already_done} already")
    if report.database_converted or resumed:
        _audit(path, None, "decrypted", report.masks_rewritten)
    return _print_mask_trouble(report.masks_missing, report.masks_changed)


def _audit(path: Path, passphrase: str | None, done: str, masks: int) -> None:
    """Record the conversion in the converted database's own audit trail (after the fact: the
    conversion copies every row, so the event cannot travel in its transaction)."""
    from meddiag_desktop.db.audit import log_event
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.db.records import AuditAction

    action = AuditAction.DATABASE_DECRYPTED
    if done == "encrypted":
        action = AuditAction.DATABASE_ENCRYPTED
    try:
        db = Database.open(DatabaseSettings(url=str(path), passphrase=passphrase, migrate=False))
        try:
            log_event(db, action, details={"masks_rewritten": masks})
        finally:
            db.close()
    except CaseDatabaseError as exc:  # e.g. login on and nobody signed in: say so, keep the work
        print(f"warning    the {done} database was not audited: {exc}", file=sys.stderr)


def _print_mask_trouble(missing: tuple[str, ...], changed: tuple[str, ...]) -> int:
    for name in missing:
        print(f"missing    {name} (its row has no file: see 'meddiag db check')")
    for name in changed:
        print(f"changed    {name} (bytes differ from its row: left as it was)")
    return 1 if missing or changed else 0


def _sqlite_path(url: str | None, quiet: bool = False) -> Path | None:
    from meddiag_desktop.db.engine import resolve_url, sqlite_file

    try:
        return sqlite_file(resolve_url(url))
    except errors.CaseDatabaseError:
        if quiet:
            return None  # the command itself reports the bad URL
        raise


def _required_sqlite_path(url: str | None, verb: str) -> Path:
    path = _sqlite_path(url)
    if path is None:
        raise errors.CaseDatabaseError(
            f"only a SQLite database file can be {verb}ed here; a PostgreSQL server encrypts "
            "its storage itself (disk encryption on the server)"
        )
    return path


def _existing_passphrase(path: Path) -> str:
    """The passphrase of the encrypted database: from the environment, else asked (3 tries)."""
    from meddiag_desktop.db.encryption_keys import (
        WrongPassphraseError,
        environment_passphrase,
        unlock,
    )

    given = environment_passphrase()
    if given:
        unlock(path, given)
        return given
    _need_terminal(path)
    for attempt in range(1, _TRIES + 1):
        passphrase = getpass.getpass(f"Passphrase of the encrypted database {path}: ")
        try:
            unlock(path, passphrase)
            return passphrase
        except WrongPassphraseError:
            if attempt == _TRIES:
                raise
            print("That passphrase does not open it; try again.", file=sys.stderr)
    raise AssertionError("unreachable")


def _new_passphrase(path: Path) -> str:
    from meddiag_desktop.db.encryption_keys import check_new_passphrase

    _need_terminal(path)
    for _ in range(_TRIES):
        first = getpass.getpass(f"New passphrase for {path}: ")
        try:
            check_new_passphrase(first)
        except errors.CaseDatabaseError as exc:
            print(exc, file=sys.stderr)
            continue
        if getpass.getpass("The same passphrase again: ") == first:
            return first
        print("The two passphrases differ; try again.", file=sys.stderr)
    raise errors.CaseDatabaseError("no passphrase was chosen; nothing was changed")


def _need_terminal(path: Path) -> None:
    from meddiag_desktop.db.encryption_keys import PASSPHRASE_ENVIRONMENT_VARIABLE

    if not sys.stdin.isatty():
        raise errors.CaseDatabaseError(
            f"the passphrase for {path} is needed: set ${PASSPHRASE_ENVIRONMENT_VARIABLE} or run "
            "this in a terminal to be asked"
        )
