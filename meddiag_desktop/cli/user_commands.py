"""``meddiag users add|passwd|list|disable|enable`` and ``meddiag login on|off|status``.

Login is off by default (single-user mode: the operating-system user acts). An admin turns it on
for everyone using the database: ``meddiag users add ADMIN --role admin``, then
``meddiag --user ADMIN login on`` (which proves that admin's password first). From then on the
app asks for a name and password at start and after the idle minutes, and commands that change
data sign in with ``--user NAME`` (or ``$MEDDIAG_USER``).

Passwords are asked twice on the terminal; ``--password-stdin`` reads the new one as a line of
stdin instead (after the line with the signing-in user's password, when one is asked for). They
are never command-line arguments or environment variables, and never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING

from meddiag_desktop.cli.sign_in import open_as_user
from meddiag_desktop.db.command import DB_HELP
from meddiag_desktop.db.records import UserRole

if TYPE_CHECKING:
    from meddiag_desktop.db.site_settings import LoginPolicy

EXIT_USER_ERROR = 2


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``users`` and ``login`` on the ``meddiag`` command's subparsers."""
    users = commands.add_parser("users", help="who may sign in, and as what (admins)")
    user_commands = users.add_subparsers(title="users commands")
    add = user_commands.add_parser("add", help="register a user with a password")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--role", required=True, choices=[r.value for r in UserRole],
        help="radiologist: reviews and signs; resident, technologist: review; admin: manages "
        "users and models; viewer: looks, never reviews, signs or exports",
    )
    add.add_argument("--display-name", default="", help="the name reports show")
    _password_option(add)
    add.set_defaults(run=run_add)
    passwd = user_commands.add_parser(
        "passwd", help="set a user's password (admins; anyone for themselves)"
    )
    passwd.add_argument("name", metavar="NAME")
    _password_option(passwd)
    passwd.set_defaults(run=run_passwd)
    listing = user_commands.add_parser("list", help="the registered users")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--db", metavar="URL", help=DB_HELP)
    listing.set_defaults(run=run_list)
    for verb, active in (("disable", False), ("enable", True)):
        switch = user_commands.add_parser(
            verb, help=f"{verb} a user (users are never deleted: their reviews name them)"
        )
        switch.add_argument("name", metavar="NAME")
        switch.add_argument("--db", metavar="URL", help=DB_HELP)
        switch.set_defaults(run=run_enable if active else run_disable)

    login = commands.add_parser("login", help="require signing in on this workstation, or not")
    login_commands = login.add_subparsers(title="login commands")
    on = login_commands.add_parser(
        "on", help="require a user name and password (meddiag --user ADMIN login on)"
    )
    on.add_argument(
        "--idle-lock", type=int, metavar="MINUTES", default=None,
        help="minutes idle before the app's screen locks (default: 10, or as set before)",
    )
    on.add_argument("--db", metavar="URL", help=DB_HELP)
    on.set_defaults(run=run_login_on)
    off = login_commands.add_parser("off", help="single-user mode: the OS user acts (admins)")
    off.add_argument("--db", metavar="URL", help=DB_HELP)
    off.set_defaults(run=run_login_off)
    status = login_commands.add_parser("status", help="whether login is on")
    status.add_argument("--json", action="store_true")
    status.add_argument("--db", metavar="URL", help=DB_HELP)
    status.set_defaults(run=run_login_status)


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true",
        help="read the new password as one line of stdin (scripts) instead of asking twice",
    )
    parser.add_argument("--db", metavar="URL", help=DB_HELP)


def run_add(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.roles import Permission
    from meddiag_desktop.db.users import add_user

    with open_as_user(args, args.db, Permission.MANAGE_USERS) as db:
        password = _new_password(args, args.name)
        user = add_user(db, args.name, UserRole(args.role), args.display_name, password)
    print(f"added user {user.username} ({user.role.value})")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.users import get_user, set_password

    with open_as_user(args, args.db) as db:
        get_user(db, args.name)  # an unknown name fails before a password is asked for
        set_password(db, args.name, _new_password(args, args.name))
    print(f"password of {args.name} changed")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.users import list_users

    with open_as_user(args, args.db) as db:
        users = list_users(db)
    if args.json:
        print(json.dumps([
            {
                "username": u.username, "display_name": u.display_name, "role": u.role.value,
                "active": u.active, "has_password": u.has_password,
                "created_at": u.created_at.isoformat(),
            }
            for u in users
        ], indent=2))
        return 0
    if not users:
        print("no users")
    for u in users:
        state = ("" if u.active else ", disabled") + ("" if u.has_password else ", no password")
        shown = f" ({u.display_name})" if u.display_name else ""
        print(f"{u.username:<20} {u.role.value:<13}{shown}{state}")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    return _switch(args, False)


def run_enable(args: argparse.Namespace) -> int:
    return _switch(args, True)


def _switch(args: argparse.Namespace, active: bool) -> int:
    from meddiag_desktop.db.roles import Permission
    from meddiag_desktop.db.users import set_active

    with open_as_user(args, args.db, Permission.MANAGE_USERS) as db:
        set_active(db, args.name, active)
    print(f"user {args.name} {'enabled' if active else 'disabled'}")
    return 0


def run_login_on(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.engine import NOT_SIGNED_IN
    from meddiag_desktop.db.errors import PermissionDeniedError
    from meddiag_desktop.db.login import (
        policy,
        read_password,
        set_login,
        sign_in,
        signed_in_user,
    )

    with open_as_user(args, args.db) as db:
        if policy(db).required:  # already on: the idle minutes change, by a signed-in admin
            if db.actor == NOT_SIGNED_IN:
                raise PermissionDeniedError(
                    "login is on: sign in as an admin to change it (meddiag --user ADMIN login on)"
                )
            signed = db
        else:  # the admin proves their password works before anyone can be locked out
            name = (getattr(args, "user", None) or _environment_user()).strip()
            if not name:
                raise PermissionDeniedError(
                    "name the admin who will manage users, so their password is checked "
                    "first: meddiag --user ADMIN login on"
                )
            signed = sign_in(db, name, read_password(f"Password for {name}: "))
        user = signed_in_user(signed)
        if user is None or user.role is not UserRole.ADMIN:
            raise PermissionDeniedError(
                f"'{signed.actor}' is not an admin: only an admin turns login on"
            )
        after = set_login(signed, True, args.idle_lock)
    print(f"login is on: {_policy_text(after)}")
    return 0


def run_login_off(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.login import policy, set_login
    from meddiag_desktop.db.roles import Permission

    with open_as_user(args, args.db, Permission.MANAGE_USERS) as db:
        if not policy(db).required:
            print("login is already off (single-user mode)")
            return 0
        set_login(db, False)
    print("login is off: whoever runs MedDiag acts as their operating-system user")
    return 0


def run_login_status(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.login import policy

    with open_as_user(args, args.db) as db:
        current = policy(db)
    if args.json:
        print(json.dumps(
            {"required": current.required, "idle_lock_minutes": current.idle_lock_minutes}
        ))
    elif current.required:
        print(f"login is on: {_policy_text(current)}")
    else:
        print("login is off (single-user mode: the operating-system user acts)")
    return 0


def _policy_text(policy: LoginPolicy) -> str:
    return (
        "the app asks for a user name and password, and locks its screen after "
        f"{policy.idle_lock_minutes} idle minute(s); commands that change data need --user NAME"
    )


def _environment_user() -> str:
    import os

    from meddiag_desktop.db.login import USER_ENVIRONMENT_VARIABLE

    return os.environ.get(USER_ENVIRONMENT_VARIABLE, "").strip()


def _new_password(args: argparse.Namespace, name: str) -> str:
    """The new password: a line of stdin with --password-stdin, else typed twice."""
    from meddiag_desktop.db.errors import CaseDatabaseError

    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CaseDatabaseError("--password-stdin: no password line on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CaseDatabaseError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass(f"New password for {name}: ")
    if getpass.getpass("Again: ") != first:
        raise CaseDatabaseError("the two passwords differ; nothing was changed")
    return first
