"""``python -m meddiag_desktop.cli``."""

import sys

from meddiag_desktop.cli import main

sys.exit(main())
