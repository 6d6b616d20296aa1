"""tests/analysis configuration.

``--import-mode=importlib`` does not put test folders on ``sys.path``; add this
one so the XANES tests can import their data helpers (``xanes_synth.py``).
Other analysis test modules may add fixtures below.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
