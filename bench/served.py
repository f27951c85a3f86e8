"""Seeded sandboxes served from their own process over real HTTP on 127.0.0.1, and an engine that talks to them.

A benchmark that measures the sync process (its memory, its CPU) must not share that process with the vendors:
in production they are remote. :func:`served_sandboxes` starts ``python -m bench.served`` (the Salesforce org and
the HubSpot portal of :func:`bench.harness.seed_sandboxes`, each on an ephemeral port under uvicorn), waits until
both answer, and stops the server on exit or failure. The server also stops when its stdin closes, so it never
outlives a parent that was killed. :func:`served_engine` is an engine whose config points at the served URLs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import REPO, Population, config_text, parser, seed_sandboxes
from closeloop.config.loader import load_config
from closeloop.engine.runtime import Engine
from closeloop.store import AnyStore, open_state_store

CRM_PLACEHOLDER, MKT_PLACEHOLDER = "http://crm.test", "http://marketing.test"
"""The hosts :func:`bench.harness.config_text` names; replaced by the served URLs."""
READY_TIMEOUT = 3600.0
"""Seconds the server may take to seed and listen (seeding 1,000,000 contacts takes minutes)."""


@dataclass(frozen=True)
class ServedUrls:
    """Where the two served sandboxes listen, and the server process's id."""

    salesforce: str
    hubspot: str
    pid: int

    def config(self) -> str:
        """A closeloop.yaml (the harness's, rate limits off) pointing at these URLs."""
        return config_text().replace(CRM_PLACEHOLDER, self.salesforce).replace(MKT_PLACEHOLDER, self.hubspot)

    def server_peak_mb(self) -> float | None:
        """The server process's peak resident size so far (Linux /proc), or None once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


@contextmanager
def served_sandboxes(population: Population, *, timeout: float = READY_TIMEOUT) -> Iterator[ServedUrls]:
    """Seed and serve both sandboxes in a child process; yield their URLs once both answer; always stop it."""
    with tempfile.TemporaryDirectory(prefix="closeloop-served-") as tmp:
        ready = Path(tmp) / "ready.json"
        command = [sys.executable, "-m", "bench.served", "--ready", str(ready), "-n", str(population.contacts)]
        server = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE)  # noqa: S603 - our own module
        try:
            urls = _wait_ready(server, ready, timeout)
            yield urls
        finally:
            _stop(server)


def _wait_ready(server: subprocess.Popen[bytes], ready: Path, timeout: float) -> ServedUrls:
    """Poll until the server wrote its URLs and each sandbox answers its stats endpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"sandbox server exited with status {server.returncode} before it was ready")
        if ready.exists():
            found = json.loads(ready.read_text())
            urls = ServedUrls(found["salesforce"], found["hubspot"], server.pid)
            if all(_answers(url) for url in (urls.salesforce, urls.hubspot)):
                return urls
        time.sleep(0.2)
    raise TimeoutError(f"sandbox server not ready after {timeout:.0f} s")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/__sandbox/stats", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the server is still there after 10 s."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.stdin is not None:
        server.stdin.close()


@asynccontextmanager
async def served_engine(
    urls: ServedUrls, *, workdir: Path | None = None, state: str | None = None
) -> AsyncIterator[tuple[Engine, AnyStore]]:
    """An engine syncing connection ``bench`` with the served sandboxes over HTTP, its store in a temporary dir
    (or at ``state``, a PostgreSQL URL)."""
    with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as tmp:
        where = workdir or Path(tmp)
        (where / "closeloop.yaml").write_text(urls.config())
        loaded = load_config(where / "closeloop.yaml", environ={})
        store = open_state_store(state or where / "state.db")
        engine = Engine(loaded, store)
        try:
            yield engine, store
        finally:
            await engine.aclose()
            store.close()


# -- the server process -----------------------------------------------------------------------------------
async def serve(population: Population, ready: Path) -> None:
    """Seed, listen on ephemeral ports, write the URLs to ``ready``, serve until SIGTERM/SIGINT or stdin closes."""
    from closeloop.sandbox.serve import serving

    crm, mkt = seed_sandboxes(population)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), _on_stdin, loop, stop)
    async with serving([("salesforce", crm), ("hubspot", mkt)]) as served:
        urls = {item.name: item.base_url for item in served}
        partial = ready.with_suffix(".tmp")
        partial.write_text(json.dumps(urls))
        os.replace(partial, ready)  # the parent never reads half a file
        await stop.wait()


def _on_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once stdin reaches its end: the parent closed it or died."""
    if not os.read(sys.stdin.fileno(), 4096):
        loop.remove_reader(sys.stdin.fileno())
        stop.set()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.served --ready FILE -n N``: the server process (started by :func:`served_sandboxes`)."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=100_000, help="distinct contacts (default 100,000)")
    cli.add_argument("--ready", type=Path, required=True, help="where to write the URLs once listening")
    args = cli.parse_args(argv)
    asyncio.run(serve(Population(args.contacts, args.contacts // 10), args.ready))


if __name__ == "__main__":
    main()
