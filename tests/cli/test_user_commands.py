"""``meddiag users`` and ``meddiag login`` in-process, and what login on changes for the other
commands: who may sign, review, export and trust keys, and who the audit trail names."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import shared_fakes

from meddiag_desktop.cli import main
from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.login import sign_in
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.domain import Segmentation, Volume

PASSWORD = "correct horse battery"
OTHER = "another long password"


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cases.sqlite3"
    monkeypatch.setenv("MEDDIAG_DB", str(path))
    monkeypatch.delenv("MEDDIAG_USER", raising=False)
    for variable in ("USER", "LOGNAME"):
        monkeypatch.setenv(variable, "anyone")
    return path


@pytest.fixture
def meddiag(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``meddiag ARGS`` with ``stdin`` as its standard input: (exit code, stdout, stderr)."""

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _users(meddiag) -> None:
    for name, role in (("ada", "admin"), ("rita", "radiologist"), ("vic", "viewer")):
        code, out, err = meddiag("users", "add", name, "--role", role, "--password-stdin",
                                 stdin=PASSWORD + "\n")
        assert code == 0, err
        assert out.strip() == f"added user {name} ({role})"


def _login_on(meddiag) -> None:
    code, out, err = meddiag("--user", "ada", "login", "on", stdin=PASSWORD + "\n")
    assert code == 0, err
    assert out.startswith("login is on")


def test_users_add_list_passwd(meddiag, db_path: Path) -> None:
    _users(meddiag)
    code, _out, err = meddiag("users", "add", "shorty", "--role", "viewer", "--password-stdin",
                              stdin="short\n")
    assert code == 2 and "at least 8 characters" in err
    code, _out, err = meddiag("users", "add", "ada", "--role", "viewer", "--password-stdin",
                              stdin=PASSWORD + "\n")
    assert code == 2 and "already a user named 'ada'" in err
    code, _out, err = meddiag("users", "add", "nopw", "--role", "viewer")  # stdin no terminal
    assert code == 2 and "--password-stdin" in err

    code, out, _err = meddiag("users", "list", "--json")
    listed = json.loads(out)
    assert [(u["username"], u["role"], u["has_password"]) for u in listed] == [
        ("ada", "admin", True), ("rita", "radiologist", True), ("vic", "viewer", True),
    ]
    code, out, _err = meddiag("users", "list")
    assert code == 0 and "vic" in out and "viewer" in out and PASSWORD not in out

    code, out, err = meddiag("users", "passwd", "vic", "--password-stdin", stdin=OTHER + "\n")
    assert code == 0, err
    assert "password of vic changed" in out and OTHER not in out + err
    with Database.open(DatabaseSettings(url=str(db_path))) as db:
        assert sign_in(db, "vic", OTHER).actor == "vic"
    code, _out, err = meddiag("users", "passwd", "nobody", "--password-stdin", stdin=OTHER + "\n")
    assert code == 2 and "no user named 'nobody'" in err


def test_login_on_and_off(meddiag, db_path: Path) -> None:
    _users(meddiag)
    code, _out, err = meddiag("login", "on")
    assert code == 2 and "meddiag --user ADMIN login on" in err
    code, _out, err = meddiag("--user", "rita", "login", "on", stdin=PASSWORD + "\n")
    assert code == 2 and "'rita' is not an admin" in err
    code, _out, err = meddiag("--user", "ada", "login", "on", stdin=OTHER + "\n")
    assert code == 2 and "wrong user name or password" in err
    code, out, _err = meddiag("login", "status", "--json")
    assert json.loads(out) == {"required": False, "idle_lock_minutes": 10}

    code, out, err = meddiag("--user", "ada", "login", "on", "--idle-lock", "5",
                             stdin=PASSWORD + "\n")
    assert code == 0, err
    code, out, _err = meddiag("login", "status", "--json")
    assert json.loads(out) == {"required": True, "idle_lock_minutes": 5}

    # With login on, managing users needs a signed-in admin.
    code, _out, err = meddiag("users", "add", "eve", "--role", "viewer", "--password-stdin",
                              stdin=PASSWORD + "\n")
    assert code == 2 and "sign in first" in err
    code, _out, err = meddiag("--user", "vic", "users", "add", "eve", "--role", "admin",
                              "--password-stdin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 2 and "'vic' is a viewer" in err
    code, out, err = meddiag("--user", "ada", "users", "add", "eve", "--role", "resident",
                             "--password-stdin", stdin=f"{PASSWORD}\n{OTHER}\n")
    assert code == 0, err
    code, out, err = meddiag("--user", "ada", "users", "disable", "ada", stdin=PASSWORD + "\n")
    assert code == 2 and "last admin" in err
    # Users change their own password; not anyone else's.
    code, _out, err = meddiag("--user", "rita", "users", "passwd", "vic", "--password-stdin",
                              stdin=f"{PASSWORD}\n{OTHER}\n")
    assert code == 2 and "only an admin" in err
    code, _out, err = meddiag("--user", "rita", "users", "passwd", "rita", "--password-stdin",
                              stdin=f"{PASSWORD}\n{OTHER}\n")
    assert code == 0, err

    code, _out, err = meddiag("--user", "rita", "login", "off", stdin=OTHER + "\n")
    assert code == 2 and "only an admin" in err
    code, out, err = meddiag("--user", "ada", "login", "off", stdin=PASSWORD + "\n")
    assert code == 0 and "login is off" in out, err
    code, out, _err = meddiag("login", "status")
    assert out.startswith("login is off")

    with Database.open(DatabaseSettings(url=str(db_path))) as db:
        events = recent_events(db, limit=200)
    assert [e.actor for e in events if e.action is AuditAction.LOGIN_CHANGED] == ["ada", "ada"]
    added = [e for e in events if e.action is AuditAction.USER_ADDED]
    assert added[0].actor == "ada"  # eve, added with login on (newest first)
    text = json.dumps([e.details for e in events])
    assert PASSWORD not in text and OTHER not in text


def _analysed_case(db_path: Path) -> int:
    """A case with one stored run of two pending findings (written before login is on)."""
    with Database.open(DatabaseSettings(url=str(db_path), actor="setup")) as db:
        meta = shared_fakes.metadata(1)
        case_id = import_series(db, shared_fakes.series_info(meta, size_xyz=(10, 12, 6))).case_id
        volume = Volume(np.full((6, 12, 10), -1000, np.int16), (0.8, 0.8, 2.0), (0.0, 0.0, 0.0),
                        metadata=meta)
        labels = np.zeros((6, 12, 10), np.uint8)
        labels[2:4, 3:6, 3:6] = 1
        result = shared_fakes.FakeResult(
            Segmentation(labels, {1: "nodule"}, {1: "#ff5050"}),
            (shared_fakes.finding(1), shared_fakes.finding(2)),
        )
        store_inference(db, case_id, volume, result)
        return case_id


def test_with_login_on_a_viewer_cannot_review_sign_or_export(
    meddiag, db_path: Path, tmp_path: Path
) -> None:
    case_id = str(_analysed_case(db_path))
    _users(meddiag)
    _login_on(meddiag)
    signed_in = PASSWORD + "\n"

    code, _out, err = meddiag("--user", "vic", "sign", case_id, stdin=signed_in)
    assert code == 2
    assert err.strip() == "meddiag: error: 'vic' is a viewer; only a radiologist can sign a case"
    code, _out, err = meddiag("--user", "vic", "review", case_id, "--accept", "1,2",
                              stdin=signed_in)
    assert code == 2 and "viewers can look at cases but not review findings" in err
    code, _out, err = meddiag("--user", "vic", "export", case_id, "--out", str(tmp_path / "x"),
                              stdin=signed_in)
    assert code == 2 and "viewers can look at cases but not export a case" in err
    assert not (tmp_path / "x").exists()
    code, _out, err = meddiag("--user", "rita", "models", "trust", str(tmp_path / "k.pub"),
                              stdin=signed_in)
    assert code == 2 and "only an admin can manage models" in err
    code, _out, err = meddiag("sign", case_id)  # nobody signed in
    assert code == 2 and "sign in first" in err
    code, _out, err = meddiag("--user", "rita", "sign", case_id, stdin="wrong password\n")
    assert code == 2 and "wrong user name or password" in err

    code, out, err = meddiag("--user", "rita", "review", case_id, "--accept", "1",
                             "--reject", "2:vessel", stdin=signed_in)
    assert code == 0, err
    code, out, err = meddiag("--user", "rita", "sign", case_id, stdin=signed_in)
    assert code == 0, err
    assert out.strip() == f"case {case_id}: signed by rita"

    with Database.open(DatabaseSettings(url=str(db_path))) as db:
        events = recent_events(db, limit=200)
    decided = [e for e in events
               if e.action in (AuditAction.FINDING_REVIEWED, AuditAction.CASE_SIGNED)]
    assert len(decided) == 3 and {e.actor for e in decided} == {"rita"}
    turned_on = next(e.event_id for e in events if e.action is AuditAction.LOGIN_CHANGED)
    since_login = {e.actor for e in events if e.event_id > turned_on}
    assert "anyone" not in since_login and "rita" in since_login  # USER=anyone changed nothing
