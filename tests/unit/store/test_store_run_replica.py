"""Runs record the replica that ran them; a new lease holder interrupts only its connection's dead runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from closeloop.cli import output as report_cli
from closeloop.console import output_console
from closeloop.store import RunStatus, Store


def test_a_run_records_its_replica(store: Store) -> None:
    single = store.start_run("c1")
    replicated = store.start_run("c2", replica="replica-b")
    runs = {run.id: run for run in store.recent_runs()}
    assert runs[single].replica is None
    assert runs[replicated].replica == "replica-b"


def test_interrupting_one_connection_leaves_the_others_running(store: Store) -> None:
    dead = store.start_run("c1", replica="killed")
    alive = store.start_run("c2", replica="alive")
    assert store.interrupt_running_runs("c1") == 1
    runs = {run.id: run for run in store.recent_runs()}
    assert runs[dead].status is RunStatus.INTERRUPTED
    assert runs[alive].status is RunStatus.RUNNING


@pytest.mark.parametrize(("replica", "shown"), [(None, False), ("replica-b", True)], ids=["single-node", "replicas"])
def test_status_shows_the_replica_column_once_replicas_ran(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, replica: str | None, shown: bool
) -> None:
    run = store.start_run("c1", replica=replica)
    store.finish_run(run, RunStatus.OK, {}, {})
    out = io.StringIO()
    monkeypatch.setattr(report_cli, "console", output_console(out))
    config = type("Config", (), {"connections": [], "loop": type("Loop", (), {"sla": None})()})()
    report_cli.print_status(config, store)  # type: ignore[arg-type]  # only .connections and .loop.sla are read
    assert ("replica" in out.getvalue()) is shown
    assert ("replica-b" in out.getvalue()) is shown
