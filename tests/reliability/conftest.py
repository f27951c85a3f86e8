"""The reliability suite imports its helpers as ``tests.reliability.kit``: the repository root must be importable."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # ``python -m pytest`` adds it already; a bare ``pytest`` with importlib mode does not
    sys.path.insert(0, ROOT)
