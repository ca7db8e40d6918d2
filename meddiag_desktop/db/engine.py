"""Opening the case database: URL, engine settings per connection, one session per unit of work.

SQLite settings, set on every new connection (they are per connection, not per file):

- ``journal_mode=WAL``: readers never block the writer and the writer never blocks readers, so
  the GUI's worklist stays responsive while a model run is saved.
- ``synchronous=FULL``: with WAL, NORMAL skips the fsync of the WAL at each commit; an app crash
  loses nothing either way, but a power cut or OS crash can lose the last commits under NORMAL.
  A radiologist's sign-off that the screen called saved must survive a power cut; FULL costs
  about half a millisecond per commit here (PITFALLS.md).
- ``foreign_keys=ON``: SQLite ignores foreign keys unless asked, per connection.
- ``busy_timeout``: wait for another writer (a second window, ``meddiag import`` in a shell)
  instead of failing at once.

An encrypted database (SQLCipher, :mod:`.encryption_keys`) gets its raw key as the very first
statement of every connection, before any page is read; ``temp_store=MEMORY`` keeps SQLite's
temporary tables and sort files off the disk, and SQLCipher's own log is silenced (a wrong key
is refused earlier, with a clear message, by the key file's check value).

Write units start with ``BEGIN IMMEDIATE``: taking the write lock up front means two writers
queue on the busy timeout instead of one failing with "database is locked" when it tries to
upgrade a read transaction that another writer overtook (a retry-less deadlock in WAL mode).
"""

from __future__ import annotations

import copy
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors
from meddiag_desktop.db.file_modes import secure_database_files
from meddiag_desktop.db.records import Backend
from meddiag_desktop.user_folders import user_data_dir

if TYPE_CHECKING:
    from meddiag_desktop.db.encryption_keys import DatabaseKey
    from meddiag_desktop.db.mask_encryption import MaskCipher
    from meddiag_desktop.private_files import ModeFix

DEFAULT_FILE_NAME = "meddiag.sqlite3"
MASKS_FOLDER = "masks"
URL_ENVIRONMENT_VARIABLE = "MEDDIAG_DB"
_BEGIN_OPTION = "meddiag_sqlite_begin"


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database is and how to treat it; the GUI keeps one in its Settings."""

    url: str | None = None  # a URL or a file path; None: $MEDDIAG_DB, else the user data folder
    masks_dir: Path | None = None  # None: "masks" beside the SQLite file (or in user data)
    busy_timeout_s: float = 10.0
    migrate: bool = True  # apply pending migrations at open (after a backup copy)
    actor: str | None = None  # who is working; None: the operating-system login name
    # An encrypted database's passphrase; None: $MEDDIAG_DB_PASSPHRASE, else the OS keyring.
    passphrase: str | None = field(default=None, repr=False)


def default_database_path() -> Path:
    return user_data_dir() / DEFAULT_FILE_NAME


def resolve_url(url: str | None) -> URL:
    """A SQLAlchemy URL from a URL, a plain file path, ``$MEDDIAG_DB`` or the default file."""
    raw = url or os.environ.get(URL_ENVIRONMENT_VARIABLE) or str(default_database_path())
    if "://" not in raw:
        return URL.create("sqlite", database=str(Path(raw).expanduser().resolve()))
    parsed = make_url(raw)
    if parsed.get_backend_name() not in {b.value for b in Backend}:
        raise errors.CaseDatabaseError(
            f"unsupported database URL '{parsed.render_as_string(hide_password=True)}': use a "
            "file path, sqlite:///PATH or postgresql+psycopg://USER@HOST/NAME"
        )
    if parsed.get_backend_name() == Backend.POSTGRESQL:
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver the app ships
    return parsed


# The actor of a database opened while login is on, until someone signs in
# (:func:`meddiag_desktop.db.login.sign_in`): it can read, and every write is refused.
NOT_SIGNED_IN = "(not signed in)"


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or in-memory SQLite."""
    if url.get_backend_name() != Backend.SQLITE:
        return None
    database = url.database or ""
    if database.startswith("file:"):
        database = database[5:].split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database)


def create_database_engine(
    url: URL, busy_timeout_s: float = 10.0, key: DatabaseKey | None = None
) -> Engine:
    """An engine whose every connection carries the settings in this module's docstring;
    with ``key``, through SQLCipher (``sqlcipher3``) keyed with it."""
    if url.get_backend_name() == Backend.SQLITE:
        path = sqlite_file(url)
        if path is not None and url.query.get("mode") != "ro":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise errors.translate(exc, str(path.parent)) from exc
        if key is None:
            engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        else:
            from sqlcipher3 import dbapi2 as sqlcipher

            engine = create_engine(url, module=sqlcipher, connect_args={"timeout": busy_timeout_s})
        _configure_sqlite(engine, busy_timeout_s, key)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _configure_sqlite(engine: Engine, busy_timeout_s: float, key: DatabaseKey | None) -> None:
    read_only = engine.url.query.get("mode") == "ro"
    key_pragma = None if key is None else f'PRAGMA key = "{key.sqlcipher_pragma_value()}"'

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide BEGIN vs BEGIN IMMEDIATE, not pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if key_pragma is not None:  # first, before any page of the file is read
                cursor.execute(key_pragma)
                cursor.execute("PRAGMA cipher_log_level = NONE")
                cursor.execute("PRAGMA temp_store = MEMORY")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                cursor.execute("PRAGMA journal_mode = WAL")  # no-op once the file is in WAL
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One case database: an engine, the masks folder and who is acting.

    Built by the app (or a CLI command) and passed to the repository functions; there is no
    global instance. ``acting_as`` gives a view for another user sharing the same engine.
    """

    def __init__(
        self, engine: Engine, masks_dir: Path, actor: str, url: URL, key: DatabaseKey | None = None
    ) -> None:
        self.engine = engine
        self.masks_dir = masks_dir
        self.actor = actor
        self.url = url
        self.key = key  # None: a plain database
        self.permission_fixes: tuple[ModeFix, ...] = ()  # files Database.open made owner-only
        self.mask_cipher: MaskCipher | None = None
        if key is not None:
            from meddiag_desktop.db.mask_encryption import MaskCipher

            self.mask_cipher = MaskCipher(key.mask_key())
        self._write_engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})

    @classmethod
    def open(cls, settings: DatabaseSettings | None = None) -> Database:
        """Open (creating if new), bring the schema to the newest revision, and remove what
        interrupted mask saves left (files known to be uncommitted: ``pending_masks``). The
        files are made owner-only first (:mod:`.file_modes`; the fixes: ``permission_fixes``)."""
        settings = settings or DatabaseSettings()
        url = resolve_url(settings.url)
        masks_dir = _masks_dir(url, settings)
        fixes = _owner_only_files(url, masks_dir)  # before SQLite first creates any file
        key = _key_of(url, settings)
        engine = create_database_engine(url, settings.busy_timeout_s, key)
        actor = settings.actor or default_actor()
        database = cls(engine, masks_dir, actor, url, key)
        database.permission_fixes = tuple(fixes)
        try:
            from meddiag_desktop.db.login import actor_at_open, program_view

            database.actor = actor_at_open(database)  # with login on: nobody, until sign-in
            if settings.migrate:
                from meddiag_desktop.db.migrate import ensure_schema

                ensure_schema(database)
            else:
                with database.reading() as session:
                    session.execute(text("SELECT 1"))
            from meddiag_desktop.db.pending_masks import heal_interrupted_saves

            heal_interrupted_saves(program_view(database))
        except BaseException:
            engine.dispose()
            raise
        return database

    @property
    def backend(self) -> Backend:
        return Backend(self.url.get_backend_name())

    @property
    def sqlite_path(self) -> Path | None:
        return sqlite_file(self.url)

    @property
    def display_url(self) -> str:
        path = self.sqlite_path
        return str(path) if path is not None else self.url.render_as_string(hide_password=True)

    def acting_as(self, actor: str) -> Database:
        """The same database, with another user's name on what is written."""
        view = copy.copy(self)
        view.actor = actor
        return view

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write unit of work: committed on success, rolled back on any exception.

        The write lock is taken on entry (not at the first statement), so the whole unit sees
        one state of the database and waits, if it must, before doing anything.
        """
        if self.actor == NOT_SIGNED_IN:
            from meddiag_desktop.db.roles import SIGN_IN_FIRST

            raise errors.PermissionDeniedError(SIGN_IN_FIRST)
        with self._unit(self._write_engine) as session:
            session.connection()
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One read-only unit of work (a consistent snapshot on SQLite WAL)."""
        with self._unit(self.engine) as session:
            yield session

    @contextmanager
    def _unit(self, bind: Engine) -> Iterator[Session]:
        session = Session(bind=bind, expire_on_commit=False, autoflush=False)
        try:
            with session.begin():
                yield session
        except Exception as exc:
            if errors.is_driver_error(exc) or isinstance(exc, OSError):
                raise errors.translate(exc, self.display_url) from exc
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_database(url: str | None = None, actor: str | None = None) -> Database:
    """The database at ``url`` (a URL or file path; None: the default), migrated to head."""
    return Database.open(DatabaseSettings(url=url, actor=actor))


def _key_of(url: URL, settings: DatabaseSettings) -> DatabaseKey | None:
    """The key of an encrypted SQLite file (None for a plain one); raises the clear errors of
    :mod:`.encryption_keys` (passphrase missing or wrong)."""
    path = sqlite_file(url)
    if path is None:
        return None
    from meddiag_desktop.db.encryption_keys import is_encrypted, key_for

    return key_for(path, settings.passphrase) if is_encrypted(path) else None


def _owner_only_files(url: URL, masks_dir: Path) -> list[ModeFix]:
    """The database's folder, file and masks readable by their owner only (:mod:`.file_modes`)."""
    path = sqlite_file(url)
    try:
        return secure_database_files(path, masks_dir, read_only=url.query.get("mode") == "ro")
    except OSError as exc:
        raise errors.translate(exc, str(path.parent if path is not None else masks_dir)) from exc


def _masks_dir(url: URL, settings: DatabaseSettings) -> Path:
    if settings.masks_dir is not None:
        return settings.masks_dir
    path = sqlite_file(url)
    return (path.parent if path is not None else user_data_dir()) / MASKS_FOLDER
