"""Marketo Engage under the conformance kit."""

from __future__ import annotations

from typing import Any

from closeloop_connectors.marketo.sandbox import MarketoSandbox, create_sandbox

from closeloop.sandbox import ConformanceTarget, SandboxBase


def _settings(sandbox: SandboxBase) -> dict[str, Any]:
    assert isinstance(sandbox, MarketoSandbox)
    return {
        "base_url": "http://marketo.sandbox",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }


def _new_lead(i: int) -> dict[str, Any]:
    return {
        "email": f"conformance.{i}@example.org",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "company": "Conformance Inc",
    }


TARGET = ConformanceTarget(
    vendor="marketo",
    contact_object="leads",
    email_field="email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people),
    settings=_settings,
    new_fields=_new_lead,
    deal_object=None,
    supports_merge=True,  # the Merge Leads activity (32) names the losers in "Merge ids" on the winner
)
