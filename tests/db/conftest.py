"""Case-database fixtures: a fresh SQLite file per test, and a throwaway PostgreSQL server.

The PostgreSQL server is started once per test session from the Debian binaries (``initdb``,
``pg_ctl``: on PATH or under /usr/lib/postgresql/*/bin) on a free loopback port, with its socket
and data in a temporary folder, and stopped at the end. As root (CI containers) it runs as the
``postgres`` user, since initdb refuses root. Where the binaries are absent the PostgreSQL tests
skip with the reason; ``MEDDIAG_REQUIRE_POSTGRES=1`` turns that skip into a failure (CI), and
``MEDDIAG_TEST_POSTGRES_URL`` (an admin URL) uses an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from meddiag_desktop.db.engine import Database, DatabaseSettings


@dataclass
class PostgresServer:
    admin_url: str  # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres

    def url_for(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{database}"

    def create_database(self, template: str | None = None) -> str:
        name = f"meddiag_test_{uuid.uuid4().hex[:12]}"
        if template is None:
            self._admin(f'CREATE DATABASE "{name}"')
            return name
        try:  # FILE_COPY (PostgreSQL 15+) copies a small template ~3x faster than WAL_LOG
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        except Exception:
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        import psycopg

        url = self.admin_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(statement)


def _postgres_binaries() -> tuple[Path, Path] | str:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder, "initdb"), Path(folder, "pg_ctl")
    return (
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
        "/usr/lib/postgresql/*/bin: install Debian's 'postgresql' package to run these tests"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("MEDDIAG_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"MEDDIAG_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    configured = os.environ.get("MEDDIAG_TEST_POSTGRES_URL")
    if configured:
        yield PostgresServer(configured)
        return
    found = _postgres_binaries()
    if isinstance(found, str):
        _unavailable(found)
        return
    initdb, pg_ctl = found
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            _unavailable(
                "running as root, and there is no 'postgres' user (or runuser) to "
                "start the PostgreSQL server as"
            )
            return
        prefix = [runuser, "-u", "postgres", "--"]
    # Directly under /tmp: pytest's own tmp folders are private to root, the server is not.
    home = Path(tempfile.mkdtemp(prefix="meddiag-pg-"))
    data, sockets, log = home / "data", home / "sockets", home / "server.log"
    sockets.mkdir()
    if prefix:
        for path in (home, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)

    created = run(
        str(initdb),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--no-locale",
    )
    if created.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        _unavailable(f"initdb failed: {created.stderr.strip()[-300:]}")
        return
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
    )
    started = run(str(pg_ctl), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    if started.returncode != 0:
        detail = log.read_text()[-500:] if log.exists() else started.stderr
        shutil.rmtree(home, ignore_errors=True)
        _unavailable(f"the PostgreSQL server did not start: {detail.strip()}")
        return
    try:
        yield PostgresServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    finally:
        run(str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its real cost takes ~0.2 s a hash; the tests check behaviour, not strength."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "meddiag_desktop.db.users.password_hasher",
        lambda: PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated to head once; tests start from copies (migrating costs ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "meddiag.sqlite3"
    Database.open(DatabaseSettings(url=str(path), actor="tester")).close()
    assert not path.with_name(path.name + "-wal").exists()  # checkpointed on close
    return path


@pytest.fixture(scope="session")
def postgres_shared(postgres_server: PostgresServer, tmp_path_factory) -> str:
    """One database migrated to head for the session; each test empties it first.

    CREATE DATABASE (even from a template) costs ~0.4 s here, emptying the tables ~20 ms.
    """
    name = postgres_server.create_database()
    masks = tmp_path_factory.mktemp("pg-shared-masks")
    Database.open(
        DatabaseSettings(url=postgres_server.url_for(name), masks_dir=masks, actor="tester")
    ).close()
    return name


def _empty_postgres_tables(url: str) -> None:
    import psycopg

    from meddiag_desktop.db.schema import Base

    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        # The audit log's triggers refuse TRUNCATE, as they should; only the tests lift them.
        connection.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        connection.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "cases" / "meddiag.sqlite3"


@pytest.fixture
def sqlite_db(sqlite_path: Path, sqlite_template: Path) -> Iterator[Database]:
    sqlite_path.parent.mkdir(parents=True)
    shutil.copyfile(sqlite_template, sqlite_path)
    database = Database.open(DatabaseSettings(url=str(sqlite_path), actor="tester"))
    yield database
    database.close()


@pytest.fixture
def postgres_db(
    postgres_server: PostgresServer, postgres_shared: str, tmp_path: Path
) -> Iterator[Database]:
    url = postgres_server.url_for(postgres_shared)
    _empty_postgres_tables(url)
    database = Database.open(
        DatabaseSettings(url=url, masks_dir=tmp_path / "masks", actor="tester")
    )
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """The repository tests run on both backends."""
    fixture = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    return request.getfixturevalue(fixture)
