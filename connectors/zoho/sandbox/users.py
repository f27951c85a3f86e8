"""Zoho CRM users in the emulator: the people a record's ``Owner`` names.

- ``GET /crm/v8/users?type=AllUsers|ActiveUsers&page=&per_page=`` lists users (``id``, ``email``, ``full_name``,
  ``first_name``, ``last_name``, ``status`` active/disabled), with Zoho's ``info`` paging block;
- ``POST /crm/v8/users`` (``{"users": [{email, first_name, last_name, role, profile}]}``) adds users.

A write's ``Owner`` is ``{"id": ...}`` (or the bare id) of an active user; anyone else is refused as Zoho refuses
it (``INVALID_DATA``). A record without one is owned by the org's admin, who made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ADMIN = {"id": "4876876000000333001", "email": "admin@sandbox.invalid", "first_name": "Sandbox", "last_name": "Admin"}
SEEDED = (
    ADMIN,
    {"id": "4876876000000333002", "email": "sam.seller@example.com", "first_name": "Sam", "last_name": "Seller"},
    {"id": "4876876000000333003", "email": "rita.rep@example.com", "first_name": "Rita", "last_name": "Rep"},
)
"""The org's users on creation: the admin (who owns what the API makes), two salespeople."""
MAX_PER_PAGE = 200


def _user(seed: dict[str, str]) -> dict[str, Any]:
    full = f"{seed['first_name']} {seed['last_name']}".strip()
    return {**seed, "full_name": full, "status": "active", "confirm": True, "role": {"name": "Sales", "id": "1"}}


@dataclass
class Users:
    """The org's users by id, in creation order."""

    rows: dict[str, dict[str, Any]] = field(default_factory=lambda: {u["id"]: _user(u) for u in SEEDED})

    def owner(self, user_id: str | None) -> dict[str, Any]:
        """A record's ``Owner`` as Zoho renders it: ``{name, id, email}``."""
        user = self.rows.get(user_id or "") or self.rows[ADMIN["id"]]
        return {"name": user["full_name"], "id": user["id"], "email": user["email"]}

    def assignable(self, value: Any) -> str | None:
        """The user id a written ``Owner`` names, when that user exists and is active; else None."""
        user_id = str(value.get("id", "")) if isinstance(value, dict) else str(value or "")
        user = self.rows.get(user_id)
        return user_id if user is not None and user["status"] == "active" else None

    async def list(self, request: Request) -> Response:
        """``GET /crm/v8/users``: a page of users of the asked type."""
        params = request.query_params
        kind = params.get("type", "AllUsers")
        try:
            page, per_page = int(params.get("page", "1")), min(int(params.get("per_page", "200")), MAX_PER_PAGE)
        except ValueError:
            invalid = {"code": "INVALID_DATA", "details": {}, "message": "invalid data", "status": "error"}
            return JSONResponse(invalid, 400)
        chosen = [u for u in self.rows.values() if kind != "ActiveUsers" or u["status"] == "active"]
        rows = chosen[(page - 1) * per_page : page * per_page]
        if not rows:
            return Response(status_code=204)
        info = {"per_page": per_page, "count": len(rows), "page": page, "more_records": page * per_page < len(chosen)}
        return JSONResponse({"users": rows, "info": info})

    async def create(self, request: Request) -> Response:
        """``POST /crm/v8/users``: each user with an email not taken is added."""
        body = await request.json()
        answers = []
        for entry in body.get("users") or []:
            email = str(entry.get("email") or "").strip().lower()
            if "@" not in email or any(u["email"] == email for u in self.rows.values()):
                answers.append({"code": "INVALID_DATA", "details": {"api_name": "email"}, "message": "invalid email",
                                "status": "error"})  # fmt: skip
                continue
            user_id = str(4876876000000333001 + len(self.rows))
            seed = {"id": user_id, "email": email, "first_name": str(entry.get("first_name") or ""),
                    "last_name": str(entry.get("last_name") or "")}  # fmt: skip
            self.rows[user_id] = _user(seed)
            added = {"code": "SUCCESS", "details": {"id": user_id}, "message": "User added", "status": "success"}
            answers.append(added)
        return JSONResponse({"users": answers}, 201)
