"""The audit log's hash chain: an event's canonical form, its hash, appending, and checking.

Each event stores ``prev_hash``, the ``row_hash`` of the event before it (64 zeros for the
first), and ``row_hash``, the sha256 of its canonical form: a JSON object of its content and
``prev_hash`` with sorted keys, no spaces, ASCII only, the time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC) and ``details`` as the database gives it back. The id is
not hashed: the chain runs in id order, so reordering or deleting events breaks a link anyway.

What it shows: an event edited in the file (or with the append-only triggers dropped) no longer
matches its hash; a deleted one leaves the next event pointing at a hash nobody has. What it
cannot show on its own: events cut off at the end, or a whole chain recomputed by someone who
rewrote every later event. ``meddiag audit verify`` prints the head hash; noted outside the
machine (a ticket, a printout), it catches both.

Appends are serialized, so two writers never link to the same event: on SQLite every write unit
holds the database's write lock from its start (``BEGIN IMMEDIATE``, :mod:`.engine`); on
PostgreSQL :func:`append_event` locks the table against other appenders (readers go on) until
the transaction ends. The unique index on ``prev_hash`` (migration 0005) refuses a fork even
from a writer that skipped the lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, Text, cast, insert, select, text, type_coerce

from meddiag_desktop.db.records import AuditChainBreak, AuditChainReport, ChainBreakKind
from meddiag_desktop.db.schema import AuditEventRow

GENESIS = "0" * 64  # the prev_hash of the first event
CHAIN_VERSION = 1
_AUDIT = AuditEventRow.__table__
_CONTENT = ("occurred_at", "actor", "action", "object_type", "object_id", "case_id", "details")
_BATCH = 2000


def canonical_form(values: Mapping[str, Any], prev_hash: str) -> bytes:
    """The bytes hashed for one event (``values``: its columns, as written or as read back)."""
    occurred: datetime = values["occurred_at"]
    if occurred.tzinfo is not None:
        occurred = occurred.astimezone(UTC).replace(tzinfo=None)
    details = values.get("details")
    content = {
        "v": CHAIN_VERSION,
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": values["actor"],
        "action": values["action"],
        "object_type": values["object_type"],
        "object_id": values["object_id"],
        "case_id": values["case_id"],
        # As stored: a round trip through JSON turns tuples into lists and keys into text.
        "details": json.loads(json.dumps(details if details is not None else {})),
        "prev_hash": prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def event_hash(values: Mapping[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical_form(values, prev_hash)).hexdigest()


def append_event(connection: Connection, values: Mapping[str, Any]) -> None:
    """Insert one event (the columns of ``audit.event_values``) linked to the last one.

    Runs in the caller's transaction, which must be a write unit: on SQLite that already holds
    the write lock; on PostgreSQL the table lock taken here is held until it ends.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
    prev_hash = chain_head(connection)
    row = {key: values[key] for key in _CONTENT}
    connection.execute(
        insert(AuditEventRow).values(
            **row, prev_hash=prev_hash, row_hash=event_hash(row, prev_hash)
        )
    )


def chain_head(connection: Connection) -> str:
    """The newest event's hash (where the next event links), or GENESIS for an empty log."""
    last = connection.execute(
        select(_AUDIT.c.row_hash).order_by(_AUDIT.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return GENESIS if last is None else str(last)


def verify_chain(connection: Connection) -> AuditChainReport:
    """Check every event in id order; the first that does not hold, and why.

    An event's own hash is checked before its link, so an edited event is named itself; a
    deleted one is named by the event after the gap (with the ids missing before it).
    """
    count = 0
    prev_id: int | None = None
    prev_hash = GENESIS
    after = 0
    while True:
        rows = connection.execute(
            select(*_RAW_COLUMNS).where(_AUDIT.c.id > after).order_by(_AUDIT.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return AuditChainReport(count, prev_hash)
        for row in rows:
            broken = _check(dict(row._mapping), prev_id, prev_hash)
            if broken is not None:
                return AuditChainReport(count, prev_hash, broken)
            count += 1
            prev_id, prev_hash = row.id, row.row_hash
        after = rows[-1].id


# The time and details as the driver gives them (text on SQLite), parsed in _check: an edited
# file may hold text no datetime or JSON reader accepts, which is a broken event, not a crash.
_RAW_COLUMNS = [
    type_coerce(c, String()).label(c.name)
    if c.name == "occurred_at"
    else cast(c, Text()).label(c.name)
    if c.name == "details"
    else c
    for c in _AUDIT.columns
]


def _parsed(row: dict[str, Any]) -> str:
    """Turn the raw time and details into values (in place); "" or why they are unreadable."""
    occurred, details = row["occurred_at"], row["details"]
    try:
        if isinstance(occurred, str):
            occurred = datetime.fromisoformat(occurred)
        if not isinstance(occurred, datetime):
            row["occurred_at"] = None
            return "its time is not a time"
        row["occurred_at"] = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    except ValueError:
        row["occurred_at"] = None
        return "its time is unreadable"
    try:
        row["details"] = json.loads(details) if isinstance(details, str | bytes) else details
    except ValueError:
        return "its details are not JSON"
    return ""


def _check(row: dict[str, Any], prev_id: int | None, prev_hash: str) -> AuditChainBreak | None:
    def broken(kind: ChainBreakKind, reason: str, missing: tuple[int, int] | None = None):
        return AuditChainBreak(
            row["id"], row["occurred_at"], str(row["action"]), kind, reason, missing
        )

    unreadable = _parsed(row)
    if unreadable:
        return broken(ChainBreakKind.CONTENT, f"{unreadable}: the event was changed")
    stored = row["row_hash"] or ""
    if not stored:
        return broken(ChainBreakKind.CONTENT, "it has no hash: it was written outside the chain")
    if stored != event_hash(row, row["prev_hash"] or ""):
        return broken(
            ChainBreakKind.CONTENT,
            "its content does not match its hash: the event was changed after it was written",
        )
    if row["prev_hash"] == prev_hash:
        return None
    first_missing = 1 if prev_id is None else prev_id + 1
    if row["id"] > first_missing:
        missing = (first_missing, row["id"] - 1)
        where = "no event before it" if prev_id is None else f"event {prev_id} before it"
        gone = (
            f"event id {missing[0]} deleted"
            if missing[0] == missing[1]
            else f"events with ids from {missing[0]} to {missing[1]} deleted"
        )
        return broken(
            ChainBreakKind.LINK, f"it links to an event that is gone (now {where}): {gone}", missing
        )
    if prev_id is None:
        return broken(ChainBreakKind.LINK, "it is the first event but links to an earlier one")
    return broken(
        ChainBreakKind.LINK,
        f"it does not link to event {prev_id} before it: that event was rewritten with a "
        "recomputed hash, or events were renumbered",
    )


def describe_break(problem: AuditChainBreak) -> str:
    """One line for people: which event, when, what, and whether content or link broke."""
    when = f"{problem.occurred_at:%Y-%m-%d %H:%M:%S} UTC" if problem.occurred_at else "no time"
    return (
        f"event {problem.event_id} ({when}, {problem.action}): {problem.kind.value} broken: "
        f"{problem.reason}"
    )
