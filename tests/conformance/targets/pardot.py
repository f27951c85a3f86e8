"""Account Engagement (Pardot) under the conformance kit."""

from __future__ import annotations

from typing import Any

from closeloop_connectors.pardot.sandbox import PardotSandbox, create_sandbox

from closeloop.sandbox import ConformanceTarget, SandboxBase


def _settings(sandbox: SandboxBase) -> dict[str, Any]:
    assert isinstance(sandbox, PardotSandbox)
    return {
        "base_url": "http://pardot.sandbox",
        "auth_url": "http://pardot.sandbox",
        "business_unit_id": sandbox.business_unit_id,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }


def _new_prospect(i: int) -> dict[str, Any]:
    return {
        "email": f"conformance.{i}@example.org",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "company": "Conformance Inc",
    }


TARGET = ConformanceTarget(
    vendor="pardot",
    contact_object="prospects",
    email_field="email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people),
    settings=_settings,
    new_fields=_new_prospect,
    deal_object=None,
    supports_merge=False,  # v5 reports no merges: a merged-away prospect is only seen in the recycle bin
)
