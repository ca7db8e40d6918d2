"""What each role may do, checked in one place for the app, the CLI and the repository calls.

Radiologists review and sign; residents and technologists review; admins manage users, models and
the login setting (and may review); viewers look. A disabled button is only a hint: every write
that needs a permission calls :func:`check_user` or :func:`require` itself.

With login off (single-user mode, the default on a personal workstation) whoever runs the
program is the operating-system user and owns the files anyway, so user and model management
is not restricted; review, sign-off and export still follow the role the user is registered with.
With login on, the acting user is the one signed in, and every permission is checked.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors
from meddiag_desktop.db.engine import NOT_SIGNED_IN, Database
from meddiag_desktop.db.records import User, UserRole
from meddiag_desktop.db.schema import UserRow
from meddiag_desktop.db.site_settings import login_policy


class Permission(StrEnum):
    REVIEW = "review"  # accept, reject, edit findings; add manual ones
    SIGN = "sign"
    EXPORT = "export"
    MANAGE_USERS = "manage users"  # add users, set passwords, turn login on or off
    MANAGE_MODELS = "manage models"  # install models, trust signing keys, allow unsigned ones
    # Who a de-identified export's pseudonym is (db/pseudonyms.py): admins only, always audited.
    LOOK_UP_PSEUDONYMS = "look up pseudonyms"


ROLE_PERMISSIONS: dict[UserRole, frozenset[Permission]] = {
    UserRole.RADIOLOGIST: frozenset({Permission.REVIEW, Permission.SIGN, Permission.EXPORT}),
    UserRole.RESIDENT: frozenset({Permission.REVIEW, Permission.EXPORT}),
    UserRole.TECHNOLOGIST: frozenset({Permission.REVIEW, Permission.EXPORT}),
    UserRole.ADMIN: frozenset(
        {
            Permission.REVIEW,
            Permission.EXPORT,
            Permission.MANAGE_USERS,
            Permission.MANAGE_MODELS,
            Permission.LOOK_UP_PSEUDONYMS,
        }
    ),
    UserRole.VIEWER: frozenset(),
}
# Not restricted in single-user mode (see the module docstring).
_SINGLE_USER_FREE = frozenset(
    {Permission.MANAGE_USERS, Permission.MANAGE_MODELS, Permission.LOOK_UP_PSEUDONYMS}
)

_WHAT = {
    Permission.REVIEW: "review findings",
    Permission.SIGN: "sign a case",
    Permission.EXPORT: "export a case",
    Permission.MANAGE_USERS: "manage users and the login setting",
    Permission.MANAGE_MODELS: "manage models",
    Permission.LOOK_UP_PSEUDONYMS: "look up who a pseudonym is",
}
SIGN_IN_FIRST = (
    "login is on and nobody is signed in: sign in first (on the command line: "
    "meddiag --user NAME ..., or MEDDIAG_USER=NAME; the password is asked for)"
)


def may(role: UserRole, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[UserRole(role)]


def refusal(username: str, role: UserRole, permission: Permission) -> str:
    """Why ``username`` may not do it, in words; "" when they may."""
    if may(role, permission):
        return ""
    role = UserRole(role)
    if permission is Permission.SIGN:
        return f"'{username}' is a {role.value}; only a radiologist can sign a case"
    if role is UserRole.VIEWER:
        return f"'{username}' is a viewer: viewers can look at cases but not {_WHAT[permission]}"
    if permission in _SINGLE_USER_FREE:
        return f"'{username}' is a {role.value}; only an admin can {_WHAT[permission]}"
    return f"'{username}' is a {role.value} and cannot {_WHAT[permission]}"


def user_refusal(user: User, permission: Permission) -> str:
    """For the GUI: why the signed-in ``user`` cannot do it ("" when they can)."""
    if not user.active:
        return f"the user '{user.username}' is deactivated"
    return refusal(user.username, user.role, permission)


def check_user(row: UserRow, permission: Permission) -> None:
    """Raise PermissionDeniedError unless the registered user ``row`` may do it."""
    if not row.active:
        raise errors.PermissionDeniedError(f"the user '{row.username}' is deactivated")
    why = refusal(row.username, UserRole(row.role), permission)
    if why:
        raise errors.PermissionDeniedError(why)


def check_in(session: Session, actor: str, permission: Permission) -> None:
    """:func:`require` inside the caller's unit of work."""
    if actor == NOT_SIGNED_IN:
        raise errors.PermissionDeniedError(SIGN_IN_FIRST)
    row = session.scalars(select(UserRow).where(UserRow.username == actor)).first()
    required = login_policy(session).required
    if row is None:
        if required:  # cannot happen through sign_in; a program acting as a made-up name
            raise errors.PermissionDeniedError(
                f"'{actor}' is not a registered user: with login on, only users may act"
            )
        return  # single-user mode: the operating-system user, not registered
    if not required and permission in _SINGLE_USER_FREE:
        return
    check_user(row, permission)


def require(db: Database, permission: Permission) -> None:
    """Raise PermissionDeniedError unless ``db``'s acting user may do it (module docstring)."""
    with db.reading() as session:
        check_in(session, db.actor, permission)


def refusals(db: Database) -> dict[Permission, str]:
    """Why ``db``'s acting user may not do each thing ("" where they may): what the app greys
    out, by the same rules as :func:`require`."""
    found: dict[Permission, str] = {}
    with db.reading() as session:
        for permission in Permission:
            try:
                check_in(session, db.actor, permission)
            except errors.PermissionDeniedError as exc:
                found[permission] = str(exc)
            else:
                found[permission] = ""
    return found
