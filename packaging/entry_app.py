"""Entry script of the frozen build (packaging/meddiag-desktop.spec): the window or the CLI.

One program serves both names, so the bundle carries its Python archive once: started as
``meddiag`` (a symlink in the folder on Linux and macOS, a second executable on Windows) it is
the command line, under any other name the workstation. Importing the package first switches
onnxruntime's telemetry off (meddiag_desktop/offline.py).
"""

import sys
from pathlib import Path

import meddiag_desktop  # noqa: F401  (first: the telemetry switch)

CLI_NAME = "meddiag"


def main() -> int:
    if Path(sys.argv[0]).stem == CLI_NAME:
        from meddiag_desktop.cli import main as cli_main

        return cli_main()
    from meddiag_desktop.app.main import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
