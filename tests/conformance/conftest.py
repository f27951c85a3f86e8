"""Builds each vendor's sandbox and connector for the conformance kit; vendors add a file under targets/."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.connector import Connector, ConnectorContext, registry
from closeloop.sandbox.kit import SandboxBase

TARGET_DIR = Path(__file__).parent / "targets"


def _load_targets() -> list[Any]:
    targets = []
    for path in sorted(TARGET_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"conformance_target_{path.stem}", path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        targets.append(module.TARGET)
    return targets


TARGETS = _load_targets()


@pytest.fixture(params=TARGETS, ids=[t.vendor for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Any:
    """Each registered vendor in turn."""
    return request.param


@pytest.fixture
def sandbox(target: Any) -> SandboxBase:
    """A sandbox seeded with 25 people, limits enforced as the vendor does."""
    return target.make_sandbox(7, 25)


def build_connector(target: Any, sandbox: SandboxBase, **overrides: Any) -> Connector:
    """A connector of ``target`` wired in-process to ``sandbox``."""
    plugin = registry().get(target.vendor)
    settings = plugin.settings_model(**{**target.settings(sandbox), **overrides})
    context = ConnectorContext(
        system=f"{target.vendor}-under-test", settings=settings, transport=httpx.ASGITransport(app=sandbox)
    )
    return registry().create(target.vendor, context)


@pytest.fixture
def make_connector(target: Any) -> Callable[..., Connector]:
    """Build more connectors of the target (other settings, e.g. a small page size) over a sandbox."""
    return lambda sandbox, **overrides: build_connector(target, sandbox, **overrides)


@pytest.fixture
async def connector(target: Any, sandbox: SandboxBase) -> AsyncIterator[Connector]:
    """The vendor's connector with quick retries, talking to the sandbox in-process."""
    conn = build_connector(target, sandbox, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
    yield conn
    await conn.aclose()
