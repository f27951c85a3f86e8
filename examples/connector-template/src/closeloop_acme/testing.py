"""What closeloop's conformance kit needs to test this connector against its sandbox."""

from __future__ import annotations

from typing import Any

from closeloop.sandbox import ConformanceTarget, SandboxBase

from .sandbox import API_KEY, create_sandbox


def settings(sandbox: SandboxBase) -> dict[str, Any]:
    """Settings pointing at the in-process sandbox."""
    return {"base_url": "http://acme.sandbox", "api_key": API_KEY}


def new_person(i: int) -> dict[str, Any]:
    """A valid new person with a unique email."""
    return {"email": f"conformance.{i}@example.org", "first_name": f"First{i}", "last_name": f"Last{i}"}


TARGET = ConformanceTarget(
    vendor="acme",
    contact_object="people",
    email_field="email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people),
    settings=settings,
    new_fields=new_person,
    supports_merge=False,
    token_expires=False,
)
