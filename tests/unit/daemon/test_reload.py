"""Config changes are noticed by the modification times of the config and the mapping files."""

from __future__ import annotations

import os
from pathlib import Path

from closeloop.daemon.reload import ConfigFiles


def touch_later(path: Path, text: str) -> None:
    path.write_text(text)
    stamp = path.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_a_changed_mapping_is_noticed_once(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    config = tmp_path / "closeloop.yaml"
    config.write_text("a: 1\n")
    mapping = tmp_path / "mappings" / "contacts.yaml"
    mapping.write_text("entity: contact\n")
    files = ConfigFiles(config)
    assert not files.changed()
    touch_later(mapping, "entity: deal\n")
    assert files.changed()
    assert not files.changed()


def test_new_and_removed_files_count_and_hidden_folders_do_not(tmp_path: Path) -> None:
    config = tmp_path / "closeloop.yaml"
    config.write_text("a: 1\n")
    (tmp_path / ".git").mkdir()
    files = ConfigFiles(config)
    (tmp_path / ".git" / "x.yaml").write_text("x\n")
    assert not files.changed()
    extra = tmp_path / "deals.yml"
    extra.write_text("x\n")
    assert files.changed()
    extra.unlink()
    assert files.changed()
