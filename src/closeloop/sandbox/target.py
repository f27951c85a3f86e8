"""What a connector supplies to run the conformance kit (tests/conformance) against its own sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from closeloop.sandbox.kit import SandboxBase


@dataclass(frozen=True)
class ConformanceTarget:
    """One connector under test: how to build its sandbox and settings, and what its records look like."""

    vendor: str
    """The connector plugin's name (as registered under the ``closeloop.connectors`` entry point group)."""
    contact_object: str
    """Native object holding people (``contacts``, ``Contact``, ``Contacts``, ``leads``)."""
    email_field: str
    """Native email field of that object: the search and upsert key."""
    make_sandbox: Callable[[int, int], SandboxBase]
    """(seed, people) -> a seeded sandbox with that many people."""
    settings: Callable[[SandboxBase], dict[str, Any]]
    """Settings for the plugin's settings_model, pointing at the sandbox (refreshing auth if any)."""
    new_fields: Callable[[int], dict[str, Any]]
    """Native fields of a valid new person number i (unique email)."""
    deal_object: str | None = None
    """Native deal object, when the vendor has deals."""
    new_deal_fields: Callable[[int], dict[str, Any]] | None = None
    supports_merge: bool = True
    token_expires: bool = True
    """False when the vendor's credential is a static token that never expires."""
    extra: dict[str, Any] = field(default_factory=dict)
