"""An emulator of the Marketo Engage REST API subset closeloop uses, to the letter of its public contract.

Marketo answers almost everything with HTTP 200: a refused call says ``success: false`` with
``errors[{code, message}]`` (codes are strings), and a batch write says per record ``status`` created, updated
or skipped with ``reasons[]``. Rate (606), concurrency (615) and daily quota (607) refusals look the same.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from closeloop.model import iso_utc, parse_utc
from closeloop.sandbox.kit import Refusal, SandboxBase
from closeloop.sandbox.records import RecordTable, Row, sequential_ids

from .activity import (
    Activity,
    LeadTable,
    Position,
    decode_token,
    encode_token,
    whole_second,
)
from .programs import Programs
from .schema import (
    ACTIVITY_TYPES,
    CHANGE_DATA_VALUE,
    DEFAULT_LEAD_FIELDS,
    DELETE_LEAD,
    NEW_LEAD,
    SEARCHABLE,
    LeadField,
    custom_field,
)

MAX_BATCH = 300
ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
OPPORTUNITY_FIELDS = (
    "externalOpportunityId", "name", "description", "type", "stage", "amount", "closeDate",
    "isClosed", "isWon", "probability", "leadSource", "externalCreatedDate", "externalSalesPersonId",
)  # fmt: skip
ROLE_FIELDS = ("externalOpportunityId", "leadId", "role", "isPrimary")


class MarketoError(Exception):
    """A whole-call refusal, answered as HTTP 200 with ``success: false``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MarketoSandbox(SandboxBase):
    """The emulated Marketo instance: identity, leads, activities, program membership, opportunities."""

    vendor = "marketo"

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107  # the emulator's fixed fake credential
    ) -> None:
        self.program_api = Programs(self)  # before the kit's set-up, which asks for the routes
        super().__init__(seed=seed, clock=clock)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = "closeloop-api@sandbox.invalid"
        self.knobs.requests_per_window = 100
        self.knobs.window_s = 20.0
        self.knobs.daily_limit = 50_000
        self.knobs.concurrency_limit = 10
        self.knobs.token_ttl_s = 3600
        self._current_token: str | None = None
        self.leads = LeadTable("leads", self.clock, sequential_ids(start=1001))
        self.tables["leads"] = self.leads
        self.tables["opportunities"] = RecordTable(
            "opportunities", self.clock, lambda: secrets.token_hex(16), unique=("externalOpportunityId",)
        )
        self.tables["opportunityRoles"] = RecordTable("opportunityRoles", self.clock, lambda: secrets.token_hex(16))
        self.programs: dict[int, str] = {}
        self.memberships: dict[str, dict[int, dict[str, Any]]] = {}

    # -- kit hooks -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The Marketo endpoints closeloop uses."""
        rest = "/rest/v1"
        return [
            Route("/identity/oauth/token", self.identity, methods=["GET", "POST"]),
            Route(f"{rest}/leads.json", self.leads_endpoint, methods=["GET", "POST", "DELETE"]),
            Route(f"{rest}/lead/{{leadId:int}}.json", self.lead_by_id, methods=["GET"]),
            Route(f"{rest}/leads/programs/{{programId:int}}.json", self.leads_by_program, methods=["GET", "POST"]),
            Route(f"{rest}/leads/delete.json", self.delete_leads, methods=["POST"]),
            Route(f"{rest}/leads/describe.json", self.describe, methods=["GET"]),
            Route(f"{rest}/leads/describe2.json", self.describe2, methods=["GET"]),
            Route(f"{rest}/leads/schema/fields.json", self.create_fields, methods=["POST"]),
            Route(f"{rest}/leads/{{leadId:int}}/merge.json", self.merge, methods=["POST"]),
            Route(f"{rest}/leads/{{leadId:int}}/programMembership.json", self.membership, methods=["GET"]),
            Route(f"{rest}/activities/pagingtoken.json", self.paging_token, methods=["GET"]),
            Route(f"{rest}/activities/leadchanges.json", self.lead_changes, methods=["GET"]),
            Route(f"{rest}/activities/deletedleads.json", self.deleted_leads, methods=["GET"]),
            Route(f"{rest}/activities/types.json", self.activity_types, methods=["GET"]),
            Route(f"{rest}/activities.json", self.activities, methods=["GET"]),
            Route(f"{rest}/opportunities.json", self.opportunities, methods=["GET", "POST"]),
            Route(f"{rest}/opportunities/roles.json", self.roles, methods=["GET", "POST"]),
            Route(f"{rest}/leads/programs/{{programId:int}}/status.json", self.program_api.status, methods=["POST"]),
            Route("/rest/asset/v1/programs.json", self.program_api.programs, methods=["GET", "POST"]),
        ]

    def is_public(self, request: Request) -> bool:
        """The identity endpoint needs no token and is not counted against the limits."""
        return request.url.path.startswith("/identity/")

    def credentials(self, directory: Path) -> dict[str, str]:
        """The LaunchPoint custom service this emulator knows; it serves the identity host itself."""
        return {"base_url": self.base_url, "client_id": self.client_id, "client_secret": self.client_secret}

    def authenticate(self, request: Request) -> None:
        """A Bearer header, or the (deprecated) ``access_token`` query parameter Marketo still accepts."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        token = token or request.query_params.get("access_token")
        if not token:
            raise Refusal(self.refuse(600, "Access token not specified"))
        state = self.tokens.state(token)
        if state == "expired":
            raise Refusal(self.refuse(602, "Access token expired"))
        if state != "ok":
            raise Refusal(self.refuse(601, "Access token invalid"))

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """606 for the 100-calls-per-20-s window, 607 for the daily quota, inside HTTP 200."""
        if daily:
            return self.refuse(607, "Daily quota reached")
        window = self.knobs.requests_per_window, self.knobs.window_s
        return self.refuse(606, f"Max rate limit '{window[0]}' exceeded with in '{window[1]:g}' secs")

    def concurrency_limited(self, bucket: str) -> Response:
        """615 when more than 10 calls are in flight."""
        return self.refuse(615, "Concurrent access limit reached")

    def not_found(self, request: Request) -> Response:
        """610 inside HTTP 200, Marketo's answer to a URI that matches no resource."""
        return self.refuse(610, "Requested resource not found")

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """605 inside HTTP 200, Marketo's answer to a method the endpoint does not take."""
        return self.refuse(605, f"Request method '{request.method}' not supported")

    def server_error(self, status: int) -> Response:
        """Marketo reports its own failures in the body; its gateway answers bare 502/503."""
        if status == 500:
            return self.refuse(611, "System error")
        if status == 504:
            return self.refuse(604, "Request timed out")
        return PlainTextResponse("<html><body>Bad Gateway</body></html>", status_code=status)

    # -- response shapes -----------------------------------------------------------------------------------
    def request_id(self) -> str:
        """Marketo's request id format, e.g. ``e42b#14272d07d78``."""
        return f"{self.rng.getrandbits(16):04x}#{self.rng.getrandbits(44):011x}"

    def refuse(self, code: int, message: str) -> JSONResponse:
        """A whole-call failure: HTTP 200, ``success: false``."""
        body = {
            "requestId": self.request_id(),
            "success": False,
            "errors": [{"code": str(code), "message": message}],
        }
        return JSONResponse(body)

    def ok(self, result: list[Any] | None = None, **extra: Any) -> JSONResponse:
        """A successful answer; ``result`` is left out when None (as Marketo does on empty activity pages)."""
        body: dict[str, Any] = {"requestId": self.request_id(), "success": True, "errors": [], "warnings": []}
        if result is not None:
            body["result"] = result
        body.update(extra)
        return JSONResponse(body)

    # -- identity --------------------------------------------------------------------------------------------
    async def identity(self, request: Request) -> Response:
        """Client credentials: one token until it expires, its ``expires_in`` counting down."""
        params = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode()
            params.update(dict(parse_qsl(body)))
        if params.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Missing or unsupported grant type"}, 400
            )
        if (params.get("client_id"), params.get("client_secret")) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "unauthorized", "error_description": "Bad client credentials"}, 401)
        now = self.clock.now()
        token = self._current_token
        if token is None or self.tokens.state(token) != "ok":
            token = f"{uuid.uuid4()}:sb"  # Marketo tokens are a GUID and a pod
            self.tokens.issued[token] = now + timedelta(seconds=self.knobs.token_ttl_s)
            self._current_token = token
        remaining = int((self.tokens.issued[token] - now).total_seconds())
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": remaining, "scope": self.scope}
        )

    # -- leads -----------------------------------------------------------------------------------------------
    async def leads_endpoint(self, request: Request) -> Response:
        """GET reads by filter; POST syncs (or reads, with ``_method=GET``); DELETE deletes by id."""
        try:
            if request.method == "DELETE":
                return await self.delete_leads(request)
            params = await read_params(request)
            if request.method == "GET" or params.get("_method") == "GET":
                return self.read_leads(params)
            return self.sync_leads(await request.json())
        except MarketoError as exc:
            return self.refuse(exc.code, exc.message)
        except ValueError:
            return self.refuse(609, "Invalid JSON")

    async def lead_by_id(self, request: Request) -> Response:
        """One lead by id (an empty result when there is none), with the asked ``fields`` or the defaults."""
        params = await read_params(request)
        try:
            fields = lead_fields(params.get("fields"), self.leads.lead_fields)
        except MarketoError as exc:
            return self.refuse(exc.code, exc.message)
        row = self.leads.get(str(request.path_params["leadId"]))
        return self.ok([render_lead(row, fields)] if row is not None else [])

    async def leads_by_program(self, request: Request) -> Response:
        """The members of a program, each with its ``membership``; paged by ``batchSize``/``nextPageToken``."""
        program_id = int(request.path_params["programId"])
        params = await read_params(request)
        if request.method == "POST" and params.get("_method") != "GET":
            return self.method_not_allowed(request, "GET")
        if program_id not in self.programs:
            return self.refuse(1013, f"Program '{program_id}' not found")
        try:
            fields = lead_fields(params.get("fields"), self.leads.lead_fields)
            batch = _batch_size(params.get("batchSize"))
            start = _offset(params.get("nextPageToken"))
        except MarketoError as exc:
            return self.refuse(exc.code, exc.message)
        members = sorted((int(lead), by[program_id]) for lead, by in self.memberships.items() if program_id in by)
        rows = [(row, m) for lead, m in members if (row := self.leads.get(str(lead))) is not None]
        page = rows[start : start + batch]
        extra: dict[str, Any] = {"moreResult": start + batch < len(rows)}
        if extra["moreResult"]:
            extra["nextPageToken"] = encode_token((datetime.fromtimestamp(0, UTC), start + batch))
        result = [{**render_lead(row, fields), "membership": _membership(m)} for row, m in page]
        return self.ok(result, **extra)

    def read_leads(self, params: dict[str, str]) -> Response:
        """``filterType``/``filterValues`` (at most 300), ``fields``, ``batchSize``, ``nextPageToken``."""
        filter_type = params.get("filterType")
        if not filter_type:
            raise MarketoError(1003, "filterType not specified")
        searchable = {name for group in SEARCHABLE for name in group}
        if filter_type not in searchable:
            raise MarketoError(1003, f"Invalid filterType '{filter_type}'")
        values = [v.strip() for v in params.get("filterValues", "").split(",") if v.strip()]
        if not values:
            raise MarketoError(1003, "filterValues not specified")
        if len(values) > MAX_BATCH:
            raise MarketoError(1003, f"Too many values in filterValues; maximum is {MAX_BATCH}")
        fields = lead_fields(params.get("fields"), self.leads.lead_fields)
        batch = _batch_size(params.get("batchSize"))
        rows = list(self._leads_matching(filter_type, values))
        start = _offset(params.get("nextPageToken"))
        page = rows[start : start + batch]
        extra: dict[str, Any] = {}
        if start + batch < len(rows):
            extra["nextPageToken"] = encode_token((datetime.fromtimestamp(0, UTC), start + batch))
        return self.ok([render_lead(row, fields) for row in page], **extra)

    def _leads_matching(self, filter_type: str, values: list[str]) -> Iterator[Row]:
        seen: set[str] = set()
        for value in values:
            if filter_type == "id":
                found = [self.leads.get(value)] if value.isdigit() else []
            elif filter_type == "email":
                found = list(self.leads.with_email(value))
            else:
                found = [self.leads.find(filter_type, value)]
            for row in found:
                if row is not None and row.id not in seen:
                    seen.add(row.id)
                    yield row

    def sync_leads(self, body: dict[str, Any]) -> Response:
        """createOrUpdate / createOnly / updateOnly / createDuplicate by ``lookupField``, 300 at most."""
        action = body.get("action") or "createOrUpdate"
        lookup = body.get("lookupField") or "email"
        records = body.get("input")
        if action not in ACTIONS:
            raise MarketoError(1003, f"Invalid action '{action}'")
        if not isinstance(records, list) or not records:
            raise MarketoError(1003, "input is empty")
        if len(records) > MAX_BATCH:
            raise MarketoError(1003, f"Batch size exceeds the limit of {MAX_BATCH}")
        if lookup not in self.leads.lead_fields or (lookup == "id" and action != "updateOnly"):
            raise MarketoError(1003, f"Invalid lookupField '{lookup}' for action '{action}'")
        return self.ok([self._sync_one(record, action, lookup) for record in records])

    def _sync_one(self, record: dict[str, Any], action: str, lookup: str) -> dict[str, Any]:
        fields = {k: v for k, v in record.items() if k != lookup or lookup != "id"}
        try:
            values = coerce_lead(fields, self.leads.lead_fields)
        except MarketoError as exc:
            return skipped(exc.code, exc.message)
        rejected = self.rejects(values)
        if rejected:
            return skipped(1003, f"Invalid value for field '{rejected}'")
        key = record.get(lookup)
        if key in (None, "") and action != "createDuplicate":
            return skipped(1003, f"Value for lookup field '{lookup}' not specified")
        matches = [] if action == "createDuplicate" else self._lookup(lookup, key)
        if len(matches) > 1:
            return skipped(1007, "Multiple lead match lookup criteria")
        if matches and action == "createOnly":
            return skipped(1005, "Lead already exists")
        if not matches and action == "updateOnly":
            return skipped(1004, "Lead not found")
        values.pop("id", None)
        clash = self.leads.conflicts(values, except_id=matches[0].id if matches else None)
        if clash:
            return skipped(1005, f"Lead with the same '{clash}' already exists")
        self.stats.records_written += 1
        if matches:
            row = self.leads.update(matches[0].id, values, at=self.now())
            return {"id": int(row.id), "status": "updated"}
        row = self.leads.insert(values, at=self.now())
        return {"id": int(row.id), "status": "created"}

    def _lookup(self, lookup: str, key: Any) -> list[Row]:
        if lookup == "id":
            row = self.leads.get(str(key))
            return [row] if row else []
        if lookup == "email":
            return self.leads.with_email(str(key))
        if lookup in self.leads.unique:
            row = self.leads.find(lookup, key)
            return [row] if row else []
        return [r for r in self.leads.live() if r.fields.get(lookup) == key]

    async def delete_leads(self, request: Request) -> Response:
        """Delete leads by id (a JSON ``input`` or repeated ``id`` parameters), 300 at most; unknown ids skip."""
        ids = _split((await read_params(request)).get("id"))
        records = [{"id": int(i) if i.isdigit() else i} for i in ids] or (await request.json()).get("input") or []
        if len(records) > MAX_BATCH:
            return self.refuse(1003, f"Batch size exceeds the limit of {MAX_BATCH}")
        results: list[dict[str, Any]] = []
        for record in records:
            lead_id = str(record.get("id"))
            if self.leads.get(lead_id) is None:
                results.append({"id": record.get("id"), **skipped(1004, "Lead not found")})
                continue
            self.leads.delete(lead_id, at=self.now())
            self.stats.records_written += 1
            results.append({"id": int(lead_id), "status": "deleted"})
        return self.ok(results)

    async def describe(self, request: Request) -> Response:
        """Every lead field with its REST name, data type and readOnly flag."""
        return self.ok([f.describe() for f in self.leads.lead_fields.values()])

    async def create_fields(self, request: Request) -> Response:
        """Create Lead Fields: one result per input, ``created`` or ``skipped`` with its reason."""
        try:
            inputs = (await request.json()).get("input")
        except ValueError:
            return self.refuse(609, "Invalid JSON")
        if not isinstance(inputs, list) or not inputs:
            return self.refuse(1003, "input is empty")
        results: list[dict[str, Any]] = []
        for item in inputs:
            made = custom_field(item, self.leads.lead_fields)
            if isinstance(made, tuple):
                name = item.get("name") if isinstance(item, dict) else None
                results.append({"name": name, **skipped(*made)})
                continue
            self.leads.lead_fields[made.name] = made
            results.append({"name": made.name, "status": "created"})
        return self.ok(results)

    async def describe2(self, request: Request) -> Response:
        """The newer describe: searchable fields and ``updateable`` per field."""
        fields = [f.describe2() for f in self.leads.lead_fields.values()]
        return self.ok([{"name": "API Lead", "searchableFields": [list(g) for g in SEARCHABLE], "fields": fields}])

    async def merge(self, request: Request) -> Response:
        """Merge losers (``leadId`` or ``leadIds``) into the winner in the path."""
        winner = str(request.path_params["leadId"])
        losers = _split(request.query_params.get("leadIds")) or _split(request.query_params.get("leadId"))
        if self.leads.get(winner) is None:
            return self.refuse(1004, f"Lead '{winner}' not found")
        if not losers:
            return self.refuse(1003, "leadId or leadIds not specified")
        for loser in losers:
            if self.leads.get(loser) is None or loser == winner:
                return self.refuse(1004, f"Lead '{loser}' not found")
        for loser in losers:
            self.leads.merge(loser, winner, at=self.now())
        return JSONResponse({"requestId": self.request_id(), "success": True})

    async def membership(self, request: Request) -> Response:
        """The programs a lead is a member of, with status and membership date."""
        lead_id = str(request.path_params["leadId"])
        if self.leads.get(lead_id) is None:
            return self.refuse(1004, f"Lead '{lead_id}' not found")
        return self.ok(list(self.memberships.get(lead_id, {}).values()))

    # -- activities ------------------------------------------------------------------------------------------
    async def paging_token(self, request: Request) -> Response:
        """A token for the first activity at or after ``sinceDatetime``."""
        since = request.query_params.get("sinceDatetime")
        if not since:
            return self.refuse(1003, "sinceDatetime not specified")
        try:
            moment = parse_utc(since if "T" in since else f"{since}T00:00:00Z")
        except ValueError:
            return self.refuse(1003, f"Invalid value for sinceDatetime '{since}'")
        return self.ok(nextPageToken=encode_token((whole_second(moment), 0)))

    async def lead_changes(self, request: Request) -> Response:
        """New Lead (12) and Change Data Value (13) activities of the listed ``fields`` after the token."""
        params = await read_params(request)
        fields = set(_split(params.get("fields")))
        if not fields:
            return self.refuse(1003, "fields not specified")

        def watched(activity: Activity) -> bool:
            return activity.type_id == NEW_LEAD or any(c["name"] in fields for c in activity.changes)

        return self._activity_page(params, (NEW_LEAD, CHANGE_DATA_VALUE), watched, lead_change=True)

    async def deleted_leads(self, request: Request) -> Response:
        """Delete Lead (37) activities after the token."""
        return self._activity_page(await read_params(request), (DELETE_LEAD,), lambda a: True)

    async def activities(self, request: Request) -> Response:
        """Activities of up to 10 ``activityTypeIds`` after the token, optionally for up to 30 ``leadIds``."""
        params = await read_params(request)
        raw_types = _split(params.get("activityTypeIds"))
        if not raw_types or not all(t.isdigit() for t in raw_types) or len(raw_types) > 10:
            return self.refuse(1003, "activityTypeIds must list 1 to 10 activity type ids")
        return self._activity_page(params, tuple(int(t) for t in raw_types), lambda a: True)

    async def activity_types(self, request: Request) -> Response:
        """The activity types this instance logs."""
        return self.ok(list(ACTIVITY_TYPES))

    def _activity_page(
        self,
        params: Any,
        types: tuple[int, ...],
        keep: Callable[[Activity], bool],
        *,
        lead_change: bool = False,
    ) -> Response:
        token = params.get("nextPageToken")
        position: Position | None = decode_token(token) if token else None
        if position is None:
            return self.refuse(1003, "Invalid nextPageToken" if token else "nextPageToken not specified")
        lead_ids = set(_split(params.get("leadIds")))
        if len(lead_ids) > 30:
            return self.refuse(1003, "leadIds allows up to 30 entries")
        try:
            batch = _batch_size(params.get("batchSize"))
        except MarketoError as exc:
            return self.refuse(exc.code, exc.message)
        page: list[Activity] = []
        more = False
        for activity in self.leads.activities.after(position, types):
            if (lead_ids and str(activity.lead_id) not in lead_ids) or not keep(activity):
                continue
            if len(page) == batch:
                more = True
                break
            page.append(activity)
        last = page[-1].position if page else position
        result = [a.render(lead_change=lead_change) for a in page] or None
        return self.ok(result, nextPageToken=encode_token(last), moreResult=more)

    # -- opportunities (read-only in instances with native CRM sync; closeloop does not write them) ---------
    async def opportunities(self, request: Request) -> Response:
        """Opportunities deduplicated by ``externalOpportunityId``."""
        return await self._custom_object(request, "opportunities", OPPORTUNITY_FIELDS, "externalOpportunityId")

    async def roles(self, request: Request) -> Response:
        """Opportunity roles deduplicated by (externalOpportunityId, leadId, role)."""
        return await self._custom_object(request, "opportunityRoles", ROLE_FIELDS, None)

    async def _custom_object(
        self, request: Request, name: str, allowed: tuple[str, ...], unique: str | None
    ) -> Response:
        table = self.tables[name]
        if request.method == "GET":
            params = dict(request.query_params)
            filter_type = params.get("filterType", "")
            values = _split(params.get("filterValues"))
            if filter_type not in (*allowed, "marketoGUID") or not values:
                return self.refuse(1003, f"Invalid filterType '{filter_type}'")
            if len(values) > MAX_BATCH:
                return self.refuse(1003, f"Too many values in filterValues; maximum is {MAX_BATCH}")
            fields = _split(params.get("fields")) or list(allowed)
            rows = [
                r for r in table.live()
                if (r.id if filter_type == "marketoGUID" else str(r.fields.get(filter_type))) in values
            ]  # fmt: skip
            result = [
                {"seq": i, "marketoGUID": r.id, **{f: r.fields.get(f) for f in fields}} for i, r in enumerate(rows)
            ]
            return self.ok(result)
        body = await request.json()
        records = body.get("input") or []
        if len(records) > MAX_BATCH:
            return self.refuse(1003, f"Batch size exceeds the limit of {MAX_BATCH}")
        action = body.get("action") or "createOrUpdate"
        results = [self._sync_custom(table, allowed, unique, action, i, r) for i, r in enumerate(records)]
        return self.ok(results)

    def _sync_custom(
        self,
        table: RecordTable,
        allowed: tuple[str, ...],
        unique: str | None,
        action: str,
        seq: int,
        record: dict[str, Any],
    ) -> dict[str, Any]:
        unknown = [k for k in record if k not in allowed and k != "marketoGUID"]
        if unknown:
            return {
                "seq": seq,
                "status": "skipped",
                "reasons": [{"code": "1006", "message": f"Field '{unknown[0]}' not found"}],
            }
        keys = (unique,) if unique else ("externalOpportunityId", "leadId", "role")
        existing = next((r for r in table.live() if all(r.fields.get(k) == record.get(k) for k in keys)), None)
        if existing and action == "createOnly":
            return {
                "seq": seq,
                "status": "skipped",
                "reasons": [{"code": "1005", "message": "Record already exists"}],
            }
        if not existing and action == "updateOnly":
            return {
                "seq": seq,
                "status": "skipped",
                "reasons": [{"code": "1004", "message": "Record not found"}],
            }
        self.stats.records_written += 1
        if existing:
            table.update(existing.id, record, at=self.now())
            return {"seq": seq, "status": "updated", "marketoGUID": existing.id}
        row = table.insert(record, at=self.now())
        return {"seq": seq, "status": "created", "marketoGUID": row.id}


def skipped(code: int, message: str) -> dict[str, Any]:
    """A per-record refusal inside a successful batch answer."""
    return {"status": "skipped", "reasons": [{"code": str(code), "message": message}]}


def render_lead(row: Row, fields: list[str]) -> dict[str, Any]:
    """A lead as ``GET /rest/v1/leads.json`` returns it: its id (always, as Marketo does), the asked fields, null
    when empty."""
    out: dict[str, Any] = {"id": int(row.id)}
    for name in fields:
        if name == "id":
            out["id"] = int(row.id)
        elif name == "updatedAt":
            out[name] = iso_utc(row.modified_at, millis=False)
        elif name == "createdAt":
            out[name] = iso_utc(row.created_at, millis=False)
        else:
            out[name] = row.fields.get(name)
    return out


def coerce_lead(fields: dict[str, Any], known: dict[str, LeadField]) -> dict[str, Any]:
    """Values checked and converted per data type; unknown (1006) or bad (1003) values refuse the record."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        spec = known.get(name)
        if spec is None:
            raise MarketoError(1006, f"Field '{name}' not found")
        if spec.read_only and name != "id":
            raise MarketoError(1006, f"Field '{name}' is not updateable")
        values[name] = _coerce(spec.data_type, name, value)
    return values


def _coerce(data_type: str, name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        if data_type == "integer":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError(value)
            return int(float(value))
        if data_type in ("float", "currency"):
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if data_type == "datetime":
            text = str(value)
            return iso_utc(parse_utc(text if "T" in text else f"{text}T00:00:00Z"), millis=False)
        if data_type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if data_type == "email" and "@" not in str(value):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise MarketoError(1003, f"Invalid value '{value}' for field '{name}'") from None
    return str(value) if not isinstance(value, str) else value


async def read_params(request: Request) -> dict[str, str]:
    """Query and form-body parameters; a repeated one (Swagger's collectionFormat multi) joined with commas.

    Marketo's clients send reads as a form-encoded POST with ``_method=GET`` in the body or the query string.
    """
    pairs = list(request.query_params.multi_items())
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        pairs += parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    params: dict[str, str] = {}
    for name, value in pairs:
        joined = name in params and name not in ("_method", "access_token")
        params[name] = f"{params[name]},{value}" if joined else value
    return params


def lead_fields(raw: str | None, known: Mapping[str, Any]) -> list[str]:
    """The asked lead fields (the defaults when none); one the instance lacks refuses the call with 1006."""
    fields = _split(raw) or list(DEFAULT_LEAD_FIELDS)
    for name in fields:
        if name not in known:
            raise MarketoError(1006, f"Field '{name}' not found")
    return fields


def _membership(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("progressionStatus", "acquiredBy", "reachedSuccess", "membershipDate", "isExhausted")
    return {key: entry[key] for key in keys if key in entry}


def _split(raw: str | None) -> list[str]:
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


def _batch_size(raw: str | None) -> int:
    if raw is None:
        return MAX_BATCH
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
        raise MarketoError(1003, f"Invalid batchSize '{raw}'; maximum is {MAX_BATCH}")
    return int(raw)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    position = decode_token(token)
    if position is None:
        raise MarketoError(1003, "Invalid nextPageToken")
    return position[1]
