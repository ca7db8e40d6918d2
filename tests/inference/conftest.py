"""Let the tests here import their helpers (tiny_models) by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
