"""End-to-end fixtures: served sandboxes and a real ``closeloop run`` subprocess, always killed afterwards."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CLOSELOOP = [sys.executable, "-m", "closeloop.cli"]
HUBSPOT_TOKEN = "pat-na1-sandbox-1"  # the sandbox's private-app token for seed 1
WEBHOOK_SECRET = "e2e-hubspot-app-secret"


def finished_run(record: dict[str, Any]) -> bool:
    """A log line of the engine saying how a run ended."""
    return record.get("logger") == "closeloop.engine.runtime" and "run_id" in record


def started_run(record: dict[str, Any]) -> bool:
    """The daemon's log line as a run starts."""
    return str(record.get("msg", "")).endswith("started") and "connection" in record


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    with stream:  # closed at EOF by the reader, so no pipe is left for the garbage collector
        for line in stream:
            lines.put(line.rstrip("\n"))


def reader(process: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """A thread moving the process's stdout lines into a queue."""
    lines: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    thread.start()
    return lines, thread


def stop(process: subprocess.Popen[str], thread: threading.Thread) -> None:
    """Terminate, then kill if it lingers; wait for its output reader to finish."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[dict[str, str]]:
    """HubSpot and Salesforce sandboxes served on free ports: vendor -> base URL."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*CLOSELOOP, "sandbox", "--vendor", "hubspot", "--vendor", "salesforce", "--port-base", "0", "--people", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    lines, thread = reader(process)
    urls: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while len(urls) < 2:
            vendor, _, url = lines.get(timeout=max(deadline - time.monotonic(), 0.1)).partition(" ")
            if url.startswith("http"):
                urls[vendor] = url
        yield urls
    finally:
        stop(process, thread)


def write_config(folder: Path, urls: dict[str, str], *, schedule: str = "{every: 1h, jitter: 1s}") -> Path:
    """A config pointing at the served sandboxes, with the repository's mappings."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config" / "mappings", folder / "mappings", dirs_exist_ok=True)
    path = folder / "closeloop.yaml"
    path.write_text(
        f"""\
state:
  path: ./state/e2e.db
systems:
  crm:
    connector: salesforce
    settings:
      base_url: {urls["salesforce"]}
      auth_url: {urls["salesforce"]}
      auth_flow: client_credentials
      client_id: closeloop-sandbox
      client_secret: closeloop-sandbox-secret
      timeout_seconds: 10
  marketing:
    connector: hubspot
    settings:
      base_url: {urls["hubspot"]}
      access_token: {HUBSPOT_TOKEN}
      timeout_seconds: 10
connections:
  - name: crm-marketing
    systems: [crm, marketing]
    mappings: [mappings/contacts.yaml, mappings/deals.yaml]
    schedule: {schedule}
    marketing_system: marketing
"""
    )
    return path


class Daemon:
    """A ``closeloop run`` subprocess whose JSON log lines are collected as they come."""

    def __init__(self, config: Path, state_dir: Path, *, command: list[str] | None = None, **env: str) -> None:
        environ = {
            **os.environ,
            "CLOSELOOP_HTTP_PORT": "0",
            "CLOSELOOP_STATE_DIR": str(state_dir),
            "CLOSELOOP_LOG_FORMAT": "json",
            "CLOSELOOP_RELOAD_POLL_SECONDS": "0",
            "CLOSELOOP_EARLY_RUN_GAP_SECONDS": "0",  # the tests' webhooks expect their run at once
            "CLOSELOOP_WEBHOOK_HUBSPOT_SECRET": WEBHOOK_SECRET,
            **env,
        }
        self.state_dir = state_dir
        self.webhook_secret = environ["CLOSELOOP_WEBHOOK_HUBSPOT_SECRET"]
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*(command or CLOSELOOP), "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # start-up refusals are plain lines among the JSON ones
            text=True,
            env=environ,
            cwd=config.parent,
        )
        self.records: list[dict[str, Any]] = []
        self._lines, self._reader = reader(self.process)
        try:
            self.url = self.wait_for(lambda r: "http_url" in r, timeout=20)["http_url"]
        except BaseException:
            self.stop()
            raise

    def _drain(self, timeout: float) -> bool:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return False
        try:
            self.records.append(json.loads(line))
        except ValueError:
            self.records.append({"msg": line})
        return True

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], *, timeout: float = 20, after: int = 0
    ) -> dict[str, Any]:
        """The first log record from index ``after`` on that matches, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((r for r in self.records[after:] if match(r)), None)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.process.poll() is not None and self._lines.empty()):
                raise AssertionError(f"no matching log line; last lines: {self.records[-5:]}")
            self._drain(min(remaining, 0.5))

    def wait_run_started(self, *, timeout: float = 20, after: int = 0) -> dict[str, Any]:
        """The next 'run of ... started' line."""
        return self.wait_for(started_run, timeout=timeout, after=after)

    def wait_run_finished(self, *, timeout: float = 25, after: int = 0) -> dict[str, Any]:
        """The next line saying how a run ended."""
        return self.wait_for(finished_run, timeout=timeout, after=after)

    def runs_finished(self) -> int:
        """How many 'run of ...: <status>' lines the engine has logged so far."""
        while self._drain(0):
            pass
        return sum(1 for r in self.records if r.get("logger") == "closeloop.engine.runtime")

    def http(self) -> httpx.Client:
        """A client for the daemon's endpoints."""
        return httpx.Client(base_url=self.url, timeout=10)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the daemon."""
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting up to ``timeout`` seconds."""
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Make sure the process is gone."""
        stop(self.process, self._reader)


@pytest.fixture
def make_config(sandboxes: dict[str, str], tmp_path: Path) -> Callable[..., Path]:
    """Write a config for the served sandboxes into tmp_path/etc; keyword ``schedule`` overrides the schedule."""

    def make(**kwargs: str) -> Path:
        return write_config(tmp_path / "etc", sandboxes, **kwargs)

    return make


@pytest.fixture
def cli() -> list[str]:
    """The command line that runs closeloop with this interpreter."""
    return list(CLOSELOOP)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons for a test; every one is stopped afterwards, whatever happened."""
    started: list[Daemon] = []

    def start(config: Path, *, state_dir: Path | None = None, command: list[str] | None = None, **env: str) -> Daemon:
        daemon = Daemon(config, state_dir or tmp_path / "state", command=command, **env)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()
