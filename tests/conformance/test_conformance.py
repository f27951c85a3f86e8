"""The connector conformance kit (``closeloop.testing.conformance``) run against every connector of this repository.

Each vendor adds a file under ``targets/`` defining ``TARGET``; a third-party connector runs the same kit from its
own repository (CONTRIBUTING.md, and ``test_third_party_template.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from closeloop.testing.conformance import Target, conformance_suite

TARGET_DIR = Path(__file__).parent / "targets"


def load_targets() -> list[Target]:
    """The ``TARGET`` of every file under ``targets/``, by file name."""
    targets: list[Target] = []
    for path in sorted(TARGET_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"conformance_target_{path.stem}", path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        targets.append(module.TARGET)
    return targets


TestConformance = conformance_suite(*load_targets())
