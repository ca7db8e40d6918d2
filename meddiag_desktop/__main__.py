"""``python -m meddiag_desktop`` starts the workstation."""

import sys

from meddiag_desktop.app.main import main

sys.exit(main())
