"""The PostgreSQL store end to end, as an operator runs it: a least-privilege role that owns only its schema,
``closeloop migrate``, then ``closeloop sync`` against served sandboxes, SIGKILLed mid-run and run again until a
cycle writes nothing; the result must be what an uninterrupted SQLite sync ends with, and the role's password must
never appear in anything closeloop prints."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.reliability.kit import REPO, config_text, converge, in_process, seeded, served, state_of

CLI = [sys.executable, "-m", "closeloop.cli"]
CONTACTS = 600


@dataclass(frozen=True)
class Role:
    """A login role owning a schema of its own name, and nothing else."""

    name: str
    password: str
    url: str


@pytest.fixture
def closeloop_role(postgres_server: str) -> Iterator[Role]:
    """The README's least-privilege setup, made by an administrator; dropped with its schema afterwards."""
    name = f"closeloop_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
        admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
    parts = urlsplit(postgres_server)
    netloc = f"{name}:{password}@{parts.hostname}:{parts.port or 5432}"
    try:
        # No options=: PostgreSQL's default search_path ("$user", public) finds the schema named after the role.
        yield Role(name, password, urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")
            admin.execute(f"DROP ROLE {name}")


def _env(url: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "CLOSELOOP_STATE_URL": url}


def _closeloop(role: Role, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, *args], capture_output=True, text=True, timeout=300, env=_env(role.url), cwd=REPO, check=False
    )
    assert role.password not in done.stdout + done.stderr
    return done


def _sync_killed_mid_run(role: Role, config: Path) -> None:
    """Start a sync and SIGKILL it once it has linked records but before it finishes."""
    child = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, "sync", "--once", "--config", str(config)],
        env=_env(role.url),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with psycopg.connect(role.url, autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and child.poll() is None:
                if _linked(conn) >= 100:
                    break
                time.sleep(0.05)
        assert child.poll() is None, "the sync finished before it could be killed; raise CONTACTS"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)


def _linked(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Links the sync has committed so far (0 before its migration made the table)."""
    if conn.execute("SELECT to_regclass('links') IS NOT NULL").fetchone() != (True,):
        return 0
    found = conn.execute("SELECT count(*) FROM links").fetchone()
    return 0 if found is None else int(str(found[0]))


def test_least_privilege_role_migrates_and_a_killed_sync_converges_on_postgres(
    closeloop_role: Role, tmp_path: Path
) -> None:
    role = closeloop_role
    reference_crm, reference_mkt = seeded(CONTACTS, CONTACTS // 10)

    async def reference() -> None:
        async with in_process(tmp_path / "reference", reference_crm, reference_mkt) as (engine, _store):
            await converge(engine, reference_crm, reference_mkt)

    asyncio.run(reference())

    crm, mkt = seeded(CONTACTS, CONTACTS // 10)
    with served(crm, mkt) as box:
        config = tmp_path / "closeloop.yaml"
        # state.path is overridden by CLOSELOOP_STATE_URL, as the README says: no SQLite file may appear.
        config.write_text(config_text(box.crm_url, box.mkt_url, tmp_path / "unused.db", "timeout_seconds: 20"))

        first = _closeloop(role, "migrate", "--config", str(config))
        assert first.returncode == 0, first.stderr
        assert "applied migration 1: initial schema" in first.stdout
        assert f"{role.name}:***@" in first.stdout
        again = _closeloop(role, "migrate", "--config", str(config))
        assert again.returncode == 0, again.stderr
        assert "nothing applied" in again.stdout

        _sync_killed_mid_run(role, config)
        for _ in range(6):
            before = crm.stats.records_written + mkt.stats.records_written
            done = _closeloop(role, "sync", "--once", "--config", str(config))
            assert done.returncode in (0, 1), done.stderr
            if crm.stats.records_written + mkt.stats.records_written == before:
                break
        else:
            raise AssertionError("no quiet cycle in 6")

        status = _closeloop(role, "status", "--config", str(config))
        assert status.returncode == 0, status.stderr

    assert not (tmp_path / "unused.db").exists()
    assert state_of(crm, mkt) == state_of(reference_crm, reference_mkt)
    for side in ("crm contacts", "mkt contacts"):
        emails = [row[0] for row in state_of(crm, mkt)[side]]
        assert len(emails) == len(set(emails)), f"duplicate {side}"
    with psycopg.connect(role.url, autocommit=True) as conn:
        statuses = [str(r[0]) for r in conn.execute("SELECT status FROM runs ORDER BY id").fetchall()]
        owners = {
            str(r[0]) for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()")
        }
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.closeloop_was_here (id INTEGER)")
    assert statuses[0] == "interrupted"  # the killed run, marked by the next sync
    assert set(statuses[1:]) <= {"ok", "quarantined"}
    assert owners == {role.name}
