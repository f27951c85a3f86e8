"""Zoho campaign membership in the emulator: the related lists between Campaigns and Contacts or Leads.

Campaigns themselves are an ordinary module (list, create, COQL); a membership is a relation with a
``Member_Status`` and no time of its own, served both ways:

- ``GET /crm/v8/Campaigns/{id}/Contacts`` (or ``/Leads``) and ``GET /crm/v8/Contacts/{id}/Campaigns``:
  ``fields`` (mandatory; ``Member_Status`` allowed besides the module's fields), ``page``, ``per_page`` (200);
  ``{data[], info{per_page, count, page, more_records}}``, or 204 when there are none;
- ``PUT`` on the same paths with ``{data: [{id, Member_Status}]}`` relates records (or changes the status), at
  most 100 a call; ``DELETE ...?ids=`` removes relations. Answers: ``data[]`` of ``{code, details{id}, message,
  status}``.

Relating records changes neither record's ``Modified_Time`` here: Zoho's documentation does not say that it
does, so a reader cannot count on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from closeloop.sandbox import Refusal

from .modules import MEMBER_STATUSES, MODULE_IDS

if TYPE_CHECKING:
    from .app import ZohoSandbox

PEOPLE = ("Contacts", "Leads")
MEMBER_STATUS = "Member_Status"
PAGE_LIMIT, WRITE_LIMIT = 200, 100


class CampaignMembers:
    """Campaign id -> {(person module, person id): member status}, and the related-list handlers."""

    def __init__(self, sandbox: ZohoSandbox) -> None:
        self.sandbox = sandbox
        self.members: dict[str, dict[tuple[str, str], str]] = {}

    def relate(self, campaign_id: str, module: str, person_id: str, status: str) -> None:
        """Make a person a member of a campaign (or change its status), as the API and the seed do."""
        self.members.setdefault(campaign_id, {})[(module, person_id)] = status

    def _pair(self, request: Request) -> tuple[str, str, str, str]:
        """(campaign id, person module, person id or "", the side asked from) of a related-list path."""
        module, record_id, related = (request.path_params[k] for k in ("module", "record_id", "related"))
        if module == "Campaigns" and related in PEOPLE:
            return record_id, related, "", "campaign"
        if module in PEOPLE and related == "Campaigns":
            return "", module, record_id, "person"
        raise Refusal(self.sandbox.not_found(request))  # no other related list is served

    def _owner(self, module: str, record_id: str) -> None:
        if self.sandbox.table(module).get(record_id) is None:
            raise Refusal(_error(400, "INVALID_DATA", "the id given seems to be invalid", id=record_id))

    async def related_lists(self, request: Request) -> Response:
        """``GET /settings/related_lists?module=``: the related lists served (Zoho's SDK reads them first)."""
        module = request.query_params.get("module", "")
        if module not in self.sandbox.modules:
            return _error(400, "INVALID_MODULE", "the module name given seems to be invalid", param="module")
        related = PEOPLE if module == "Campaigns" else ("Campaigns",) if module in PEOPLE else ()
        return JSONResponse({"related_lists": [_related_list(module, name, n) for n, name in enumerate(related, 1)]})

    async def related(self, request: Request) -> Response:
        """GET, PUT or DELETE a related list of Campaigns and Contacts or Leads."""
        campaign_id, module, person_id, side = self._pair(request)
        self._owner("Campaigns" if side == "campaign" else module, campaign_id or person_id)
        if request.method == "GET":
            return self._list(request, campaign_id, module, person_id)
        if request.method == "DELETE":
            ids = [i for i in (request.query_params.get("ids") or "").split(",") if i]
            return self._answer([(i, self._unrelate(campaign_id or i, module, person_id or i)) for i in ids], "removed")
        try:
            body = (await request.json())["data"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "INVALID_DATA", "body is not a JSON object with data[]")
        if not isinstance(body, list) or not body:
            return _error(400, "MANDATORY_NOT_FOUND", "required field not found", api_name="data")
        if len(body) > WRITE_LIMIT:
            return _error(400, "LIMIT_EXCEEDED", "Record count exceeded", limit=WRITE_LIMIT)
        results = [self._put(campaign_id, module, person_id, entry) for entry in body]
        return self._answer(results, "updated")

    def _put(self, campaign_id: str, module: str, person_id: str, entry: Any) -> tuple[str, str | None]:
        other = str(entry.get("id") or "") if isinstance(entry, dict) else ""
        campaign, person = campaign_id or other, person_id or other
        status = entry.get(MEMBER_STATUS) if isinstance(entry, dict) else None
        if self.sandbox.table("Campaigns").get(campaign) is None or self.sandbox.table(module).get(person) is None:
            return other, "INVALID_DATA"
        if status is not None and status not in MEMBER_STATUSES:
            return other, "INVALID_DATA"
        current = self.members.get(campaign, {}).get((module, person))
        self.relate(campaign, module, person, str(status or current or MEMBER_STATUSES[0]))
        return other, None

    def _unrelate(self, campaign_id: str, module: str, person_id: str) -> str | None:
        gone = self.members.get(campaign_id, {}).pop((module, person_id), None)
        return None if gone is not None else "INVALID_DATA"

    @staticmethod
    def _answer(results: list[tuple[str, str | None]], verb: str) -> Response:
        data = [_outcome(i, error, verb) for i, error in results]
        ok = all(error is None for _, error in results)
        return JSONResponse({"data": data}, 200 if ok or len(results) > 1 else 400)

    def _list(self, request: Request, campaign_id: str, module: str, person_id: str) -> Response:
        listed = "Campaigns" if person_id else module
        definition = self.sandbox.modules[listed]
        raw = [c.strip() for c in (request.query_params.get("fields") or "").split(",") if c.strip()]
        if not raw:
            return _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param="fields")
        unknown = [c for c in raw if c not in ("id", MEMBER_STATUS) and definition.field(c) is None]
        if unknown:
            return _error(400, "INVALID_DATA", "invalid data", api_name=unknown[0])
        if person_id:
            pairs = [(c, status) for c, found in self.members.items() if (status := found.get((module, person_id)))]
        else:
            members = self.members.get(campaign_id, {})
            pairs = [(pid, status) for (mod, pid), status in members.items() if mod == module]
        table = self.sandbox.table(listed)
        rows = [(row, status) for rid, status in sorted(pairs) if (row := table.get(rid)) is not None]
        try:
            page = max(int(request.query_params.get("page", 1)), 1)
            per_page = min(max(int(request.query_params.get("per_page", PAGE_LIMIT)), 1), PAGE_LIMIT)
        except ValueError:
            return _error(400, "INVALID_DATA", "invalid data", param_name="page")
        chosen = rows[(page - 1) * per_page : page * per_page]
        if not chosen:
            return Response(status_code=204)
        columns = [c for c in raw if c != MEMBER_STATUS]
        data = [
            {
                **self.sandbox.render(definition, row, columns),
                **({MEMBER_STATUS: status} if MEMBER_STATUS in raw else {}),
            }
            for row, status in chosen
        ]
        more = len(rows) > page * per_page
        info = {"per_page": per_page, "count": len(data), "page": page, "more_records": more}
        return JSONResponse({"data": data, "info": info})


def _error(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"code": code, "details": details, "message": message, "status": "error"}, status)


def _outcome(record_id: str, error: str | None, verb: str) -> dict[str, Any]:
    """One entry of a relation write's ``data[]``."""
    if error is None:
        return {"code": "SUCCESS", "details": {"id": record_id}, "message": f"relation {verb}", "status": "success"}
    return {
        "code": error,
        "details": {"id": record_id},
        "message": "the id given seems to be invalid",
        "status": "error",
    }


def _related_list(module: str, name: str, sequence: int) -> dict[str, Any]:
    """One entry of the related-list metadata, in Zoho's shape."""
    return {
        "id": f"{MODULE_IDS[module][:-4]}{7000 + sequence}",
        "sequence_number": str(sequence),
        "display_label": name,
        "api_name": name,
        "module": {"api_name": name, "id": MODULE_IDS[name]},
        "name": name,
        "action": None,
        "href": f"{module}/{{ENTITYID}}/{name}",
        "type": "default",
        "connectedmodule": None,
        "linkingmodule": None,
        "visible": True,
        "customize_sort": False,
        "customize_fields": False,
        "customize_display_label": False,
    }
