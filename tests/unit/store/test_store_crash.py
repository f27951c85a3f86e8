"""G15: the state store survives kill -9 mid-write with every committed transaction present."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from closeloop.store import Store

# Each transaction writes one row into four tables, like a sync cycle: golden, link, outbox, cursor.
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from closeloop.model import Cursor, WriteOp
    from closeloop.store import OutboxItem, Store

    store = Store.open(sys.argv[1])
    n = int(sys.argv[2])
    while True:
        g = f"g{n}"
        with store.transaction():
            store.put_golden(g, "contact", {"email": f"{g}@example.com", "note": "x" * 200})
            store.put_link("crm", "contact", f"n{n}", g, "contact", snapshot={"email": f"{g}@example.com"})
            item = OutboxItem("c1", "mkt", "lead", "contact", g, WriteOp.UPDATE, "L1")
            store.enqueue([item])
            store.set_cursor("c1", "crm", "contact", Cursor(datetime(2026, 1, 1, tzinfo=UTC), f"{n:09d}"))
        n += 1
        print(n, flush=True)
    """
)


def _counts(path: Path) -> dict[str, int]:
    raw = sqlite3.connect(path)
    try:
        tables = ("golden", "links", "outbox")
        return {t: raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608 fixed names
    finally:
        raw.close()


def _run_and_kill(path: Path, start: int, lines_before_kill: int) -> int:
    """Start a writer, let it commit some transactions, SIGKILL it; return the last count it reported."""
    last = start
    with subprocess.Popen(  # noqa: S603 our own interpreter and script
        [sys.executable, "-c", CHILD, str(path), str(start)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            for _ in range(lines_before_kill):
                line = child.stdout.readline()
                if not line:
                    break
                last = int(line)
            # The child is already inside its next transaction when it is killed.
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=5)
            # Lines printed between our last read and the kill were committed too.
            for line in child.stdout:
                last = int(line)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == -signal.SIGKILL
    return last


def test_sigkill_during_committed_transactions_leaves_an_intact_store(db_path: Path) -> None:
    Store.open(db_path).close()
    rng = random.Random(15)
    committed = 0
    for _ in range(3):
        committed = _run_and_kill(db_path, committed, rng.randint(20, 200))
        with Store.open(db_path) as store:
            assert store.integrity_check() == "ok"
            cursor = store.get_cursor("c1", "crm", "contact")
        raw = sqlite3.connect(db_path)
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        raw.close()
        counts = _counts(db_path)
        # Every reported commit is there, and no transaction is half there.
        assert counts["golden"] >= committed
        assert counts["golden"] == counts["links"] == counts["outbox"]
        assert cursor is not None
        assert int(cursor.id) == counts["golden"] - 1
        committed = counts["golden"]
