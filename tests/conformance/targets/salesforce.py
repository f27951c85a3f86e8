"""Conformance target: the Salesforce connector against its sandbox, authenticating with the JWT bearer flow."""

from __future__ import annotations

from typing import Any

from closeloop_connectors.salesforce.sandbox import JWT_CONSUMER_KEY, JWT_USERNAME, create_sandbox, sandbox_jwt_key

from closeloop.sandbox import ConformanceTarget, SandboxBase


def settings(sandbox: SandboxBase) -> dict[str, Any]:
    """JWT bearer against the sandbox's own token endpoint; the token names the instance URL."""
    private, _ = sandbox_jwt_key()
    return {
        "auth_flow": "jwt_bearer",
        "client_id": JWT_CONSUMER_KEY,
        "username": JWT_USERNAME,
        "private_key": private.decode(),
        "auth_url": sandbox.base_url,
    }


def new_contact(i: int) -> dict[str, Any]:
    """A valid new Contact."""
    return {"LastName": f"Person{i}", "FirstName": "Test", "Email": f"person{i}@conformance.example"}


def new_opportunity(i: int) -> dict[str, Any]:
    """A valid new Opportunity."""
    return {"Name": f"Deal {i}", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": 1000 + i}


TARGET = ConformanceTarget(
    vendor="salesforce",
    contact_object="Contact",
    email_field="Email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people),
    settings=settings,
    new_fields=new_contact,
    deal_object="Opportunity",
    new_deal_fields=new_opportunity,
)
