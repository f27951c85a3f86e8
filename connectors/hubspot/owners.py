"""HubSpot's owners (``GET /crm/v3/owners``): the users a contact's ``hubspot_owner_id`` names, with their emails."""

from __future__ import annotations

from functools import partial

from closeloop.http.paging import TokenPaginator, paginate
from closeloop.model import Owner

from .api import NEXT_AFTER, HubSpotApi

PAGE = 500
"""The owners API's largest page."""


async def read_owners(api: HubSpotApi) -> list[Owner]:
    """Every owner, active and archived (a contact may still name an archived owner), page by page."""
    found: list[Owner] = []
    for archived in (False, True):
        params = {"limit": PAGE, "archived": str(archived).lower()}
        pages = TokenPaginator(params, NEXT_AFTER, "after")
        async for body in paginate(partial(api.get, "/crm/v3/owners"), pages):
            found += [
                Owner(str(item["id"]), str(item.get("email") or ""), active=not archived)
                for item in body.get("results", [])
            ]
    return found
