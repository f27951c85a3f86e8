"""Conformance target: the HubSpot connector against its sandbox, authenticating with an OAuth refresh token."""

from __future__ import annotations

from typing import Any

from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox

from closeloop.sandbox import ConformanceTarget, SandboxBase


def settings(sandbox: SandboxBase) -> dict[str, Any]:
    """OAuth (so tokens expire and refresh) against the sandbox's own /oauth/v1/token."""
    assert isinstance(sandbox, HubSpotSandbox)
    return {
        "base_url": "http://hubspot.sandbox",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": sandbox.refresh_token,
        # The kit expects a deletion in the very next read; the throttled archived sweep has its own tests.
        "archived_check_seconds": 0,
    }


def new_contact(i: int) -> dict[str, Any]:
    """A valid new contact with a unique email."""
    return {"email": f"conformance.{i}@example.org", "firstname": f"First{i}", "lastname": f"Last{i}"}


def new_deal(i: int) -> dict[str, Any]:
    """A valid new deal in the default pipeline."""
    return {
        "dealname": f"Conformance deal {i}",
        "amount": "1000",
        "dealstage": "appointmentscheduled",
        "pipeline": "default",
    }


TARGET = ConformanceTarget(
    vendor="hubspot",
    contact_object="contacts",
    email_field="email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people),
    settings=settings,
    new_fields=new_contact,
    deal_object="deals",
    new_deal_fields=new_deal,
    supports_merge=True,
    token_expires=True,
)
