"""Marketo programs in the emulator: the Asset API's programs (with their channel) and program membership status.

- ``POST /rest/asset/v1/programs.json`` (form body: ``name``, ``type``, ``channel``, ``folder``) creates a program;
- ``GET /rest/asset/v1/programs.json?filterType=id&filterValues=..`` browses programs by id;
- ``POST /rest/v1/leads/programs/{programId}/status.json`` ``{status, input[{id}]}`` sets leads' membership status
  and logs a Change Status in Progression activity (104) per lead whose status changed, as Marketo does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from closeloop.model import iso_utc

from .schema import CHANGE_STATUS_IN_PROGRESSION

if TYPE_CHECKING:
    from .app import MarketoSandbox

NOT_IN_PROGRAM = "Not in Program"


@dataclass
class Programs:
    """Each program's type and channel (the sandbox's ``programs`` keeps the names) and the handlers above."""

    sandbox: MarketoSandbox
    details: dict[int, dict[str, Any]] = field(default_factory=dict)

    def render(self, program_id: int) -> dict[str, Any]:
        """A program as the Asset API returns it."""
        extra = self.details.get(program_id, {})
        return {"id": program_id, "name": self.sandbox.programs[program_id], "description": "",
                "type": extra.get("type", "Default"), "channel": extra.get("channel", ""),
                "folder": extra.get("folder"), "status": "", "workspace": "Default", "tags": [], "costs": None,
                "createdAt": extra.get("createdAt"), "updatedAt": extra.get("createdAt")}  # fmt: skip

    async def programs(self, request: Request) -> Response:
        """Create a program (POST, form body) or browse programs by id (GET)."""
        if request.method == "GET":
            params = request.query_params
            if params.get("filterType") != "id":
                return self.sandbox.refuse(1003, "filterType must be id")
            wanted = [int(v) for v in (params.get("filterValues") or "").split(",") if v.strip().isdigit()]
            found = [self.render(i) for i in wanted if i in self.sandbox.programs]
            if not found:
                return self.sandbox.ok(None, warnings=["No assets found for the given search criteria."])
            return self.sandbox.ok(found)
        form = dict(parse_qsl((await request.body()).decode()))
        name = form.get("name", "").strip()
        if not name or not form.get("folder") or not form.get("type") or not form.get("channel"):
            return self.sandbox.refuse(709, "name, folder, type and channel are required")
        if name in self.sandbox.programs.values():
            return self.sandbox.refuse(709, f"Program '{name}' already exists")
        program_id = max(self.sandbox.programs, default=1000) + 1
        self.sandbox.programs[program_id] = name
        self.details[program_id] = {"type": form["type"], "channel": form["channel"],
                                    "folder": json.loads(form["folder"]),
                                    "createdAt": iso_utc(self.sandbox.now(), millis=False)}  # fmt: skip
        return self.sandbox.ok([self.render(program_id)])

    async def status(self, request: Request) -> Response:
        """Set the membership status of leads in a program; one result per input, in order."""
        program_id = int(request.path_params["programId"])
        if program_id not in self.sandbox.programs:
            return self.sandbox.refuse(1013, "Object not found")
        body = json.loads((await request.body()) or b"{}")
        status, inputs = body.get("status"), body.get("input") or []
        if not status or not isinstance(inputs, list):
            return self.sandbox.refuse(1003, "status and input are required")
        return self.sandbox.ok([self._set(program_id, str(status), str(i.get("id"))) for i in inputs])

    def _set(self, program_id: int, status: str, lead_id: str) -> dict[str, Any]:
        if self.sandbox.leads.get(lead_id) is None:
            return {"id": int(lead_id), "status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]}
        now = self.sandbox.now()
        mine = self.sandbox.memberships.setdefault(lead_id, {})
        before = mine.get(program_id, {}).get("progressionStatus", NOT_IN_PROGRAM)
        if before == status:
            return {"id": int(lead_id), "status": "skipped", "reasons": [{"code": "1015", "message": "No change"}]}
        joined = mine.get(program_id, {}).get("membershipDate", iso_utc(now, millis=False))
        mine[program_id] = {"id": program_id, "acquiredBy": False, "isExhausted": False, "membershipDate": joined,
                            "progressionStatus": status, "reachedSuccess": False,
                            "updatedAt": iso_utc(now, millis=False)}  # fmt: skip
        changed = [{"name": "Acquired By", "value": False}, {"name": "New Status", "value": status},
                   {"name": "Old Status", "value": before}, {"name": "Reason", "value": "Changed by API"},
                   {"name": "Success", "value": False}]  # fmt: skip
        name = self.sandbox.programs[program_id]
        log = self.sandbox.leads.activities
        log.add(lead_id, now, CHANGE_STATUS_IN_PROGRESSION, primary_value_id=program_id, primary_value=name,
                attributes=changed)  # fmt: skip
        return {"id": int(lead_id), "status": "updated"}
