"""Alembic migrations of the case database (run by :mod:`meddiag_desktop.db.migrate`).

``REVISIONS`` lists every revision, oldest first, so opening a database can tell "up to date",
"needs upgrading" and "written by a newer app" without importing Alembic (which costs about a
second at start-up). ``tests/db/test_db_migrations.py`` checks it against the scripts.
"""

from __future__ import annotations

from pathlib import Path

REVISIONS: tuple[str, ...] = (
    "0001_initial",
    "0002_worklist",
    "0003_reviewed_masks",
    "0004_worklist_sort_keys",
    "0005_audit_hash_chain",
    "0006_pseudonyms",
    "0007_login",
    "0008_comparisons",
)
HEAD = REVISIONS[-1]
SCRIPT_LOCATION = Path(__file__).parent
