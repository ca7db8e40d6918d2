"""The headless ``meddiag`` command: the same core the GUI drives, for scripts and checks.

Errors a user can cause end as one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from meddiag_desktop import __version__
from meddiag_desktop.cli import (
    audit_commands,
    compare_commands,
    deid_commands,
    demo_commands,
    export_commands,
    model_commands,
    review_commands,
    scan_commands,
    user_commands,
)
from meddiag_desktop.cli.output import NOT_A_DEVICE, USER_ERRORS, printable_output
from meddiag_desktop.cli.sign_in import add_user_option
from meddiag_desktop.db import command as db_command
from meddiag_desktop.db.encryption_command import ask_for_database_passphrase
from meddiag_desktop.evaluation import command as evaluate_command
from meddiag_desktop.private_files import echo_fixes_to_stderr
from meddiag_desktop.safe_text import install_log_sanitiser

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; everything it prints or logs is made printable (safe_text)."""
    install_log_sanitiser()
    echo_fixes_to_stderr()  # "fixed permissions of PATH: ..." when a command opens the database
    with printable_output():
        return _run(argv)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        ask_for_database_passphrase(args)  # in a terminal, for an encrypted --db
        return int(args.run(args) or 0)
    except USER_ERRORS + demo_commands.USER_ERRORS as exc:
        print(f"meddiag: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("meddiag: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meddiag", description=f"MedDiag Desktop command line. {NOT_A_DEVICE}"
    )
    parser.add_argument("--version", action="version", version=f"meddiag {__version__}")
    add_user_option(parser)
    commands = parser.add_subparsers(title="commands")
    scan_commands.add_parsers(commands)
    model_commands.add_parsers(commands)
    evaluate_command.add_parser(commands)
    demo_commands.add_parsers(commands)
    db_command.add_parsers(commands)
    review_commands.add_parsers(commands)
    export_commands.add_parsers(commands)
    user_commands.add_parsers(commands)
    audit_commands.add_parsers(commands)
    deid_commands.add_parsers(commands)
    compare_commands.add_parsers(commands)
    return parser
