"""HubSpot's owners (``GET /crm/v3/owners``): the users a contact's ``hubspot_owner_id`` names, with their emails."""

from __future__ import annotations

from typing import Any

from closeloop.model import Owner

from .api import HubSpotApi

PAGE = 500
"""The owners API's largest page."""


async def read_owners(api: HubSpotApi) -> list[Owner]:
    """Every owner, active and archived (a contact may still name an archived owner), page by page."""
    found: list[Owner] = []
    for archived in (False, True):
        params: dict[str, Any] = {"limit": PAGE, "archived": str(archived).lower()}
        while True:
            body = await api.get("/crm/v3/owners", params)
            found += [
                Owner(str(item["id"]), str(item.get("email") or ""), active=not archived)
                for item in body.get("results", [])
            ]
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
            params["after"] = after
    return found
