"""The engine against the vendor floor: CPU and wall time of a first two-way sync over those of ``bench.floor``.

For each of K pairs, two runs, interleaved (the order alternates from pair to pair, so a machine growing busier
or quieter does not favour one side): one child process runs a first two-way sync of N contacts (``Engine.sync``),
another child process does the floor's API work with no engine (:func:`bench.floor.floor`). Each child talks over
HTTP to freshly seeded sandboxes served from a third process (:func:`bench.served.served_sandboxes`), so only the
measured process's own work is counted: ``engine_cpu_s`` and ``floor_cpu_s`` are that process's CPU time
(``time.process_time``, user + system) around the work alone, after imports, seeding and the describe-free setup.

Prints one JSON line per pair, then a summary line with the medians of ``engine_cpu_s``, ``floor_cpu_s``,
``cpu_ratio`` and ``wall_ratio``, and writes everything to ``bench/results/vsfloor.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.floor import floor
from bench.harness import REPO, Population, parser, report
from bench.served import ServedUrls, served_engine, served_sandboxes

TARGET = 1.5
"""The goal: median CPU and wall ratios at most this."""
KINDS = ("engine", "floor")


async def child(kind: str, urls: ServedUrls) -> dict[str, Any]:
    """In a measured process: one first sync (``engine``) or the floor's work (``floor``), its CPU and wall time."""
    async with served_engine(urls) as (engine, _store):
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        if kind == "engine":
            outcome = await engine.sync("bench")
            done: dict[str, Any] = {"status": outcome.status.value, "api_calls": dict(outcome.api_calls)}
        else:
            done = await floor(engine.connector("crm"), engine.connector("marketing"))
        cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - wall
    return {"kind": kind, "cpu_s": round(cpu_s, 3), "wall_s": round(wall_s, 3), **done}


def run_one(kind: str, contacts: int) -> dict[str, Any]:
    """Serve fresh sandboxes for ``contacts`` and measure one ``kind`` run in its own process."""
    with served_sandboxes(Population(contacts, contacts // 10)) as urls:
        command = [sys.executable, "-m", "bench.vsfloor", "--child", kind, "--urls", json.dumps(urls.__dict__)]
        done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def pair(index: int, contacts: int) -> dict[str, Any]:
    """One engine run and one floor run, in an order that alternates with ``index``; their figures and ratios."""
    order = KINDS if index % 2 == 0 else KINDS[::-1]
    runs = {kind: run_one(kind, contacts) for kind in order}
    engine, vendor = runs["engine"], runs["floor"]
    if engine.get("status") != "ok":
        raise RuntimeError(f"the engine's sync did not succeed: {engine}")
    return {
        "pair": index + 1,
        "contacts": contacts,
        "order": list(order),
        "engine_cpu_s": engine["cpu_s"],
        "floor_cpu_s": vendor["cpu_s"],
        "engine_wall_s": engine["wall_s"],
        "floor_wall_s": vendor["wall_s"],
        "cpu_ratio": round(engine["cpu_s"] / vendor["cpu_s"], 3),
        "wall_ratio": round(engine["wall_s"] / vendor["wall_s"], 3),
    }


def summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians over the pairs."""
    names = ("engine_cpu_s", "floor_cpu_s", "engine_wall_s", "floor_wall_s", "cpu_ratio", "wall_ratio")
    medians = {name: round(statistics.median(p[name] for p in pairs), 3) for name in names}
    return {"summary": True, "contacts": pairs[0]["contacts"], "pairs": len(pairs), **medians}


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.vsfloor -n N --pairs K``."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=10_000, help="distinct contacts (default 10,000)")
    cli.add_argument("--pairs", type=int, default=3, help="interleaved engine/floor pairs (default 3)")
    cli.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    cli.add_argument("--urls", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, ServedUrls(**json.loads(args.urls))))))
        return
    if args.pairs < 1:
        cli.error("--pairs must be at least 1")
    pairs = []
    for index in range(args.pairs):
        pairs.append(pair(index, args.contacts))
        print(json.dumps(pairs[-1]), flush=True)
    medians = summary(pairs)
    print(json.dumps(medians), flush=True)
    cpu, wall = medians["cpu_ratio"], medians["wall_ratio"]
    report(
        "vsfloor",
        f"first two-way sync of {args.contacts:,} contacts against the vendor floor, {args.pairs} interleaved pairs, "
        "sandboxes served from another process",
        {"pairs": pairs, "summary": medians},
        [
            ("engine CPU, s (median)", str(medians["engine_cpu_s"]), "", None),
            ("floor CPU, s (median)", str(medians["floor_cpu_s"]), "", None),
            ("cpu_ratio (median)", f"{cpu:.2f}", f"<= {TARGET}", cpu <= TARGET),
            ("wall_ratio (median)", f"{wall:.2f}", f"<= {TARGET}", wall <= TARGET),
        ],
    )


if __name__ == "__main__":
    main()
