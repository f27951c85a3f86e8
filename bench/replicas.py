"""Replicas on PostgreSQL: the first sync of C connections by 1 and 2 replicas on PostgreSQL and 1 on SQLite.

Each connection has its own Salesforce org and HubSpot portal, served from another process with 50 ms latency per
call, so runs are API-bound as in production. Each scenario starts from fresh sandboxes and a fresh store, starts
R ``closeloop run`` processes (every connection due at start), and waits until every connection has finished its
first run. Printed: wall time (first run start to last run end, from the run history), runs per replica, and CPU
per record: the closeloop processes' CPU, plus, on PostgreSQL, the CPU of the server backends serving them (read
from /proc: the server runs on this machine), against SQLite's.
Also printed, to tell whether a scenario is bound by CPU or by the API's latency: the sandbox server's CPU, the
cores kept busy by closeloop, PostgreSQL and the sandboxes together, and how many runs ran at once on average.
``-c 1`` gives the time of one connection's first sync alone, which no number of replicas shortens.
Goals: PostgreSQL at most 1.3x SQLite's CPU per record; 2 replicas finish C = 4 in at most 0.6x the time of 1.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from bench.harness import REPO, parser, report
from closeloop.model import parse_utc
from closeloop.testing.postgres import server_url
from closeloop.testing.replicas import RunSpan, config_text, serve_pairs_in_process

LATENCY_S = 0.05
CPU_GOAL = 1.3
WALL_GOAL = 0.6
_TICK = os.sysconf("SC_CLK_TCK")


def _children(exclude: set[int]) -> list[int]:
    """This process's child processes (Linux /proc) but ``exclude``: here, the sandbox server."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if int(fields[1]) == me and pid not in exclude:
            found.append(pid)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass(frozen=True)
class Outcome:
    """One scenario's figures."""

    name: str
    wall_s: float
    runs_per_replica: dict[str, int]
    closeloop_cpu_s: float
    server_cpu_s: float
    records: int
    sandbox_cpu_s: float = 0.0
    run_s: float = 0.0
    """The runs' durations added up: over the wall time, how many ran at once on average."""
    """The vendors' side: the CPU of the process serving the sandboxes over the same span."""

    @property
    def cores_busy(self) -> float:
        """closeloop, the database server and the sandboxes together, in cores kept busy over the wall time."""
        return (self.closeloop_cpu_s + self.server_cpu_s + self.sandbox_cpu_s) / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_per_record_ms(self) -> float:
        """closeloop's and the database server's CPU per record synced, in milliseconds."""
        return (self.closeloop_cpu_s + self.server_cpu_s) * 1000 / self.records


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL whose sessions use a new schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options={quote(f'-c search_path={schema}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _runs_pg(url: str) -> list[RunSpan]:
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT connection, replica, started_at, finished_at, status FROM runs").fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        return []
    return [RunSpan(str(c), r, parse_utc(str(s)), parse_utc(str(f)) if f else None, str(st)) for c, r, s, f, st in rows]


def _runs_sqlite(path: Path) -> list[RunSpan]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT connection, replica, started_at, finished_at, status FROM runs").fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []
    return [RunSpan(str(c), r, parse_utc(str(s)), parse_utc(str(f)) if f else None, str(st)) for c, r, s, f, st in rows]


def _server_pids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'closeloop%%' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def _wait_listening(work: Path, daemons: list[subprocess.Popen[bytes]]) -> None:
    """Until every daemon has logged that it is running (its first runs start about then)."""
    deadline = time.monotonic() + 120
    for i, daemon in enumerate(daemons):
        log = work / f"r{i}.log"
        while "http_url" not in log.read_text():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica r{i} did not start: {log.read_text()[-500:]}")
            time.sleep(0.05)


def scenario(name: str, connections: int, contacts: int, replicas: int, pg_url: str | None) -> Outcome:
    """Fresh sandboxes and store, R daemons, wait for every connection's first run; the figures."""
    with tempfile.TemporaryDirectory(prefix="closeloop-replicas-") as tmp:
        work = Path(tmp)
        with serve_pairs_in_process(connections, contacts, LATENCY_S, work) as pairs:
            config = work / "closeloop.yaml"
            state = "" if pg_url else f"{{path: {work / 'state.db'}}}"
            text = config_text(
                pairs, REPO / "config" / "mappings", work, schedule="{every: 1h, jitter: 1s}", state=state
            )
            config.write_text(text)
            return _measure(name, config, work, connections, contacts, replicas, pg_url)


def _measure(
    name: str, config: Path, work: Path, connections: int, contacts: int, replicas: int, pg_url: str | None
) -> Outcome:
    env = {
        **os.environ,
        "CLOSELOOP_HTTP_PORT": "0",
        "CLOSELOOP_LOG_FORMAT": "json",
        "CLOSELOOP_RELOAD_POLL_SECONDS": "0",
        "CLOSELOOP_LOG_LEVEL": "INFO",
    }
    if pg_url:
        env["CLOSELOOP_STATE_URL"] = pg_url
    daemons = []
    for i in range(replicas):
        with (work / f"r{i}.log").open("w") as log:
            daemons.append(
                subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                    [sys.executable, "-m", "closeloop.cli", "run", "--config", str(config)],
                    env={**env, "CLOSELOOP_REPLICA": f"r{i}"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=work,
                )
            )
    try:
        # CPU is counted from the moment each daemon listens: start-up (imports, migrations) is not per record.
        _wait_listening(work, daemons)
        own_base = sum(cpu_seconds(d.pid) for d in daemons)
        sandboxes = _children({d.pid for d in daemons})
        sandbox_base = sum(cpu_seconds(pid) for pid in sandboxes)
        server_base = {pid: cpu_seconds(pid) for pid in _server_pids(pg_url)} if pg_url else {}
        runs: list[RunSpan] = []
        deadline = time.monotonic() + 1800
        while len({r.connection for r in runs if r.finished_at is not None}) < connections:
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                tails = [(work / f"r{i}.log").read_text()[-500:] for i in range(replicas)]
                raise RuntimeError(f"{name}: the first syncs did not finish: {tails}")
            time.sleep(0.2)
            runs = _runs_pg(pg_url) if pg_url else _runs_sqlite(work / "state.db")
        pids = _server_pids(pg_url) if pg_url else []
        server = sum(cpu_seconds(pid) - server_base.get(pid, 0.0) for pid in pids)
        own = sum(cpu_seconds(d.pid) for d in daemons) - own_base
        sandbox = sum(cpu_seconds(pid) for pid in sandboxes) - sandbox_base
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    first = [r for r in runs if r.finished_at is not None]
    started = min(r.started_at for r in first)
    ended = max(r.finished_at for r in first if r.finished_at is not None)
    per_replica = Counter(r.replica or "(single node)" for r in first)
    # Records a first sync makes agree: the people (60% in each system, 20% in both) and the deals.
    records = connections * (contacts + contacts // 10)
    run_s = sum((r.finished_at - r.started_at).total_seconds() for r in first if r.finished_at is not None)
    wall = (ended - started).total_seconds()
    return Outcome(name, wall, dict(per_replica), own, server, records, sandbox, run_s)


def main(argv: list[str] | None = None) -> None:
    """Run the three scenarios and report."""
    cli = parser(__doc__ or "")
    cli.add_argument("-c", "--connections", type=int, default=4)
    cli.add_argument("-n", "--contacts", type=int, default=2000, help="people per pair of sandboxes")
    cli.add_argument("--url", default=server_url())
    args = cli.parse_args(argv)
    c, n = args.connections, args.contacts
    sqlite_one = scenario("sqlite, 1 replica", c, n, 1, None)
    with fresh_schema(args.url) as url:
        pg_one = scenario("postgresql, 1 replica", c, n, 1, url)
    with fresh_schema(args.url) as url:
        pg_two = scenario("postgresql, 2 replicas", c, n, 2, url)
    outcomes = [sqlite_one, pg_one, pg_two]
    for o in outcomes:
        print(
            f"  {o.name:<24} wall {o.wall_s:6.2f} s   runs per replica {o.runs_per_replica}   "
            f"CPU closeloop {o.closeloop_cpu_s:6.2f} s + server {o.server_cpu_s:5.2f} s = "
            f"{o.cpu_per_record_ms:.2f} ms/record   sandboxes {o.sandbox_cpu_s:5.2f} s   "
            f"cores busy {o.cores_busy:.2f} of {len(os.sched_getaffinity(0))}   "
            f"runs at once {o.run_s / o.wall_s if o.wall_s else 0.0:.2f}"
        )
    cpu_ratio = pg_one.cpu_per_record_ms / sqlite_one.cpu_per_record_ms
    wall_ratio = pg_two.wall_s / pg_one.wall_s
    report(
        "replicas",
        f"first sync of {c} connections x {n} people (+{n // 10} deals), {LATENCY_S * 1000:.0f} ms per call",
        {o.name: o.__dict__ | {"cpu_per_record_ms": o.cpu_per_record_ms} for o in outcomes},
        [
            ("PostgreSQL CPU per record / SQLite's", f"{cpu_ratio:.2f}x", f"<= {CPU_GOAL}x", cpu_ratio <= CPU_GOAL),
            (f"2 replicas' wall time / 1's (C={c})", f"{wall_ratio:.2f}x", f"<= {WALL_GOAL}x", wall_ratio <= WALL_GOAL),
        ],
    )


if __name__ == "__main__":
    main()
