"""HubSpot owners in the emulator: the portal's users who can own records, and the ``hubspot_owner_id`` options.

- ``GET /crm/v3/owners?limit=&after=&archived=&email=`` lists owners (``id``, ``email``, ``firstName``,
  ``lastName``, ``userId``, ``createdAt``, ``updatedAt``, ``archived``), paged by ``after``;
- ``GET /crm/v3/owners/{ownerId}`` reads one;
- ``POST /settings/v3/users/`` (``{email, firstName, lastName}``) adds a user, who becomes an owner (as in a
  portal where every user may own contacts); ``DELETE /settings/v3/users/{userId}`` removes one: the owner is
  archived.

The contact property ``hubspot_owner_id`` is an enumeration whose options are the active owners' ids, so a
write naming anyone else is refused as HubSpot refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from closeloop.model import iso_utc
from closeloop.sandbox.kit import JSONAnswer

from .answers import error

if TYPE_CHECKING:
    from .app import HubSpotSandbox

OWNER_PROPERTY = "hubspot_owner_id"
FIRST_OWNER_ID, FIRST_USER_ID = 71_000_001, 9_100_001
MAX_PAGE = 500
SEEDED = (
    ("Integration", "User", "integration@sandbox.invalid"),  # the user who connected the portal, as in the CRMs
    ("Sam", "Seller", "sam.seller@example.com"),
    ("Rita", "Rep", "rita.rep@example.com"),
    ("Marco", "Marketer", "marco.marketer@example.com"),
)
"""The portal's users on creation: the integration user, two salespeople and a marketer."""


@dataclass
class Owners:
    """The portal's owners, in creation order."""

    sandbox: HubSpotSandbox
    rows: list[dict[str, Any]] = field(default_factory=list)

    def seed(self) -> None:
        """The users every new portal has."""
        for first, last, email in SEEDED:
            self.add(email, first, last)

    def add(self, email: str, first: str = "", last: str = "") -> dict[str, Any]:
        """A new owner (and user) with this email."""
        stamp = iso_utc(self.sandbox.now())
        owner = {
            "id": str(FIRST_OWNER_ID + len(self.rows)),
            "email": email,
            "type": "PERSON",
            "firstName": first,
            "lastName": last,
            "userId": FIRST_USER_ID + len(self.rows),
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.rows.append(owner)
        self._refresh_options()
        return owner

    def _refresh_options(self) -> None:
        catalog = self.sandbox.catalog["contacts"]
        prop = catalog[OWNER_PROPERTY]
        options = tuple(
            (o["id"], f"{o['firstName']} {o['lastName']}".strip() or o["email"]) for o in self.rows if not o["archived"]
        )
        catalog[OWNER_PROPERTY] = replace(prop, options=options)

    async def list(self, request: Request) -> Response:
        """``GET /crm/v3/owners``: a page of active (or archived) owners, optionally those with one email."""
        params = request.query_params
        archived = params.get("archived", "false").lower() == "true"
        try:
            limit = min(int(params.get("limit", "100")), MAX_PAGE)
            start = int(params.get("after", "0"))
        except ValueError:
            return error(400, "limit and after must be integers", "VALIDATION_ERROR")
        email = params.get("email")
        chosen = [o for o in self.rows if o["archived"] == archived and (not email or o["email"] == email)]
        page = chosen[start : start + limit]
        body: dict[str, Any] = {"results": page}
        if start + limit < len(chosen):
            body["paging"] = {"next": {"after": str(start + limit), "link": f"?after={start + limit}"}}
        return JSONAnswer(body)

    async def one(self, request: Request) -> Response:
        """``GET /crm/v3/owners/{ownerId}``."""
        found = next((o for o in self.rows if o["id"] == request.path_params["owner_id"]), None)
        if found is None:
            return error(404, "Owner not found", "OBJECT_NOT_FOUND")
        return JSONAnswer(found)

    async def create_user(self, request: Request) -> Response:
        """``POST /settings/v3/users/``: a user with an email; the owner it becomes is listed from now on."""
        body = await self.sandbox._json(request)
        email = str(body.get("email") or "").strip().lower()
        if "@" not in email:
            return error(400, "Invalid input JSON: 'email' is required", "VALIDATION_ERROR")
        if any(o["email"] == email and not o["archived"] for o in self.rows):
            return error(409, f"A user with email {email} already exists", "CONFLICT")
        owner = self.add(email, str(body.get("firstName") or ""), str(body.get("lastName") or ""))
        user = {"id": str(owner["userId"]), "email": email, "roleIds": [], "primaryTeamId": None}
        return JSONAnswer(user, status_code=201)

    async def delete_user(self, request: Request) -> Response:
        """``DELETE /settings/v3/users/{userId}``: the user's owner is archived."""
        user_id = request.path_params["user_id"]
        found = next((o for o in self.rows if str(o["userId"]) == user_id and not o["archived"]), None)
        if found is None:
            return error(404, "User not found", "OBJECT_NOT_FOUND")
        found.update(archived=True, updatedAt=iso_utc(self.sandbox.now()))
        self._refresh_options()
        return Response(status_code=204)
