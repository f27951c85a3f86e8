"""Zoho CRM under the conformance kit: Contacts keyed by Email, Deals linked through Contact_Name."""

from __future__ import annotations

from typing import Any

from closeloop_connectors.zoho.sandbox import ZohoSandbox, create_sandbox

from closeloop.sandbox import ConformanceTarget, SandboxBase


def _settings(sandbox: SandboxBase) -> dict[str, Any]:
    assert isinstance(sandbox, ZohoSandbox)
    return {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": sandbox.refresh_token,
        "auth_url": sandbox.base_url,  # the token's api_domain then points the API calls at the sandbox
    }


def _person(i: int) -> dict[str, Any]:
    return {
        "First_Name": "Conf",
        "Last_Name": f"Person {i}",
        "Email": f"conformance.{i}@example.org",
        "Lead_Source": "Web Download",
    }


def _deal(i: int) -> dict[str, Any]:
    return {
        "Deal_Name": f"Conformance deal {i}",
        "Stage": "Qualification",
        "Amount": 1200.5,
        "Closing_Date": "2026-06-30",
        "Currency": "USD",
    }


TARGET = ConformanceTarget(
    vendor="zoho",
    contact_object="Contacts",
    email_field="Email",
    make_sandbox=lambda seed, people: create_sandbox(seed=seed, people=people, deals=5),
    settings=_settings,
    new_fields=_person,
    deal_object="Deals",
    new_deal_fields=_deal,
    # Zoho's deleted-records list shows a merged-away record as deleted but never names the survivor.
    supports_merge=False,
)
