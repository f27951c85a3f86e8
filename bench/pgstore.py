"""PostgreSQL against SQLite: CPU per record of a first sync, the same sync on each state store.

The sandboxes are served from their own process (``bench.served``), so the sync process's CPU is closeloop's alone.
For PostgreSQL the server's side counts too: the CPU of the store's backend process (read from /proc, the server
runs on this machine) is added to the client's, since on SQLite that work happens inside the sync process. Each
back-end's first sync runs ``--repeat`` times on fresh sandboxes and a fresh store (a new schema on PostgreSQL);
the lowest CPU of each (noise only ever adds) and the medians are compared, as the machine is shared. Goal:
PostgreSQL at most 1.3x SQLite's CPU per record.

``cpu_per_record(contacts, backend)`` is the measurement on its own, for other benchmarks (bench.replicas).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any, Literal

from bench.harness import Population, parser, report
from bench.served import served_engine, served_sandboxes
from closeloop.testing.postgres import fresh_schema, server_url, unreachable

GOAL = 1.3
Backend = Literal["sqlite", "postgres"]
_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15 of stat


async def _first_sync(urls: Any, state: str | None, population: Population) -> dict[str, Any]:
    async with served_engine(urls, state=state) as (engine, store):
        backend_pid = getattr(store, "connection", None) and store.connection.info.backend_pid  # type: ignore[union-attr]
        server_before = _process_cpu(backend_pid) if backend_pid else 0.0
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        outcome = await engine.sync("bench")
        client = time.process_time() - cpu_before
        wall = time.perf_counter() - wall_before
        server = (_process_cpu(backend_pid) - server_before) if backend_pid else 0.0
    records = population.records
    return {
        "status": outcome.status.value,
        "records": records,
        "wall_seconds": round(wall, 3),
        "client_cpu_seconds": round(client, 3),
        "server_cpu_seconds": round(server, 3),
        "cpu_us_per_record": round((client + server) / records * 1e6, 1),
        "client_cpu_us_per_record": round(client / records * 1e6, 1),
    }


def cpu_per_record(contacts: int, backend: Backend, *, url: str | None = None) -> dict[str, Any]:
    """One first sync of ``contacts`` (+10% deals) on fresh served sandboxes and a fresh store of ``backend``.

    PostgreSQL uses a new schema on ``url`` (default: the test server, $CLOSELOOP_TEST_POSTGRES), dropped after.
    """
    population = Population(contacts, contacts // 10)
    with served_sandboxes(population) as urls:
        if backend == "sqlite":
            return asyncio.run(_first_sync(urls, None, population))
        with fresh_schema(url or server_url()) as schema_url:
            return asyncio.run(_first_sync(urls, schema_url, population))


def main(argv: list[str] | None = None) -> None:
    """Alternate SQLite and PostgreSQL first syncs; report the best CPU per record of each and their ratio."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=5_000, help="distinct contacts (default 5,000)")
    cli.add_argument("--repeat", type=int, default=3, help="first syncs per back-end (default 3)")
    cli.add_argument("--url", default=None, help="PostgreSQL server (default $CLOSELOOP_TEST_POSTGRES or local test)")
    args = cli.parse_args(argv)
    problem = unreachable(args.url or server_url())
    if problem is not None:
        raise SystemExit(f"no PostgreSQL server answers: {problem}")
    runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgres": []}
    for _ in range(args.repeat):
        for backend in ("sqlite", "postgres"):
            runs[backend].append(cpu_per_record(args.contacts, backend, url=args.url))  # type: ignore[arg-type]
            print(f"  {backend}: {runs[backend][-1]}", flush=True)
    best = {name: min(r["cpu_us_per_record"] for r in found) for name, found in runs.items()}
    middle = {name: statistics.median(r["cpu_us_per_record"] for r in found) for name, found in runs.items()}
    client = min(r["client_cpu_us_per_record"] for r in runs["postgres"])
    ratio = best["postgres"] / best["sqlite"]
    median_ratio = middle["postgres"] / middle["sqlite"]
    report(
        "pgstore",
        f"first sync of {args.contacts:,} contacts (+10% deals), sandboxes served from another process; "
        f"best and median of {args.repeat} per back-end",
        {
            "runs": runs,
            "best_cpu_us_per_record": best,
            "ratio": round(ratio, 3),
            "median_ratio": round(median_ratio, 3),
        },
        [
            ("SQLite CPU us/record (best)", f"{best['sqlite']:.1f}", "", None),
            ("PostgreSQL CPU us/record (best, client+server)", f"{best['postgres']:.1f}", "", None),
            ("PostgreSQL CPU us/record (best, client only)", f"{client:.1f}", "", None),
            (
                "PostgreSQL / SQLite CPU per record (medians)",
                f"{median_ratio:.2f}x",
                f"<= {GOAL}x",
                median_ratio <= GOAL,
            ),
            ("PostgreSQL / SQLite CPU per record (bests)", f"{ratio:.2f}x", f"<= {GOAL}x", ratio <= GOAL),
        ],
    )


if __name__ == "__main__":
    main()
