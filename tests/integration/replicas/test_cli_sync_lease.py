"""``closeloop sync`` on a shared PostgreSQL store takes the leases replicas take: it never runs a connection a
replica holds, and says who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from closeloop.store.lease import Leases
from closeloop.testing.replicas import config_text, seed_pair, serve_pairs

pytest.importorskip("closeloop.store.postgres", reason="needs the PostgreSQL state store (closeloop.store.postgres)")

REPO = Path(__file__).resolve().parents[3]


def _cli(config: Path, url: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "closeloop.cli", *command, "--config", str(config)],
        env={**os.environ, "CLOSELOOP_STATE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_sync_refuses_a_connection_a_replica_holds_and_runs_it_once_free(pg_url: str, tmp_path: Path) -> None:
    with serve_pairs([seed_pair(0, 20)]) as served:
        config = tmp_path / "closeloop.yaml"
        config.write_text(config_text(served, REPO / "config" / "mappings", tmp_path, schedule="{every: 1h}"))
        assert _cli(config, pg_url, "migrate").returncode == 0  # as a replica's first start would
        replica = Leases(pg_url, "replica-a")
        await replica.start(["c0"])
        await replica.tick()
        assert replica.holds("c0")
        try:
            refused = _cli(config, pg_url, "sync", "--once")
        finally:
            await replica.close()
        assert refused.returncode == 2
        assert "'c0' is being run by replica 'replica-a'" in refused.stderr
        assert served[0].crm is not None
        assert served[0].crm.stats.records_written == 0
        done = _cli(config, pg_url, "sync", "--once")
        assert done.returncode == 0, done.stderr[-2000:]
        assert served[0].crm.stats.records_written > 0
