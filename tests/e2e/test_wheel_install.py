"""What the container does, without Docker: the wheel installed in a fresh venv runs as an unprivileged user.

Slow (it installs every dependency from PyPI), so it is marked ``slow`` and left out of ``make test``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A fresh venv with closeloop installed from its wheel, readable by every user: its folder."""
    # tmp_path lives under a root-only folder; the unprivileged user must be able to read the venv.
    folder = Path(tempfile.mkdtemp(prefix="closeloop-wheel-"))
    folder.chmod(0o755)
    try:
        # Built from a copy holding what the Dockerfile copies, so the build leaves nothing in the working tree.
        source = folder / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        for name in ("src", "connectors"):
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        wheels = folder / "wheels"
        pip = Path(sys.executable).with_name("pip")
        subprocess.run([pip, "wheel", "--no-deps", "-q", "-w", wheels, source], check=True, timeout=300)  # noqa: S603
        (wheel,) = wheels.glob("closeloop-*.whl")
        subprocess.run([sys.executable, "-m", "venv", folder / "venv"], check=True, timeout=120)  # noqa: S603
        subprocess.run([folder / "venv/bin/pip", "install", "-q", wheel], check=True, timeout=600)  # noqa: S603
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_unprivileged(command: list[str]) -> list[str]:
    """``command`` run as nobody when we are root (as the image's numeric user would), else unchanged."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return command
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *command]


def test_installed_wheel_validates_and_runs_unprivileged(
    installed: Path, make_config: Callable[..., Path], daemon_factory: Callable[..., Any]
) -> None:
    site = installed / "site"
    shutil.copytree(make_config().parent, site / "etc")
    state = site / "state"
    state.mkdir()
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)  # like the image: only the state volume belongs to the user
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o644)
    closeloop = [str(installed / "venv/bin/closeloop")]
    config = site / "etc" / "closeloop.yaml"

    validate = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        as_unprivileged([*closeloop, "validate", "--config", str(config)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert validate.returncode == 0, validate.stderr

    daemon = daemon_factory(
        config, state_dir=state, command=as_unprivileged(closeloop), PYTHONDONTWRITEBYTECODE="1", HOME="/nonexistent"
    )
    daemon.wait_run_finished(timeout=60)
    with daemon.http() as http:
        assert http.get("/readyz").status_code == 200
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert (state / "e2e.db").exists()
    assert not list((site / "etc").rglob("*.db*"))  # nothing written beside the config


def test_installed_wheel_without_the_sandbox_extra_says_how_to_get_it(installed: Path) -> None:
    """The wheel installs without Faker and sortedcontainers; `closeloop sandbox` then names the extra (exit 2)."""
    python = str(installed / "venv/bin/python")
    probe = "import importlib.util as u; print(u.find_spec('faker') is None, u.find_spec('sortedcontainers') is None)"
    absent = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True)  # noqa: S603
    assert absent.stdout.split() == ["True", "True"]
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(installed / "venv/bin/closeloop"), "sandbox", "--port-base", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "pip install 'closeloop[sandbox]'" in done.stderr
    assert "Traceback" not in done.stderr
