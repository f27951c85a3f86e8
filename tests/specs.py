"""Where the vendors' published API specs are: ``../shared/specs`` beside the clone, never an absolute path.

Tests that validate against them skip, with the path they looked at, when the directory is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO.parent / "shared" / "specs"


def spec_dir(vendor: str) -> Path:
    """The directory of one vendor's spec files."""
    return SPECS / vendor


def needs_specs(vendor: str | None = None) -> pytest.MarkDecorator:
    """Skip unless the spec files (of ``vendor``, or all) are present, saying where they were looked for."""
    where = spec_dir(vendor) if vendor else SPECS
    return pytest.mark.skipif(not where.is_dir(), reason=f"the vendors' spec files are not present at {where}")
