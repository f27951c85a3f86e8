"""Connection leases on PostgreSQL: a replica runs a connection only while it holds that connection's lease.

Exclusion is a session advisory lock per connection, held by the replica's lease session (one PostgreSQL
connection kept open for the replica's life). Why a lock and not a lease row with an expiry: the server drops a
session's advisory locks the moment the session ends, so a replica killed with SIGKILL (its socket closed by the
kernel) frees its connections at once, with no expiry to tune and no clock to trust; a row with an expiry either
waits out the expiry (slow takeover) or risks two holders when a live replica's heartbeat is late (unsafe).
The tables beside the locks are for people and for the fair share, never for exclusion:

* ``closeloop_replicas``: one heartbeat row per replica (name, started, last heartbeat, leases held);
* ``closeloop_leases``: which replica took which connection, and when;
* ``closeloop_wakeups``: early runs asked of a connection whose lease another replica holds (webhooks reach any
  replica; the holder consumes the row at its next tick, so N replicas receiving a webhook make one run).

Each replica also holds an advisory lock on its own name: the live replicas are counted from ``pg_locks``, so a
dead replica stops counting as soon as its session ends, and two replicas given the same name cannot both start.
Lock keys are (namespace, key) pairs whose namespace is derived from the schema, so stores in different schemas
of one database never contend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg

from closeloop.store.fence import Fence, fenced
from closeloop.store.lease_plan import LeaseHeld, key32, plan_leases

__all__ = ["LeaseHeld", "Leases", "ReplicaNameInUse", "connection_lease", "ensure_tables"]

log = logging.getLogger(__name__)

LEASE_DDL = (
    "CREATE TABLE IF NOT EXISTS closeloop_replicas (name text PRIMARY KEY, started_at timestamptz NOT NULL,"
    " heartbeat_at timestamptz NOT NULL, leases integer NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS closeloop_leases (connection text PRIMARY KEY, replica text NOT NULL,"
    " acquired_at timestamptz NOT NULL)",
    "CREATE TABLE IF NOT EXISTS closeloop_wakeups (connection text PRIMARY KEY, requested_at timestamptz NOT NULL,"
    " reason text NOT NULL)",
    # The fence (closeloop.store.fence): each take of a lease writes a generation no take ever wrote before.
    "CREATE SEQUENCE IF NOT EXISTS closeloop_lease_generation",
    "ALTER TABLE closeloop_leases ADD COLUMN IF NOT EXISTS generation bigint NOT NULL"
    " DEFAULT nextval('closeloop_lease_generation')",
)

_TAKE = (
    "INSERT INTO closeloop_leases (connection, replica, acquired_at) VALUES (%s, %s, now())"
    " ON CONFLICT (connection) DO UPDATE SET replica = excluded.replica, acquired_at = now(),"
    " generation = excluded.generation RETURNING generation"
)
"""Record a lease just locked, under a new generation; a run in flight under the old one keeps the row locked
(``FOR SHARE``) until its page commits, so this waits for it, and the run's next page finds itself fenced off."""

_CLI_HOLDER = "closeloop sync"
"""The holder ``closeloop_leases`` names while a ``closeloop sync`` holds a lease."""

# A replica cut off by the network (no FIN, no RST) is found dead by TCP keepalives within ~25 s; these are
# session settings any role may change.
_KEEPALIVES = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"


class ReplicaNameInUse(Exception):
    """Another live replica on this store already uses this replica name."""


def lease_namespace(schema: str) -> int:
    """The first advisory-lock key of connection leases in ``schema`` (the second is the connection's key32)."""
    return key32(f"closeloop lease {schema}")


@contextmanager
def connection_lease(conninfo: str, connection: str) -> Iterator[Fence]:
    """Hold one connection's lease for the block, as a replica would: what ``closeloop sync`` does on a shared
    PostgreSQL store, so it never runs a connection a replica is running. :class:`LeaseHeld` names the holder.

    The block is fenced (``closeloop.store.fence``): should the lease session die and a replica take the lease,
    the block's next store transaction fails instead of committing.
    """
    with psycopg.connect(conninfo, autocommit=True, application_name="closeloop:sync") as conn:
        ensure_tables_sync(conn)
        row = conn.execute("SELECT current_schema()").fetchone()
        key = (lease_namespace(str(row[0]) if row else "public"), key32(connection))
        got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
        if not got or not got[0]:
            holder = conn.execute(
                "SELECT replica FROM closeloop_leases WHERE connection = %s", (connection,)
            ).fetchone()
            who = f"replica {holder[0]!r}" if holder and holder[0] != _CLI_HOLDER else "another closeloop process"
            raise LeaseHeld(
                f"connection {connection!r} is being run by {who}; ask it for a run instead "
                f"(POST /connections/{connection}/sync on any replica)"
            )
        taken = conn.execute(_TAKE, (connection, _CLI_HOLDER)).fetchone()
        assert taken is not None  # RETURNING of an upsert always yields its row
        fence = Fence(connection, int(taken[0]))
        try:
            with fenced(fence):
                yield fence
        finally:
            conn.execute(
                "DELETE FROM closeloop_leases WHERE connection = %s AND generation = %s", (connection, fence.generation)
            )
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def ensure_tables_sync(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """:func:`ensure_tables` for a synchronous session (the CLI's)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key32("closeloop lease ddl"),))
        for statement in LEASE_DDL:
            conn.execute(statement)


@dataclass(frozen=True, slots=True)
class Tick:
    """What one lease tick changed: leases taken and given up, and connections woken by other replicas."""

    taken: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    woken: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    live_replicas: int = 1
    session_lost: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    """A replica as its heartbeat row tells it."""

    name: str
    started_at: datetime
    heartbeat_at: datetime
    leases: int


async def ensure_tables(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Create the lease tables in the session's schema if they are missing (idempotent)."""
    async with conn.transaction():
        # Two replicas starting together would race on CREATE TABLE IF NOT EXISTS (a unique violation in the
        # catalog); a transaction-scoped lock makes the second wait for the first.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (key32("closeloop lease ddl"),))
        for statement in LEASE_DDL:
            await conn.execute(statement)


class Leases:
    """One replica's leases on a PostgreSQL store (see the module docstring for the rule)."""

    def __init__(self, conninfo: str, replica: str, *, heartbeat_expiry_seconds: float = 30.0) -> None:
        self.conninfo = conninfo
        self.replica = replica
        self.expiry = heartbeat_expiry_seconds
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._held: set[str] = set()
        self._generations: dict[str, int] = {}
        self._wanted: list[str] = []
        self._lease_ns = 0
        self._replica_ns = 0
        self._io = asyncio.Lock()

    @property
    def held(self) -> frozenset[str]:
        """The connections whose lease this replica holds now."""
        return frozenset(self._held)

    def holds(self, connection: str) -> bool:
        """Whether this replica may run ``connection`` now."""
        return connection in self._held

    def fence(self, connection: str) -> Fence | None:
        """The fence of a run of ``connection`` starting now (None when this replica does not hold its lease)."""
        generation = self._generations.get(connection)
        return Fence(connection, generation) if generation is not None and connection in self._held else None

    def want(self, connections: Sequence[str]) -> None:
        """The configured connections (at start and after each reload); the next tick acts on them."""
        self._wanted = list(dict.fromkeys(connections))

    async def start(self, connections: Sequence[str]) -> None:
        """Open the lease session, announce the replica, and refuse a replica name already in use."""
        self.want(connections)
        await self._connect()

    async def _connect(self) -> None:
        conn: psycopg.AsyncConnection[tuple[object, ...]] = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, application_name=f"closeloop:{self.replica}"[:63]
        )
        try:
            await conn.execute(_KEEPALIVES)
            await ensure_tables(conn)
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            schema = str(row[0]) if row else "public"
            self._lease_ns = lease_namespace(schema)
            self._replica_ns = key32(f"closeloop replica {schema}")
            got = await self._fetch_one(
                conn, "SELECT pg_try_advisory_lock(%s, %s)", (self._replica_ns, key32(self.replica))
            )
            if not got:
                raise ReplicaNameInUse(
                    f"replica name {self.replica!r} is in use by another live replica on this store;"
                    " give each replica its own CLOSELOOP_REPLICA"
                )
            await conn.execute(
                "INSERT INTO closeloop_replicas (name, started_at, heartbeat_at) VALUES (%s, now(), now())"
                " ON CONFLICT (name) DO UPDATE SET started_at = now(), heartbeat_at = now(), leases = 0",
                (self.replica,),
            )
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    @staticmethod
    async def _fetch_one(
        conn: psycopg.AsyncConnection[tuple[object, ...]], sql: str, params: tuple[object, ...] = ()
    ) -> object:
        row = await (await conn.execute(sql, params)).fetchone()
        return None if row is None else row[0]

    async def tick(self, running: Callable[[], Collection[str]] = frozenset) -> Tick:
        """Heartbeat, then release and take leases towards the fair share, then collect wake-ups.

        ``running`` tells which connections have a run under way; it is asked at the moment the plan is made, and
        leases given up leave ``held`` in the same step, so no run can start on a lease being given up.
        A lost lease session loses every lease (the server has dropped the locks): they are reported in
        ``lost`` and a new session is opened at the next tick.
        """
        async with self._io:
            try:
                if self._conn is None or self._conn.closed:
                    await self._connect()
                return await self._tick(running)
            except psycopg.OperationalError as exc:
                lost = tuple(sorted(self._held))
                self._held.clear()
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                log.error("lease session lost (%s); %d lease(s) given up until it is back", exc, len(lost))
                return Tick(lost=lost, session_lost=True)

    async def _tick(self, running: Callable[[], Collection[str]]) -> Tick:
        conn = self._conn
        assert conn is not None
        live = await self._fetch_one(
            conn,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
            " AND classid::bigint = %s AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self._replica_ns,),
        )
        live_replicas = max(int(str(live)), 1)
        # No await between the plan and dropping its releases from _held: a run starting meanwhile would run on
        # a lease about to be unlocked.
        plan = plan_leases(self.replica, self._wanted, self._held, live_replicas, running())
        self._held.difference_update(plan.release)
        for name in plan.release:
            await self._release(conn, name)
        taken: list[str] = []
        for name in plan.candidates:
            if len(taken) >= plan.room:
                break
            if await self._fetch_one(conn, "SELECT pg_try_advisory_lock(%s, %s)", (self._lease_ns, key32(name))):
                # Held only once the new generation is written: a run may start only under it.
                generation = await self._fetch_one(conn, _TAKE, (name, self.replica))
                self._generations[name] = int(str(generation))
                self._held.add(name)
                taken.append(name)
        await conn.execute(
            "UPDATE closeloop_replicas SET heartbeat_at = now(), leases = %s WHERE name = %s",
            (len(self._held), self.replica),
        )
        woken: tuple[str, ...] = ()
        if self._held:
            cursor = await conn.execute(
                "DELETE FROM closeloop_wakeups WHERE connection = ANY(%s) RETURNING connection",
                (sorted(self._held),),
            )
            woken = tuple(sorted(str(row[0]) for row in await cursor.fetchall()))
        if taken or plan.release:
            log.info(
                "leases: took %s, gave up %s; holding %d with %d live replica(s)",
                list(taken),
                list(plan.release),
                len(self._held),
                live_replicas,
                extra={"replica": self.replica},
            )
        return Tick(tuple(taken), plan.release, woken, (), live_replicas)

    async def _release(self, conn: psycopg.AsyncConnection[tuple[object, ...]], name: str) -> None:
        await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self._lease_ns, key32(name)))
        await conn.execute("DELETE FROM closeloop_leases WHERE connection = %s AND replica = %s", (name, self.replica))
        self._held.discard(name)

    async def wake(self, connection: str, reason: str) -> None:
        """Ask the holder of ``connection``'s lease for an early run (requests coalesce into one row)."""
        async with self._io:
            if self._conn is None or self._conn.closed:
                await self._connect()
            assert self._conn is not None
            await self._conn.execute(
                "INSERT INTO closeloop_wakeups (connection, requested_at, reason) VALUES (%s, now(), %s)"
                " ON CONFLICT (connection) DO NOTHING",
                (connection, reason),
            )

    async def clear_wakeups(self, connection: str) -> None:
        """Forget the wake-ups of ``connection``: a run starting now serves them."""
        async with self._io:
            if self._conn is None or self._conn.closed:
                return
            await self._conn.execute("DELETE FROM closeloop_wakeups WHERE connection = %s", (connection,))

    async def replicas(self) -> list[ReplicaRow]:
        """The replicas whose heartbeat is recent, by name."""
        async with self._io:
            if self._conn is None or self._conn.closed:
                return []
            cursor = await self._conn.execute(
                "SELECT name, started_at, heartbeat_at, leases FROM closeloop_replicas"
                " WHERE heartbeat_at > now() - make_interval(secs => %s) ORDER BY name",
                (self.expiry,),
            )
            rows: list[ReplicaRow] = []
            for name, started, beat, leases in await cursor.fetchall():
                assert isinstance(started, datetime)
                assert isinstance(beat, datetime)
                rows.append(ReplicaRow(str(name), started, beat, int(str(leases))))
            return rows

    async def close(self) -> None:
        """Give every lease up and close the session (a crash does the same through the server)."""
        async with self._io:
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is None or conn.closed:
                return
            try:
                await conn.execute("DELETE FROM closeloop_leases WHERE replica = %s", (self.replica,))
                await conn.execute("UPDATE closeloop_replicas SET leases = 0 WHERE name = %s", (self.replica,))
            except psycopg.Error as exc:  # closing the session frees the locks all the same
                log.warning("lease rows of %s left behind: %s", self.replica, exc)
            finally:
                await conn.close()
