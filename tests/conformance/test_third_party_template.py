"""A third-party connector, outside this repository, passes the shipped conformance kit.

``examples/connector-template`` (its own package ``closeloop_acme``, its own entry point, its own tests) is copied
to a temporary directory, made installed the way pip would (the package on ``sys.path`` beside a ``.dist-info``
holding its entry points, read from its ``pyproject.toml``), and its own test suite runs in a subprocess that
cannot see this repository's tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "connector-template"


def install(template: Path, site: Path) -> None:
    """Register the template's distribution and entry points in ``site``, as an installer would."""
    project = tomllib.loads((template / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(lines))


def test_template_connector_passes_the_kit_from_its_own_repository(tmp_path: Path) -> None:
    repo = shutil.copytree(TEMPLATE, tmp_path / "closeloop-acme")
    site = tmp_path / "site"
    install(repo, site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(site)])}
    result = subprocess.run(  # our own interpreter running pytest on the copied template
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "13 passed" in output, output
    # What Acme cannot have is skipped with the reason, not silently passed.
    assert "static token that never expires" in output
    assert "acme has no merge" in output
    assert "acme has no deals" in output
