"""The import graph stays one-way and acyclic: the contracts in pyproject.toml ([tool.importlinter]) hold.

cli/daemon -> engine -> loop -> config/store -> contract/http -> model; nothing below the command line loads a
sandbox or the test kit; the core imports no connector; no two sibling modules import each other.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
INSTALLED_AS = "closeloop_connectors"
"""The import name of the folder ``connectors/`` (pyproject's ``package-dir``)."""


def test_every_import_contract_is_kept() -> None:
    done = subprocess.run(  # noqa: S603 - the venv's own lint-imports, fixed arguments
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _packages(base: Path, name: str) -> set[str]:
    return {".".join([name, *init.parent.relative_to(base).parts]) for init in base.rglob("__init__.py")}


def test_the_wheel_lists_every_package_folder() -> None:
    """pyproject's explicit package list (needed for the connectors' import name) matches the folders."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = _packages(ROOT / "src" / "closeloop", "closeloop") | _packages(ROOT / "connectors", INSTALLED_AS)
    assert listed == folders, "re-run the package listing (/tmp/rename-connectors.sh does it) after adding a package"


def test_nothing_imports_the_connectors_folder_by_its_name() -> None:
    """Installed, the folder `connectors/` is `closeloop_connectors`; inside it, imports are relative."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("src", "connectors", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import) connectors\b", line)
    ]
    assert found == []
