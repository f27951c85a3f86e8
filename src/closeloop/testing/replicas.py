"""A world for replica tests and benchmarks: C connections, each its own Salesforce org and HubSpot portal.

Pair ``i`` holds people whose indexes start at ``i * PAIR_STRIDE``, so no two pairs share an email and no golden
record is matched across connections. :func:`serve_pairs` serves them from a thread (a test can look into the
sandboxes afterwards); ``python -m closeloop.testing.replicas`` serves them from a process of their own (a
benchmark measuring CPU must not share its process with the vendors). :func:`overlapping_runs` reads the run
history for the one thing replicas must never do: two runs of one connection at once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from closeloop.connector import registry
from closeloop.sandbox.kit import SandboxBase

SEED = 1
PAIR_STRIDE = 1_000_000
HUBSPOT_TOKEN = f"pat-na1-sandbox-{SEED}"


@dataclass(frozen=True)
class Pair:
    """One connection's two sandboxes (None when they live in another process) and where they listen."""

    crm: SandboxBase | None
    mkt: SandboxBase | None
    crm_url: str = ""
    mkt_url: str = ""


def seed_pair(index: int, contacts: int, *, latency_s: float = 0.0) -> Pair:
    """Salesforce with 60% of pair ``index``'s people and a tenth as many deals, HubSpot with the last 60%."""
    installed = registry()
    crm_people = contacts * 6 // 10
    base = index * PAIR_STRIDE
    crm = installed.get("salesforce").sandbox(  # type: ignore[misc]  # the registry types factories loosely
        seed=SEED, people=crm_people, deals=contacts // 10, offset=base
    )
    mkt = installed.get("hubspot").sandbox(  # type: ignore[misc]  # the registry types factories loosely
        seed=SEED, people=crm_people, deals=0, offset=base + contacts - crm_people
    )
    for box in (crm, mkt):
        box.knobs.enforce_limits = False
        box.knobs.latency_s = latency_s
    return Pair(crm, mkt)


async def _serve(pairs: Sequence[Pair], stop: asyncio.Event, on_ready: Callable[[list[Pair]], None]) -> None:
    from closeloop.sandbox.serve import serving

    boxes: list[tuple[str, SandboxBase]] = []
    for pair in pairs:
        if pair.crm is None or pair.mkt is None:
            raise ValueError("only seeded pairs can be served")
        boxes += [("salesforce", pair.crm), ("hubspot", pair.mkt)]
    async with serving(boxes) as listening:
        urls = [item.base_url for item in listening]
        on_ready([Pair(p.crm, p.mkt, urls[2 * i], urls[2 * i + 1]) for i, p in enumerate(pairs)])
        await stop.wait()


def _write_ready(ready: Path, served: list[Pair]) -> None:
    partial = ready.with_suffix(".tmp")
    partial.write_text(json.dumps([[p.crm_url, p.mkt_url] for p in served]))
    os.replace(partial, ready)  # the parent never reads half a file


@contextmanager
def serve_pairs(pairs: Sequence[Pair]) -> Iterator[list[Pair]]:
    """Serve every pair on loopback from a thread with its own event loop until the block ends."""
    served: list[Pair] = []
    started = threading.Event()
    failure: list[BaseException] = []
    handles: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def ready(listening: list[Pair]) -> None:
        served.extend(listening)
        started.set()

    async def main() -> None:
        stop = asyncio.Event()
        handles.append((asyncio.get_running_loop(), stop))
        await _serve(pairs, stop, ready)

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    started.wait(timeout=60)
    if failure or not served:
        raise RuntimeError(f"sandboxes did not start: {failure}")
    try:
        yield served
    finally:
        loop, stop = handles[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


@contextmanager
def serve_pairs_in_process(count: int, contacts: int, latency_s: float, workdir: Path) -> Iterator[list[Pair]]:
    """Serve ``count`` pairs from a child process; yield URL-only pairs once they listen; always stop it."""
    ready = workdir / "pairs.json"
    command = [
        sys.executable,
        "-m",
        "closeloop.testing.replicas",
        "--pairs",
        str(count),
        "--contacts",
        str(contacts),
        "--latency-ms",
        str(latency_s * 1000),
        "--ready",
        str(ready),
    ]
    server = subprocess.Popen(command, stdin=subprocess.PIPE)  # noqa: S603 - our own module, fixed arguments
    try:
        deadline = time.monotonic() + 600
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
        yield [Pair(None, None, crm, mkt) for crm, mkt in urls]
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if server.stdin is not None:
            server.stdin.close()


_SYSTEM_NAME = re.compile(r"(?<![\w.-])(crm|marketing)(?![\w-])")


def pair_mappings(index: int, source: Path, target: Path) -> list[Path]:
    """The contact and deal mappings with their systems renamed ``crm<i>`` and ``marketing<i>``, written to
    ``target``: mappings name systems, and each connection here has systems of its own."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("contacts.yaml", "deals.yaml"):
        text = _SYSTEM_NAME.sub(lambda m: f"{m.group(1)}{index}", (source / name).read_text())
        path = target / f"{Path(name).stem}-{index}.yaml"
        path.write_text(text)
        written.append(path)
    return written


def config_text(pairs: Sequence[Pair], mappings: Path, workdir: Path, *, schedule: str, state: str = "") -> str:
    """A closeloop.yaml with connection ``c<i>`` between ``crm<i>`` and ``marketing<i>`` of each pair; the
    repository's mappings (from ``mappings``) are renamed per pair into ``workdir``."""
    systems, connections = [], []
    for i, pair in enumerate(pairs):
        contacts, deals = pair_mappings(i, mappings, workdir / "mappings")
        systems.append(
            f"""  crm{i}:
    connector: salesforce
    settings: {{base_url: '{pair.crm_url}', auth_url: '{pair.crm_url}', auth_flow: client_credentials,
      client_id: closeloop-sandbox, client_secret: closeloop-sandbox-secret, timeout_seconds: 30}}
  marketing{i}:
    connector: hubspot
    settings: {{base_url: '{pair.mkt_url}', access_token: {HUBSPOT_TOKEN}, timeout_seconds: 30}}
"""
        )
        connections.append(
            f"""  - name: c{i}
    systems: [crm{i}, marketing{i}]
    mappings: [{contacts}, {deals}]
    schedule: {schedule}
    lookback: 1m
    marketing_system: marketing{i}
"""
        )
    return (
        (f"state: {state}\n" if state else "")
        + "systems:\n"
        + "".join(systems)
        + "connections:\n"
        + "".join(connections)
        + 'loop: {base_currency: USD, rates: {EUR: "1.08", GBP: "1.27"}}\n'
    )


@dataclass(frozen=True)
class RunSpan:
    """When one run of one connection began and ended (None: still running), and which replica ran it."""

    connection: str
    replica: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str


def overlapping_runs(runs: Sequence[RunSpan]) -> list[tuple[RunSpan, RunSpan]]:
    """Pairs of runs of one connection whose spans overlap (a run still going overlaps everything after it)."""
    found: list[tuple[RunSpan, RunSpan]] = []
    by_connection: dict[str, list[RunSpan]] = {}
    for run in runs:
        by_connection.setdefault(run.connection, []).append(run)
    for spans in by_connection.values():
        spans.sort(key=lambda r: r.started_at)
        for earlier, later in itertools.pairwise(spans):
            if earlier.finished_at is None or earlier.finished_at > later.started_at:
                found.append((earlier, later))
    return found


def _serve_main(argv: Sequence[str] | None = None) -> None:
    """``python -m closeloop.testing.replicas``: seed and serve pairs until SIGTERM or stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--contacts", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args(argv)
    pairs = [seed_pair(i, args.contacts, latency_s=args.latency_ms / 1000) for i in range(args.pairs)]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):  # the parent closed it or died
                loop.remove_reader(sys.stdin.fileno())
                stop.set()

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await _serve(pairs, stop, lambda served: _write_ready(args.ready, served))

    asyncio.run(main())


if __name__ == "__main__":
    _serve_main()
