"""What the admin commands print: run results, plans, status and quarantine, as rich tables."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from closeloop.config.models import LoadedConfig
from closeloop.console import output_console
from closeloop.engine.plan import PlannedWrite
from closeloop.engine.runtime import RunOutcome
from closeloop.loop.sla_now import status_lines
from closeloop.model import iso_utc, now_utc
from closeloop.store.api import StateStore
from closeloop.store.rows import QuarantineStatus

console = output_console()


def _counts(counts: dict[str, int] | object) -> str:
    items = dict(counts) if isinstance(counts, dict) else {}
    shown = {k: v for k, v in sorted(items.items()) if ":" not in k and v}
    return ", ".join(f"{k} {v}" for k, v in shown.items()) or "nothing to do"


def print_run(name: str, outcome: RunOutcome) -> None:
    """One line per run: status, counts and API calls per system."""
    calls = ", ".join(f"{k} {v}" for k, v in sorted(outcome.api_calls.items())) or "none"
    console.print(
        f"[bold]{name}[/bold] run {outcome.run_id}: {outcome.status.value} — "
        f"{_counts(dict(outcome.counts))}; API calls: {calls}"
    )
    if outcome.error:
        kind = f" ({outcome.failure.value})" if outcome.failure else ""
        console.print(f"  [red]failed{kind}: {outcome.error}[/red]", markup=True, highlight=False)
    for line in outcome.details:  # one problem a line, file:line:col first, for editors and scripts
        print(line, file=sys.stderr)


@contextmanager
def sync_progress(name: str) -> Iterator[Callable[[str, int], None] | None]:
    """A live line of what a run has done so far, on a terminal only; yields the engine's count callback."""
    if not console.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[done]}"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(name, total=None, done="starting")
        done: Counter[str] = Counter()

        def tick(what: str, n: int) -> None:
            if ":" not in what:  # whole-run counts only; "<action>:<system>" repeat them per system
                done[what] += n
                progress.update(task, done=", ".join(f"{k} {v}" for k, v in sorted(done.items())))

        yield tick


def print_plan(name: str, plan: Sequence[PlannedWrite]) -> None:
    """The writes a sync would make, per system, with field diffs and counts."""
    totals = Counter(f"{p.system} {p.op.value}" for p in plan)
    console.print(
        f"[bold]{name}[/bold]: {len(plan)} write(s) planned"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(totals.items()))})" if plan else "")
    )
    if not plan:
        return
    table = Table("system", "object", "op", "record", "changes")
    for write in plan:
        changes = "\n".join(f"{field}: {before!r} → {after!r}" for field, (before, after) in write.diff.items())
        table.add_row(write.system, write.obj, write.op.value, write.native_id or "(new)", changes)
    console.print(table)


def print_status(config: LoadedConfig, store: StateStore) -> None:
    """Connections with cursors and outbox depth, then the latest runs."""
    for connection in config.connections:
        last = store.last_run(connection.name)
        when = f"last run {last.id} {last.status.value} at {iso_utc(last.started_at)}" if last else "never run"
        console.print(
            f"[bold]{connection.name}[/bold] ({' <-> '.join(connection.systems)}): {when}; "
            f"outbox {store.outbox_depth(connection.name)}"
        )
        for mapping in connection.mappings:
            for system in connection.systems:
                for obj in mapping.objects(system):
                    cursor = store.get_cursor(connection.name, system, obj)
                    at = "not started" if cursor is None else iso_utc(cursor.modified_at)
                    at += f" / {cursor.id}" if cursor and cursor.id else ""
                    console.print(f"  cursor {system}.{obj}: {at}")
    if config.loop.sla is not None:
        for line in status_lines(store, config.loop.sla, config.connections, now_utc()):
            console.print(line, markup=False, highlight=False)
    runs = store.recent_runs(10)
    # The replica column appears once replicas share the store; a single node's table stays as it was.
    replicated = any(run.replica for run in runs)
    columns = ["run", "connection", "started", "status", "counts", "API calls", "error"]
    table = Table(*columns[:2], *(["replica"] if replicated else []), *columns[2:])
    for run in runs:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(run.api_calls.items()))
        status = f"{run.status.value} ({run.failure})" if run.failure else run.status.value
        table.add_row(
            str(run.id),
            run.connection,
            *([run.replica or ""] if replicated else []),
            iso_utc(run.started_at),
            status,
            _counts(dict(run.counts)),
            calls,
            run.error or "",
        )
    console.print(table)


def print_errors(store: StateStore, *, include_closed: bool = False) -> None:
    """Quarantined records with the vendor's reason and attempt count."""
    wanted = None if include_closed else [QuarantineStatus.OPEN, QuarantineStatus.RETRY]
    entries = store.list_quarantine(wanted)
    if not entries:
        console.print("no quarantined records")
        return
    table = Table("id", "status", "system", "object", "record", "code", "reason", "attempts", "last seen")
    for e in entries:
        table.add_row(
            str(e.id),
            e.status.value,
            e.system,
            e.object,
            e.native_id or e.golden_id or "",
            e.code,
            e.reason,
            str(e.attempts),
            iso_utc(e.last_seen),
        )
    console.print(table)
    console.print("retry with: closeloop errors --retry ID|all    ignore with: closeloop errors --ignore ID")
