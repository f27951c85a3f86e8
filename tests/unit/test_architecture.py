"""The import graph stays one-way and acyclic: the contracts in pyproject.toml ([tool.importlinter]) hold.

cli/daemon -> engine -> loop -> config/store -> contract/http -> model; nothing below the command line loads a
sandbox or the test kit; the core imports no connector; no two sibling modules import each other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_import_contract_is_kept() -> None:
    done = subprocess.run(  # noqa: S603 - the venv's own lint-imports, fixed arguments
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
