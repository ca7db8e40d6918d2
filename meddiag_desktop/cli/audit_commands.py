"""``meddiag audit`` (list the audit log's events) and ``meddiag audit verify`` (its hash chain).

The events are the ones the app and every command wrote (:mod:`meddiag_desktop.db.audit`);
``verify`` recomputes the chain (:mod:`meddiag_desktop.db.audit_chain`) and names the first
event that does not match: exit 0 when intact, 1 when broken.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from meddiag_desktop.db.command import DB_HELP

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.db.records import AuditEvent

EXIT_BROKEN = 1


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``audit`` (and ``audit verify``) on the ``meddiag`` command's subparsers."""
    audit = subparsers.add_parser(
        "audit",
        help="the audit log: who opened, ran, reviewed, signed, exported what, and when",
        description="Lists audit events oldest first; `meddiag audit verify` checks that none "
        "was edited or deleted since it was written.",
    )
    audit.add_argument("--case", type=int, metavar="ID", help="only events about this case")
    audit.add_argument(
        "--since", type=_since, metavar="DATE", help="only events from YYYY-MM-DD[THH:MM] (UTC) on"
    )
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.add_argument("--db", metavar="URL", help=DB_HELP)
    audit.set_defaults(run=run_audit_list)
    commands = audit.add_subparsers(title="audit commands")
    verify = commands.add_parser(
        "verify",
        help="check the audit log's hash chain (exit 1 naming the first event that broke)",
    )
    # SUPPRESS: `meddiag audit --db X verify` keeps X instead of the subcommand's default.
    verify.add_argument("--db", metavar="URL", help=DB_HELP, default=argparse.SUPPRESS)
    verify.set_defaults(run=run_audit_verify)


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date like 2024-03-31 or 2024-03-31T14:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _open(args: argparse.Namespace) -> Database:
    from meddiag_desktop.db.engine import Database, DatabaseSettings

    return Database.open(DatabaseSettings(url=getattr(args, "db", None)))


def run_audit_list(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.audit import list_events
    from meddiag_desktop.db.json_form import to_json

    with _open(args) as db:
        events = list_events(db, case_id=args.case, since=args.since)
    if args.json:
        print(json.dumps([to_json(e) for e in events], indent=2))
        return 0
    if not events:
        print("No audit events.")
        return 0
    print(
        f"{'ID':>6}  {'time (UTC)':19}  {'actor':16} {'action':22} {'object':16} {'case':>5}  "
        "details"
    )
    for event in events:
        print(_event_line(event))
    print(f"{len(events)} event(s)")
    return 0


def _event_line(event: AuditEvent) -> str:
    action = getattr(event.action, "value", event.action)
    thing = f"{event.object_type} {event.object_id}".strip() or "-"
    case = str(event.case_id) if event.case_id is not None else "-"
    details = json.dumps(event.details, sort_keys=True, ensure_ascii=False) if event.details else ""
    return (
        f"{event.event_id:>6}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.actor[:16]:16} "
        f"{action:22} {thing[:16]:16} {case:>5}  {details}"
    )


def run_audit_verify(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.audit import verify_audit_chain
    from meddiag_desktop.db.audit_chain import describe_break

    with _open(args) as db:
        report = verify_audit_chain(db)
        where = db.display_url
    if report.first_break is None:
        print(f"audit chain intact: {report.events} events")
        print(f"head hash {report.head_hash} ({where})")
        return 0
    print(f"audit chain BROKEN at {describe_break(report.first_break)}", file=sys.stderr)
    print(
        f"{report.events} event(s) before it check out; the last good hash is {report.head_hash}",
        file=sys.stderr,
    )
    return EXIT_BROKEN
