"""The Zoho CRM v8 emulator: OAuth refresh, records, upsert, search, deleted, COQL, fields, pipeline, campaigns."""

from __future__ import annotations

import base64
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from closeloop.model import Cursor, parse_utc
from closeloop.sandbox import RecordTable, Refusal, Row, SandboxBase, sequential_ids

from .campaigns import CampaignMembers
from .merge import merge_records
from .modules import CLOSED_TASK_STATUS, MODULE_IDS, MODULES, ModuleDef, custom_field, field_metadata, pipeline_metadata
from .queries import QueryError, comparable, in_time_order, parse_coql, parse_criteria, second
from .users import Users

API = "/crm/v8"
WRITE_LIMIT = 100
PAGE_LIMIT = 200
DISCRETE_PAGING_LIMIT = 2000
OWNER = {"name": "Sandbox Admin", "id": "4876876000000333001", "email": "admin@sandbox.invalid"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def zoho_error(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    """An error in Zoho's body shape: ``{code, details, message, status: "error"}``."""
    return JSONResponse({"code": code, "details": details, "message": message, "status": "error"}, status)


def record_error(code: str, message: str, **details: Any) -> dict[str, Any]:
    """One failed entry of a write's ``data[]``."""
    return {"code": code, "details": details, "message": message, "status": "error"}


class ZohoSandbox(SandboxBase):
    """Zoho CRM's v8 REST API subset closeloop uses, in one ASGI app (accounts host included)."""

    vendor = "zoho"

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        org_timezone: str = "Asia/Kolkata",
    ) -> None:
        self.org_timezone = ZoneInfo(org_timezone)
        """The org's time zone: Zoho renders every time in it, with its offset."""
        self.client_id, self.client_secret = "1000.SANDBOXCLIENTID", "sandbox-client-secret"
        self.refresh_token = "1000.sandbox.refresh-token"
        self.refresh_limit = (10, 600.0)
        """Zoho issues at most 10 access tokens per refresh token in 10 minutes."""
        self._refreshes: deque[datetime] = deque()
        self.users = Users()
        self.campaigns = CampaignMembers(self)
        """Campaign memberships: the related lists between Campaigns and Contacts or Leads."""
        super().__init__(seed=seed, clock=clock)
        self.base_url = "http://zoho.sandbox.invalid"
        # Zoho bills credits per 24 h and caps concurrent calls (Enterprise: 20); no per-second window.
        self.knobs.requests_per_window, self.knobs.window_s = 1_000_000, 60.0
        self.knobs.daily_limit = 50_000
        self.knobs.concurrency_limit = 20
        self.contact_roles: dict[str, dict[str, str]] = {}
        """Deal id -> {contact id: role name}, the Contact Roles related list."""
        self.modules = dict(MODULES)
        """This org's modules: Zoho's own fields, then the custom fields created through the API."""
        for number, module in enumerate(MODULES.values()):
            self.tables[module.api_name] = RecordTable(
                module.api_name,
                self.clock,
                sequential_ids(f"48768760000{number + 1}", 1, 7),
                unique=module.duplicate_check,
            )

    # -- kit hooks ---------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """Accounts token endpoint plus the CRM v8 paths."""
        return [Route(route.path, _guarded(route.endpoint), methods=route.methods) for route in self._api_routes()]

    def _api_routes(self) -> list[Route]:
        return [
            Route("/oauth/v2/token", self._token, methods=["POST"]),
            Route(f"{API}/settings/fields", self._fields, methods=["GET", "POST"]),
            Route(f"{API}/settings/pipeline", self._pipeline, methods=["GET"]),
            Route(f"{API}/settings/related_lists", self.campaigns.related_lists, methods=["GET"]),
            Route(f"{API}/coql", self._coql, methods=["POST"]),
            Route(f"{API}/users", self.users.list, methods=["GET"]),
            Route(f"{API}/users", self.users.create, methods=["POST"]),
            Route(f"{API}/{{module}}/upsert", self._upsert, methods=["POST"]),
            Route(f"{API}/{{module}}/search", self._search, methods=["GET"]),
            Route(f"{API}/{{module}}/deleted", self._deleted, methods=["GET"]),
            Route(f"{API}/Deals/{{deal_id}}/Contact_Roles", self._contact_roles, methods=["GET"]),
            Route(
                f"{API}/Deals/{{deal_id}}/Contact_Roles/{{contact_id}}",
                self._set_contact_role,
                methods=["PUT"],
            ),
            Route(f"{API}/{{module}}/{{record_id}}/actions/merge", self._merge, methods=["POST"]),
            Route(
                f"{API}/{{module}}/{{record_id}}/{{related}}", self.campaigns.related, methods=["GET", "PUT", "DELETE"]
            ),
            Route(f"{API}/{{module}}", self._records, methods=["GET", "POST", "PUT", "DELETE"]),
            Route(f"{API}/{{module}}/{{record_id}}", self._record, methods=["GET", "PUT", "DELETE"]),
        ]

    def is_public(self, request: Request) -> bool:
        """The accounts host's token endpoint needs no access token."""
        return request.url.path == "/oauth/v2/token"

    def credentials(self, directory: Path) -> dict[str, str]:
        """The self-client this emulator knows; it serves the accounts host (token refresh) itself."""
        return {
            "base_url": self.base_url,
            "auth_url": self.base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    def authenticate(self, request: Request) -> None:
        """``Authorization: Zoho-oauthtoken <token>``; anything else is refused as Zoho does."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            raise Refusal(zoho_error(401, "AUTHENTICATION_FAILURE", "Authentication failed"))
        if self.tokens.state(token) != "ok":
            raise Refusal(zoho_error(401, "INVALID_TOKEN", "invalid oauth token"))

    def bucket(self, request: Request) -> str:
        """Zoho has one credit pool; every call spends from it."""
        return "default"

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """429 with Zoho's body: concurrency/throttle or the day's credits spent."""
        if daily:
            return zoho_error(
                429,
                "LIMIT_EXCEEDED",
                "API credits exhausted for the last 24 hours",
                limit=self.knobs.daily_limit,
            )
        return zoho_error(429, "TOO_MANY_REQUESTS", "Too many requests. Please try again after some time.")

    def not_found(self, request: Request) -> Response:
        """Zoho's answer to a URL it does not serve."""
        return zoho_error(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """Zoho's answer to a served URL called with another method."""
        return zoho_error(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")

    def server_error(self, status: int) -> Response:
        """500 in Zoho's JSON; gateway failures come from the front proxy as HTML."""
        if status == 500:
            return zoho_error(500, "INTERNAL_ERROR", "Internal server error occurred.")
        return Response(f"<html><body><h1>{status}</h1></body></html>", status, media_type="text/html")

    # -- rendering -------------------------------------------------------------------------------------
    def zoned(self, moment: datetime) -> str:
        """A time as Zoho writes it: whole seconds, in the org's time zone, with its offset."""
        return second(moment).astimezone(self.org_timezone).isoformat()

    def values(self, module: ModuleDef, row: Row) -> dict[str, Any]:
        """A row's values as queries compare them (times aware UTC at Zoho's second resolution)."""
        values = {**row.fields, "id": row.id, "Created_Time": second(row.created_at)}
        if module.has_modified_time:
            values["Modified_Time"] = second(row.modified_at)
        if module.field("Full_Name"):
            values["Full_Name"] = " ".join(
                str(v) for v in (row.fields.get("First_Name"), row.fields.get("Last_Name")) if v
            )
        return values

    def render(self, module: ModuleDef, row: Row, columns: list[str] | None = None) -> dict[str, Any]:
        """A record as Zoho returns it: lookups as ``{name, id}``, owners, times with the org's offset."""
        values = self.values(module, row)
        out: dict[str, Any] = {}
        for definition in module.fields:
            name = definition.api_name
            if columns is not None and name not in columns:
                continue
            value = values.get(name)
            if definition.data_type == "ownerlookup":
                value = self.users.owner(value["id"] if isinstance(value, dict) else None)
            elif definition.data_type == "datetime" and isinstance(value, datetime):
                value = self.zoned(value)
            elif definition.data_type == "lookup" and value:
                value = {"name": self._lookup_name(definition.lookup_module, value["id"]), "id": value["id"]}
            out[name] = value
        out["id"] = row.id
        return out

    def _lookup_name(self, module_name: str | None, record_id: str) -> str:
        table = self.tables.get(module_name or "")
        row = table.get(record_id) if table else None
        if row is None:
            return ""
        fields = row.fields
        return str(
            fields.get("Deal_Name")
            or " ".join(str(v) for v in (fields.get("First_Name"), fields.get("Last_Name")) if v)
        )

    def module(self, request: Request) -> ModuleDef:
        """The module named in the path, or Zoho's INVALID_MODULE refusal."""
        name = request.path_params.get("module", "")
        module = self.modules.get(name)
        if module is None:
            raise Refusal(
                zoho_error(400, "INVALID_MODULE", "The module name given seems to be invalid", resource_path_index=0)
            )
        return module

    # -- auth ------------------------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        params = dict(request.query_params)
        if not params.get("grant_type"):
            # Zoho's SDK sends the grant form-encoded in the body; parsed here, not with request.form(),
            # which would need python-multipart for a body this simple.
            params.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if params.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"})
        if (params.get("client_id"), params.get("client_secret")) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"})  # Zoho answers 200 with an error field
        if params.get("refresh_token") != self.refresh_token:
            return JSONResponse({"error": "invalid_code"})
        now = self.clock.now()
        limit, seconds = self.refresh_limit
        while self._refreshes and self._refreshes[0] <= now - timedelta(seconds=seconds):
            self._refreshes.popleft()
        if self.knobs.enforce_limits and len(self._refreshes) >= limit:
            return JSONResponse(
                {
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                    "error": "Access Denied",
                    "status": "failure",
                },
                400,
            )
        self._refreshes.append(now)
        token = self.tokens.issue(self.knobs.token_ttl_s)
        return JSONResponse(
            {
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL ZohoCRM.coql.READ",
                "api_domain": self.base_url,
                "token_type": "Bearer",
                "expires_in": self.knobs.token_ttl_s,
            }
        )

    # -- metadata --------------------------------------------------------------------------------------
    async def _fields(self, request: Request) -> Response:
        name = request.query_params.get("module")
        if not name:
            return zoho_error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param="module")
        module = self.modules.get(name)
        if module is None:
            return zoho_error(400, "INVALID_DATA", "invalid data", param_name="module")
        if request.method == "POST":
            return await self._create_fields(request, module)
        return JSONResponse({"fields": [field_metadata(module, i, f) for i, f in enumerate(module.fields)]})

    async def _create_fields(self, request: Request, module: ModuleDef) -> Response:
        """Create custom fields: one ``fields[]`` entry per input, in order."""
        body = await self._body(request, "fields")
        if isinstance(body, Response):
            return body
        answers: list[dict[str, Any]] = []
        for item in body["fields"]:
            made = custom_field(self.modules[module.api_name], item)
            if isinstance(made, tuple):
                code, message, details = made
                answers.append({"code": code, "details": details, "message": message, "status": "error"})
                continue
            self.modules[module.api_name] = replace(module, fields=(*self.modules[module.api_name].fields, made))
            if made.unique:
                self.table(module.api_name).add_unique(made.api_name)
            details = {"id": f"4876876000{len(self.modules[module.api_name].fields):07d}"}
            answers.append({"code": "SUCCESS", "details": details, "message": "field created", "status": "success"})
        failed = all(answer["status"] == "error" for answer in answers)
        return JSONResponse({"fields": answers}, status_code=400 if failed else 201)

    async def _pipeline(self, request: Request) -> Response:
        if not request.query_params.get("layout_id"):
            return zoho_error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param="layout_id"
            )
        return JSONResponse(pipeline_metadata())

    # -- reads -----------------------------------------------------------------------------------------
    def _page_window(self, request: Request) -> tuple[int, int] | Response:
        params = request.query_params
        try:
            per_page = min(int(params.get("per_page", PAGE_LIMIT)), PAGE_LIMIT)
            token = params.get("page_token")
            if token:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
                return start, per_page
            page = int(params.get("page", 1))
        except (ValueError, KeyError, json.JSONDecodeError):
            return zoho_error(400, "INVALID_DATA", "invalid data", param_name="page")
        if page * per_page > DISCRETE_PAGING_LIMIT:
            # Past 2,000 records Zoho wants page_token instead of page numbers.
            return zoho_error(
                400,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "The number of records requested exceeds the limit of discrete pagination",
                limit=DISCRETE_PAGING_LIMIT,
            )
        return (page - 1) * per_page, per_page

    def _listing(
        self, request: Request, module: ModuleDef, matches: Iterator[Row], columns: list[str] | None
    ) -> Response:
        window = self._page_window(request)
        if isinstance(window, Response):
            return window
        start, per_page = window
        chosen: list[Row] = []
        more = False
        for index, row in enumerate(matches):
            if index < start:
                continue
            if len(chosen) == per_page:
                more = True
                break
            chosen.append(row)
        if not chosen:
            return Response(status_code=204)
        info: dict[str, Any] = {
            "per_page": per_page,
            "count": len(chosen),
            "page": start // per_page + 1,
            "sort_by": request.query_params.get("sort_by", "id"),
            "sort_order": request.query_params.get("sort_order", "desc"),
            "more_records": more,
        }
        if more:
            info["next_page_token"] = base64.urlsafe_b64encode(
                json.dumps({"offset": start + per_page}).encode()
            ).decode()
            info["page_token_expiry"] = self.zoned(self.clock.now() + timedelta(days=1))
        return JSONResponse({"data": [self.render(module, row, columns) for row in chosen], "info": info})

    def _columns(self, request: Request, module: ModuleDef) -> list[str] | Response:
        raw = request.query_params.get("fields")
        if not raw:
            return zoho_error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param="fields")
        columns = [c.strip() for c in raw.split(",") if c.strip()]
        if len(columns) > 50:
            return zoho_error(400, "LIMIT_EXCEEDED", "Max field limit exceeded", limit=50)
        unknown = [c for c in columns if c != "id" and module.field(c) is None]
        if unknown:
            return zoho_error(400, "INVALID_DATA", "invalid data", api_name=unknown[0])
        return columns

    def _sorted(self, request: Request, module: ModuleDef, rows: Iterator[Row]) -> list[Row]:
        sort_by = request.query_params.get("sort_by", "id")
        if sort_by not in ("id", "Created_Time", "Modified_Time"):
            sort_by = "id"
        descending = request.query_params.get("sort_order", "desc") == "desc"

        def key(row: Row) -> tuple[Any, int]:
            values = self.values(module, row)
            return (values.get(sort_by) if sort_by != "id" else 0, int(row.id))

        return sorted(rows, key=key, reverse=descending)

    async def _list(self, request: Request, module: ModuleDef) -> Response:
        columns = self._columns(request, module)
        if isinstance(columns, Response):
            return columns
        table = self.table(module.api_name)
        rows: Iterator[Row] = table.live()
        ids = request.query_params.get("ids")
        if ids:
            wanted = [i.strip() for i in ids.split(",") if i.strip()]
            if len(wanted) > WRITE_LIMIT:
                return zoho_error(400, "LIMIT_EXCEEDED", "Record count exceeded", limit=WRITE_LIMIT)
            rows = (row for i in wanted if (row := table.get(i)) is not None)
        since = request.headers.get("if-modified-since")
        if since:
            moment = parse_utc(since)
            rows = (row for row in rows if second(row.modified_at) >= second(moment))
        ordered = self._sorted(request, module, rows)
        if since and not ordered:
            return Response(status_code=304)
        return self._listing(request, module, iter(ordered), columns)

    async def _search(self, request: Request) -> Response:
        module = self.module(request)
        params = request.query_params
        try:
            if "criteria" in params:
                predicate = parse_criteria(params["criteria"])
            elif "email" in params:
                predicate = parse_criteria(f"(Email:equals:{_escape(params['email'])})")
            elif "phone" in params:
                predicate = parse_criteria(f"(Phone:equals:{_escape(params['phone'])})")
            else:
                return zoho_error(
                    400,
                    "REQUIRED_PARAM_MISSING",
                    "One of the expected parameter is missing",
                    param="criteria",
                )
        except QueryError as exc:
            return zoho_error(400, exc.code, exc.message, **exc.details)
        raw_fields = params.get("fields")
        columns = [c.strip() for c in raw_fields.split(",")] if raw_fields else None
        rows = self.table(module.api_name).live()
        matches = (row for row in rows if predicate(self.values(module, row)))
        return self._listing(request, module, iter(sorted(matches, key=lambda r: int(r.id))), columns)

    async def _deleted(self, request: Request) -> Response:
        module = self.module(request)
        kind = request.query_params.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            return zoho_error(400, "INVALID_DATA", "invalid data", param_name="type")
        since = request.headers.get("if-modified-since")
        floor = second(parse_utc(since)) if since else None
        table = self.table(module.api_name)
        gone = [
            row
            for row in table.changed_after(
                Cursor(floor - timedelta(microseconds=1)) if floor else None, include_deleted=True
            )
            if row.deleted and (floor is None or second(row.modified_at) >= floor)
        ]
        # Zoho lists the recycle bin newest first; a record merged away was deleted permanently (merge.py).
        gone.sort(key=lambda r: (second(r.modified_at), int(r.id)), reverse=True)
        if kind != "all":
            gone = [row for row in gone if (row.merged_into is not None) == (kind == "permanent")]
        window = self._page_window(request)
        if isinstance(window, Response):
            return window
        start, per_page = window
        chosen = gone[start : start + per_page]
        if not chosen:
            return Response(status_code=304 if since else 204)
        data = [
            {
                "deleted_by": dict(OWNER),
                "id": row.id,
                "display_name": str(self.values(module, row).get(module.display_field) or ""),
                "type": "recycle" if row.merged_into is None else "permanent",
                "created_by": dict(OWNER),
                "deleted_time": self.zoned(row.modified_at),
            }
            for row in chosen
        ]
        info = {
            "per_page": per_page,
            "count": len(data),
            "page": start // per_page + 1,
            "more_records": start + per_page < len(gone),
        }
        return JSONResponse({"data": data, "info": info})

    async def _coql(self, request: Request) -> Response:
        try:
            body = await request.json()
            query = parse_coql(str(body["select_query"]))
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, QueryError):
                return zoho_error(400, exc.code, exc.message, **exc.details)
            return zoho_error(400, "SYNTAX_ERROR", "invalid query formed", clause="select_query")
        module = self.modules.get(query.module)
        if module is None:
            return zoho_error(
                400, "INVALID_QUERY", "invalid query formed", reason="invalid module", module=query.module
            )
        for name in (*query.columns, *query.where_fields, *(o[0] for o in query.order)):
            if name != "id" and module.field(name) is None:
                return zoho_error(
                    400,
                    "INVALID_QUERY",
                    "column given seems to be invalid",
                    column_name=name,
                    clause="select",
                )
        self._charge(1 if query.limit <= 200 else 2 if query.limit <= 1000 else 3)
        rows = self._coql_rows(module, query)
        chosen: list[Row] = []
        more = False
        for index, row in enumerate(rows):
            if index < query.offset:
                continue
            if len(chosen) == query.limit:
                more = True
                break
            chosen.append(row)
        if not chosen:
            return Response(status_code=204)
        columns = list(query.columns)
        data = [self.render(module, row, columns) for row in chosen]
        return JSONResponse({"data": data, "info": {"count": len(data), "more_records": more}})

    def _coql_rows(self, module: ModuleDef, query: Any) -> Iterator[Row]:
        table = self.table(module.api_name)
        start = Cursor(query.modified_from - timedelta(microseconds=1)) if query.modified_from else None
        candidates = table.changed_after(start)
        matching = (row for row in candidates if query.where(self.values(module, row)))
        order = [(name, desc) for name, desc in query.order]
        if order in ([("Modified_Time", False), ("id", False)], [("Modified_Time", False)]):
            # Stream: the (fine time, id) index becomes (second, id) order one second at a time.
            return in_time_order(matching, lambda row: (second(row.modified_at), int(row.id)))
        rows = list(matching)
        for name, desc in reversed(order or [("id", False)]):
            rows.sort(key=self._value_key(module, name), reverse=desc)
        return iter(rows)

    def _value_key(self, module: ModuleDef, name: str) -> Callable[[Row], tuple[int, Any]]:
        return lambda row: _sort_key(self.values(module, row).get(name))

    async def _record(self, request: Request) -> Response:
        module = self.module(request)
        record_id = request.path_params["record_id"]
        table = self.table(module.api_name)
        if request.method == "GET":
            row = table.get(record_id)
            if row is None:
                return Response(status_code=204)
            raw = request.query_params.get("fields")
            columns = [c.strip() for c in raw.split(",")] if raw else None
            return JSONResponse({"data": [self.render(module, row, columns)]})
        if request.method == "DELETE":
            return self._delete(module, [record_id])
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        records = [{**entry, "id": record_id} for entry in body.get("data", [])]
        return self._write(module, records, mode="update", duplicate_check=())

    # -- writes ----------------------------------------------------------------------------------------
    async def _records(self, request: Request) -> Response:
        module = self.module(request)
        if request.method == "GET":
            return await self._list(request, module)
        if request.method == "DELETE":
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            return self._delete(module, ids)
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        mode = "insert" if request.method == "POST" else "update"
        return self._write(module, body["data"], mode=mode, duplicate_check=())

    async def _upsert(self, request: Request) -> Response:
        module = self.module(request)
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        checks = tuple(body.get("duplicate_check_fields") or module.duplicate_check)
        bad = [name for name in checks if module.field(name) is None]
        if bad:
            return zoho_error(400, "INVALID_DATA", "invalid data", api_name=bad[0])
        return self._write(module, body["data"], mode="upsert", duplicate_check=checks)

    async def _body(self, request: Request, key: str = "data") -> dict[str, Any] | Response:
        """The JSON body, whose ``key`` (records, or fields to create) must be a non-empty list."""
        try:
            body = await request.json()
        except ValueError:
            return zoho_error(400, "INVALID_DATA", "invalid data", reason="body is not JSON")
        data = body.get(key) if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            return zoho_error(
                400, "MANDATORY_NOT_FOUND", "required field not found", api_name=key, json_path=f"$.{key}"
            )
        if len(data) > WRITE_LIMIT:
            return zoho_error(400, "LIMIT_EXCEEDED", "Record count exceeded", limit=WRITE_LIMIT)
        return dict(body)

    def _charge(self, credits: int) -> None:
        # The kit counts one credit per call; heavier calls spend the difference too.
        if credits > 1:
            self._daily += credits - 1

    def _write(self, module: ModuleDef, records: list[Any], *, mode: str, duplicate_check: tuple[str, ...]) -> Response:
        self._charge((len(records) + 9) // 10)  # writes cost a credit per 10 records (unconfirmed)
        table = self.table(module.api_name)
        results: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            results.append(self._write_one(module, table, index, record, mode, duplicate_check))
        ok = [r for r in results if r["status"] == "success"]
        status = (
            400
            if not ok
            else 202
            if len(ok) < len(results)
            else (201 if any(r.get("action", "insert") == "insert" for r in ok) and mode != "update" else 200)
        )
        return JSONResponse({"data": results}, status)

    def _write_one(
        self,
        module: ModuleDef,
        table: RecordTable,
        index: int,
        record: Any,
        mode: str,
        duplicate_check: tuple[str, ...],
    ) -> dict[str, Any]:
        if not isinstance(record, dict):
            return record_error("INVALID_DATA", "invalid data", json_path=f"$.data[{index}]")
        fields = {k: v for k, v in record.items() if k != "id"}
        existing: Row | None = None
        duplicate_field = None
        if mode == "update":
            record_id = str(record.get("id") or "")
            if not record_id:
                return record_error(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    api_name="id",
                    json_path=f"$.data[{index}].id",
                )
            existing = table.get(record_id)
            if existing is None:
                return record_error("INVALID_DATA", "the id given seems to be invalid", id=record_id)
        elif mode == "upsert":
            for name in duplicate_check:
                value = fields.get(name)
                if value in (None, ""):
                    continue
                found = (
                    table.find(name, value)
                    if name in table.unique
                    else next((r for r in table.live() if comparable(r.fields.get(name)) == comparable(value)), None)
                )
                if found is not None:
                    existing, duplicate_field = found, name
                    break
        cleaned = self._validate(module, index, fields, creating=existing is None)
        if "status" in cleaned:
            return cleaned
        conflict = self._conflict(module, table, cleaned, existing.id if existing else None)
        if conflict is not None:
            return record_error(
                "DUPLICATE_DATA",
                "duplicate data",
                api_name=conflict[0],
                json_path=f"$.data[{index}].{conflict[0]}",
                duplicate_record={
                    "id": conflict[1],
                    "module": {"api_name": module.api_name, "id": MODULE_IDS[module.api_name]},
                    "Owner": dict(OWNER),
                },
            )
        moment = self.now()
        if module.api_name == "Tasks":  # closed when completed, at the moment it first was; open again: blank
            before = existing.fields if existing else {}
            done = cleaned.get("Status", before.get("Status")) == CLOSED_TASK_STATUS
            cleaned["Closed_Time"] = (before.get("Closed_Time") or moment) if done else None
        if existing is None:
            row = table.insert(cleaned, at=moment)
            action, message = "insert", "record added"
        else:
            row = table.update(existing.id, cleaned, at=moment)
            action, message = "update", "record updated"
        self.stats.records_written += 1
        result: dict[str, Any] = {
            "code": "SUCCESS",
            "details": {
                "Modified_Time": self.zoned(row.modified_at),
                "Modified_By": dict(OWNER),
                "Created_Time": self.zoned(row.created_at),
                "id": row.id,
                "Created_By": dict(OWNER),
            },
            "message": message,
            "status": "success",
        }
        if mode == "upsert":
            result["action"] = action
            if duplicate_field:
                result["duplicate_field"] = duplicate_field
        return result

    def _validate(self, module: ModuleDef, index: int, fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """Cleaned writable fields, or one ``data[]`` error entry (it then carries ``status``)."""
        cleaned: dict[str, Any] = {}
        for name, value in fields.items():
            definition = module.field(name)
            if definition is None or definition.read_only:
                continue  # Zoho ignores unknown and system fields in a write
            path = f"$.data[{index}].{name}"
            problem = _type_problem(definition.data_type, definition.json_type, value)
            if (
                problem is None
                and definition.restricted
                and value not in (None, "")
                and value not in definition.picklist
            ):
                problem = "picklist"
            if problem is None and definition.data_type == "ownerlookup" and value not in (None, ""):
                owner = self.users.assignable(value)
                problem = None if owner else "jsonobject"
                value = {"id": owner}
            if problem is None and definition.data_type == "lookup" and value not in (None, ""):
                target = str(value["id"] if isinstance(value, dict) else value)
                if self.table(definition.lookup_module or "").get(target) is None:
                    problem = "jsonobject"
                value = {"id": target}
            if problem is not None:
                return record_error(
                    "INVALID_DATA", "invalid data", api_name=name, json_path=path, expected_data_type=problem
                )
            cleaned[name] = value
        if creating:
            for name in module.mandatory:
                if cleaned.get(name) in (None, ""):
                    return record_error(
                        "MANDATORY_NOT_FOUND",
                        "required field not found",
                        api_name=name,
                        json_path=f"$.data[{index}].{name}",
                    )
        rejected = self.rejects(cleaned)
        if rejected is not None:
            return record_error(
                "INVALID_DATA",
                "invalid data",
                api_name=rejected,
                json_path=f"$.data[{index}].{rejected}",
                expected_data_type="text",
            )
        return cleaned

    def _conflict(
        self, module: ModuleDef, table: RecordTable, fields: dict[str, Any], own_id: str | None
    ) -> tuple[str, str] | None:
        for name in module.unique:
            value = fields.get(name)
            if value in (None, ""):
                continue
            owner = table.find(name, value)
            if owner is not None and owner.id != own_id:
                return name, owner.id
        return None

    def _delete(self, module: ModuleDef, ids: list[str]) -> Response:
        if not ids:
            return zoho_error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param="ids")
        if len(ids) > WRITE_LIMIT:
            return zoho_error(400, "LIMIT_EXCEEDED", "Record count exceeded", limit=WRITE_LIMIT)
        table = self.table(module.api_name)
        results = []
        for record_id in ids:
            if table.get(record_id) is None:
                results.append(record_error("INVALID_DATA", "the id given seems to be invalid", id=record_id))
                continue
            table.delete(record_id, at=self.now())
            self.stats.records_written += 1
            results.append(
                {
                    "code": "SUCCESS",
                    "details": {"id": record_id},
                    "message": "record deleted",
                    "status": "success",
                }
            )
        return JSONResponse({"data": results})

    async def _merge(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return zoho_error(400, "INVALID_DATA", "invalid data", reason="body is not JSON")
        response, written = merge_records(
            self.module(request), self.tables, self.contact_roles, request.path_params["record_id"], body,
            now=self.now(), error=zoho_error,
        )  # fmt: skip
        self.stats.records_written += written
        return response

    # -- contact roles ---------------------------------------------------------------------------------
    async def _contact_roles(self, request: Request) -> Response:
        deal_id = request.path_params["deal_id"]
        if self.table("Deals").get(deal_id) is None:
            return zoho_error(400, "INVALID_DATA", "the id given seems to be invalid", id=deal_id)
        contacts = self.table("Contacts")
        data = [
            {
                **self.render(CONTACTS_MODULE, row, ["Email", "Full_Name"]),
                "Contact_Role": {"name": role, "id": _role_id(role)},
            }
            for contact_id, role in self.contact_roles.get(deal_id, {}).items()
            if (row := contacts.get(contact_id)) is not None
        ]
        if not data:
            return Response(status_code=204)
        return JSONResponse(
            {
                "data": data,
                "info": {"per_page": PAGE_LIMIT, "count": len(data), "page": 1, "more_records": False},
            }
        )

    async def _set_contact_role(self, request: Request) -> Response:
        deal_id, contact_id = request.path_params["deal_id"], request.path_params["contact_id"]
        if self.table("Deals").get(deal_id) is None or self.table("Contacts").get(contact_id) is None:
            return zoho_error(400, "INVALID_DATA", "the id given seems to be invalid", id=deal_id)
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        role = body["data"][0].get("Contact_Role") or {}
        name = role.get("name") if isinstance(role, dict) else str(role)
        self.contact_roles.setdefault(deal_id, {})[contact_id] = str(name or "Decision Maker")
        return JSONResponse(
            {
                "data": [
                    {
                        "code": "SUCCESS",
                        "details": {"id": contact_id},
                        "message": "record updated",
                        "status": "success",
                    }
                ]
            }
        )


CONTACTS_MODULE = MODULES["Contacts"]


def _guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Turn a :class:`Refusal` raised inside a handler into its response."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except Refusal as refusal:
            return refusal.response
        return response

    return endpoint


def _role_id(name: str) -> str:
    return f"4876876000000{sum(map(ord, name)):06d}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")


def _sort_key(value: Any) -> tuple[int, Any]:
    value = comparable(value)
    return (0, "") if value is None else (1, value)


def _type_problem(data_type: str, json_type: str, value: Any) -> str | None:
    """The expected data type a value fails to match, if any."""
    if value is None:
        return None
    if json_type == "double" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "double"
    if json_type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return "integer"
    if json_type == "string" and not isinstance(value, str):
        return "string"
    if data_type == "email" and value and not EMAIL.match(value):
        return "email"
    if data_type == "date" and value and not DATE.match(value):
        return "date"
    if data_type == "lookup" and not isinstance(value, dict | str):
        return "jsonobject"
    return None
