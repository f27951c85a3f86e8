"""Which connection leases a replica should hold: pure functions, no database.

The rule: with R live replicas and C connections, a replica holds at most ``ceil(C / R)`` leases. Each replica
tries the connections in its own order (rendezvous hashing of replica and connection name), so replicas starting
together mostly reach for different connections and a replica that restarts gets the same ones back.
"""

from __future__ import annotations

import math
import os
import socket
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

REPLICA_VARIABLE = "CLOSELOOP_REPLICA"


class LeaseHeld(Exception):
    """Another process (a replica, or another ``closeloop sync``) holds this connection's lease.

    Defined here, away from psycopg, so the CLI can catch it without importing the driver on SQLite."""


def replica_name(environ: dict[str, str] | None = None) -> str:
    """This process's replica name: ``CLOSELOOP_REPLICA``, else ``<hostname>-<pid>``."""
    env = os.environ if environ is None else environ
    given = env.get(REPLICA_VARIABLE, "").strip()
    return given or f"{socket.gethostname()}-{os.getpid()}"


def fair_share(connections: int, replicas: int) -> int:
    """The most leases one replica may hold while ``replicas`` replicas (itself included) are alive."""
    return math.ceil(connections / max(replicas, 1))


def key32(text: str) -> int:
    """A stable non-negative 31-bit key of ``text`` (advisory lock keys are int4; CRC32 is stable across runs)."""
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def preference(replica: str, connections: Iterable[str]) -> list[str]:
    """``connections`` in the order ``replica`` reaches for them (highest rendezvous weight first)."""
    return sorted(connections, key=lambda c: (-zlib.crc32(f"{replica}\x00{c}".encode()), c))


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """What to do at one lease tick: leases to give up, then up to ``room`` of ``candidates`` to take, in order."""

    release: tuple[str, ...]
    candidates: tuple[str, ...]
    room: int


def plan_leases(
    replica: str,
    wanted: Sequence[str],
    held: Collection[str],
    live_replicas: int,
    running: Collection[str] = (),
) -> LeasePlan:
    """The plan for ``replica`` holding ``held`` among ``wanted`` connections while ``live_replicas`` are alive.

    Leases of connections no longer configured go; above the fair share, the least-preferred idle leases go
    (a running connection keeps its lease until its run ends); below it, the most-preferred free ones are tried.
    """
    quota = fair_share(len(wanted), live_replicas)
    order = preference(replica, wanted)
    release = [c for c in held if c not in wanted]
    keep = [c for c in order if c in held]
    excess = len(keep) - quota
    if excess > 0:
        idle = [c for c in reversed(keep) if c not in running][:excess]
        release.extend(idle)
        keep = [c for c in keep if c not in idle]
    # Every free connection is a candidate: the preferred ones may be held elsewhere, the shell takes what it can.
    candidates = tuple(c for c in order if c not in held) if len(keep) < quota else ()
    return LeasePlan(tuple(sorted(release)), candidates, max(quota - len(keep), 0))
