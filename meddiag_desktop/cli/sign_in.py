"""Who a ``meddiag`` command acts as: the operating-system user, or with login on, a user who
signed in (``meddiag --user NAME ...`` or ``MEDDIAG_USER=NAME``; the password is read from the
terminal, or one line of stdin in scripts).

With login on, a command opened without a name can still read; anything it writes is refused
with the reason (:data:`~meddiag_desktop.db.roles.SIGN_IN_FIRST`). Commands that need a role
(review, sign, export, users, models) check it here before doing anything, and the repository
calls check it again.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.db.roles import Permission

USER_HELP = (
    "with login on: sign in as this user (default $MEDDIAG_USER); the password is asked for "
    "on the terminal, or read as one line of stdin"
)


def add_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", metavar="NAME", default=None, help=USER_HELP)


def open_as_user(
    args: argparse.Namespace,
    url: str | None,
    permission: Permission | None = None,
    migrate: bool = True,
) -> Database:
    """The database ``url`` names, acting as whoever this command runs for (module docstring),
    after checking ``permission``; closed again if the sign-in or the check fails."""
    from meddiag_desktop.db.engine import DatabaseSettings
    from meddiag_desktop.db.login import open_signed_in
    from meddiag_desktop.db.roles import require

    settings = DatabaseSettings(url=url or None, migrate=migrate)
    db = open_signed_in(settings, getattr(args, "user", None) or "")
    try:
        if permission is not None:
            require(db, permission)
    except BaseException:
        db.close()
        raise
    return db


def check_permission(args: argparse.Namespace, url: str | None, permission: Permission) -> None:
    """For commands that otherwise need no database (``models add``): check ``permission``
    against the database ``url`` names, without creating one where there is none (no database,
    no login: nothing to check)."""
    from meddiag_desktop.db.engine import resolve_url, sqlite_file

    path = sqlite_file(resolve_url(url or None))
    if path is not None and not path.exists():
        return
    open_as_user(args, url, permission, migrate=False).close()
