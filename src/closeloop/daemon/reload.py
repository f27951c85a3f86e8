"""Noticing configuration changes: modification times of the config file and the YAML files beside it."""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[int, int]
MAX_DEPTH = 2
"""Mappings sit in the config's folder or one or two folders below; deeper trees are not configuration."""


def yaml_files(folder: Path) -> list[Path]:
    """YAML files under ``folder`` up to ``MAX_DEPTH`` levels down, skipping hidden folders (.git, .venv)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        dirs[:] = [] if depth >= MAX_DEPTH else [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / name for name in files if name.endswith((".yaml", ".yml")))
    return found


class ConfigFiles:
    """The config file and the YAML files around it (the mappings), compared by mtime and size."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._seen = self.snapshot()

    def snapshot(self) -> dict[Path, Stamp]:
        """Stamps of the files now; a file that vanished drops out, which counts as a change."""
        stamps: dict[Path, Stamp] = {}
        for path in {self.config_path, *yaml_files(self.config_path.parent)}:
            try:
                info = path.stat()
            except OSError:
                continue
            stamps[path] = (info.st_mtime_ns, info.st_size)
        return stamps

    def changed(self) -> bool:
        """Whether any file changed since the last call (or since creation)."""
        now = self.snapshot()
        if now == self._seen:
            return False
        self._seen = now
        return True
