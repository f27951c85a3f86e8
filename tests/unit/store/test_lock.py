"""One daemon per state store: the second instance is refused with the holder's pid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from closeloop.store.lock import StateLock, StoreLocked


def test_a_second_lock_on_the_same_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "closeloop.db"
    refused = rf"in use by another closeloop instance \(pid {os.getpid()}\)"
    with StateLock(db), pytest.raises(StoreLocked, match=refused):
        StateLock(db).acquire()
    with StateLock(db) as again:  # released: the next instance may start
        assert again.path == tmp_path / "closeloop.db.lock"


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    with StateLock(tmp_path / "closeloop.db") as lock:
        assert lock.path.stat().st_mode & 0o077 == 0
