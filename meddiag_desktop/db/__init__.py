"""The case database: every case, model run, finding, review and audit event, on SQLite or
PostgreSQL (SQLAlchemy 2, Alembic migrations).

Nothing is imported here, so ``meddiag --help`` and the GUI's start-up do not pay for SQLAlchemy;
import what you use from its module:

- ``engine``: ``Database.open(DatabaseSettings(...))`` / ``open_database(url)`` (migrates to the
  newest schema at open, after a backup copy), ``Database.acting_as(user)``.
- ``importing``: ``import_series`` (idempotent), ``import_path`` (``meddiag import``).
- ``runs``: ``store_inference``, ``store_failed_run``, ``load_mask`` (verified), ``get_run``.
- ``reviews``: ``review_finding``, ``add_manual_finding`` (each optionally with the edited label
  map, a ``MaskEdit``), ``sign_case``; ``reviewed_masks``: ``load_reviewed_mask`` (verified),
  ``list_reviewed_masks``.
- ``worklist``: ``list_cases(WorklistQuery)``, ``counts_by_status``.
- ``cases``: ``get_case``, ``delete_case``; ``audit``: ``log_event``, ``case_history``.
- ``users``: ``add_user``, ``ensure_user``, ``set_password``, ``verify_password``.
- ``login``: ``sign_in``, ``set_login``, ``open_signed_in``; ``roles``: ``require``,
  ``refusals`` (who may review, sign, export, manage); ``site_settings``: ``login_policy``.
- ``integrity``: ``check_database``; ``backup``: ``backup_database``; ``info``: ``database_info``.
- ``records``: the frozen dataclasses and enums all of these take and return; ``errors``: the
  exceptions (all subclasses of ``ValueError``, each with a one-line message).
- ``command``: the ``import``, ``cases`` and ``db`` subcommands of ``meddiag``.
"""
