"""A daemon on a PostgreSQL store whose server went away answers /readyz (unready, saying why) and /metrics,
never a 500, and is ready again once the server answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import psycopg

from closeloop.config.loader import load_config
from closeloop.daemon.endpoints import build_app
from closeloop.daemon.lifecycle import Daemon
from closeloop.daemon.settings import DaemonSettings
from closeloop.store.postgres import PostgresStore

REPO = Path(__file__).resolve().parents[3]


async def test_a_lost_server_makes_the_daemon_unready_not_broken(tmp_path: Path, postgres_url: str) -> None:
    shutil.copytree(REPO / "config" / "mappings", tmp_path / "mappings")
    shutil.copy(REPO / "config" / "sandbox.yaml", tmp_path / "closeloop.yaml")
    with PostgresStore.open(postgres_url) as store:
        daemon = Daemon(DaemonSettings(), load_config(tmp_path / "closeloop.yaml"), store, None)
        transport = httpx.ASGITransport(app=build_app(daemon))
        async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
            assert (await client.get("/readyz")).status_code == 200
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (store.connection.info.backend_pid,))
            unready = await client.get("/readyz")
            assert unready.status_code == 503
            assert unready.json()["problems"][0].startswith("state store: lost the connection to the state store")
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200  # reconnected
        await daemon.engine.aclose()
