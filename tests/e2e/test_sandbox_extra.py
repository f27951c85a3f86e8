"""The sandboxes are the ``closeloop[sandbox]`` extra: production never loads them, and the commands that need
them say how to install them when they are missing.

The modules a process loaded are written at its exit by a small wrapper around the real entry point, so the
daemon and ``closeloop sync`` are checked exactly as they run (real HTTP to sandboxes served by another process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from closeloop.exitcodes import EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE

REPO = Path(__file__).resolve().parents[2]
RECORDING = """\
import atexit, os, sys
def _record():
    with open(os.environ["CLOSELOOP_TEST_MODULES_OUT"], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
atexit.register(_record)
for name in os.environ.get("CLOSELOOP_TEST_HIDE", "").split():
    sys.modules[name] = None  # as if not installed: importing it raises ModuleNotFoundError
from closeloop.cli import main
sys.exit(main(sys.argv[1:]))
"""
SANDBOX_DEPENDENCIES = ("faker", "sortedcontainers")


def sandbox_modules(listing: Path) -> list[str]:
    """The modules in ``listing`` that belong to a sandbox or to the sandbox extra's dependencies."""
    names = listing.read_text().split()
    return [
        name
        for name in names
        if name.split(".")[0] in SANDBOX_DEPENDENCIES or "sandbox" in name.split(".") or name == "closeloop.testing"
    ]


def recorded(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    out = tmp_path / "modules.txt"
    return [sys.executable, "-c", RECORDING], {"CLOSELOOP_TEST_MODULES_OUT": str(out)}, out


def test_sync_loads_no_sandbox_module(make_config: Callable[..., Path], tmp_path: Path) -> None:
    command, env, out = recorded(tmp_path)
    done = subprocess.run(  # noqa: S603 - our own interpreter and entry point, fixed arguments
        [*command, "sync", "--once", "--config", str(make_config())],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "CLOSELOOP_STATE_DIR": str(tmp_path / "state")},
        check=False,
    )
    assert done.returncode in (EXIT_OK, EXIT_QUARANTINED), done.stderr  # the seeded data has bad records
    assert "closeloop.engine.runtime" in out.read_text().split()  # the listing is of a process that synced
    assert sandbox_modules(out) == []


def test_the_daemon_loads_no_sandbox_module(
    make_config: Callable[..., Path], daemon_factory: Callable[..., Any], tmp_path: Path
) -> None:
    command, env, out = recorded(tmp_path)
    daemon = daemon_factory(make_config(), command=command, **env)
    daemon.wait_run_finished(timeout=60)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert "closeloop.daemon.lifecycle" in out.read_text().split()
    assert sandbox_modules(out) == []


@pytest.mark.parametrize("hidden", SANDBOX_DEPENDENCIES)
@pytest.mark.parametrize("argv", [["sandbox", "--port-base", "0"], ["demo", "--people", "10"]], ids=["sandbox", "demo"])
def test_without_the_extra_sandbox_and_demo_say_how_to_install_it(argv: list[str], hidden: str, tmp_path: Path) -> None:
    command, env, _ = recorded(tmp_path)
    done = subprocess.run(  # noqa: S603 - our own interpreter and entry point, fixed arguments
        [*command, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env, "CLOSELOOP_TEST_HIDE": hidden},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == (
        f"closeloop {argv[0]}: the sandboxes are not installed (no module {hidden!r}); "
        "install the sandbox extra: pip install 'closeloop[sandbox]'"
    )
    assert "Traceback" not in done.stderr
