"""The HubSpot CRM emulator: the v3 objects/search/batch/properties/pipelines API, v4 associations, OAuth.

Paths, JSON bodies, paging, error bodies and rate-limit answers follow HubSpot's public API and its OpenAPI specs,
so HubSpot's own client libraries work against it with only the base URL changed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from closeloop.model import Cursor, iso_utc, utc
from closeloop.sandbox import Row, SandboxBase, sequential_ids
from closeloop.sandbox.kit import JSONAnswer, Refusal

from . import query
from .answers import (
    HubSpotTable,
    Problem,
    batch,
    error,
    error_body,
    invalid_record,
    record_error,
    refuse,
    validation_details,
    validation_message,
)
from .catalog import (
    ASSOCIATION_TYPES,
    CATALOG,
    DEFAULT_PROPERTIES,
    ENGAGEMENT_TYPE_IDS,
    ENGAGEMENTS,
    MODIFIED_PROPERTY,
    OBJECT_TYPE_IDS,
    SEARCHABLE,
    Prop,
    pipeline,
    property_from,
    stage_date,
    stage_flags,
)
from .forms import Forms
from .labels import Labels, kinds
from .owners import Owners

CONTACT_ID_START, DEAL_ID_START = 1_000_000_001, 2_000_000_001  # one width, so text and number order agree
ID_WIDTH = 10
MAX_BATCH = 100
HISTORY_BATCH = 50
"""Records a batch read may ask property histories of."""
MAX_SEARCH_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
MAX_LIST_LIMIT = 100
OBJECT_ALIASES = {"contacts": "contacts", "contact": "contacts", "0-1": "contacts",
                  "deals": "deals", "deal": "deals", "0-3": "deals",
                  **{name: name for name in ENGAGEMENTS}, **{v: k for k, v in ENGAGEMENT_TYPE_IDS.items()},
                  **{name[:-1]: name for name in ENGAGEMENTS}}  # fmt: skip
ENGAGEMENT_ID_START = 3_000_000_001
COMPUTED = frozenset({"hs_object_id", "createdate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate",
                      "hs_is_closed", "hs_is_closed_won"})  # fmt: skip
Handler = Callable[[Request], Awaitable[Response]]


def _ms(moment: datetime) -> datetime:
    """HubSpot keeps milliseconds; finer stamps would order records in ways no client can see."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    """``iso_utc`` for the stamps rows hold (UTC already): a page formats two per record."""
    if moment.tzinfo is UTC and moment.year >= 1000:
        return moment.isoformat(timespec="milliseconds")[:23] + "Z"
    return iso_utc(moment)


def _lower_email(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("email"), str):
        fields["email"] = fields["email"].strip().lower()
    return fields


def _first_position(table: HubSpotTable, low: int, high: int, past: Callable[[tuple[datetime, str]], bool]) -> int:
    """The first live index position in [low, high) whose key is ``past`` (False up to a point, True from it)."""
    while low < high:
        middle = (low + high) // 2
        if past(table.live_key(middle)):
            high = middle
        else:
            low = middle + 1
    return low


def _id_admitted(f: query.Filter, key: tuple[datetime, str]) -> bool:
    return f.matches(int(key[1]))


def _id_refused(f: query.Filter, key: tuple[datetime, str]) -> bool:
    return not f.matches(int(key[1]))


def _endpoint(handler: Handler) -> Handler:
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Refusal as refusal:
            return refusal.response

    return answer


class HubSpotSandbox(SandboxBase):
    """An emulated HubSpot portal with contacts, deals, their associations and the default deal pipeline."""

    vendor = "hubspot"

    def __init__(self, *, seed: int = 0, clock: Callable[[], datetime] | None = None) -> None:
        self.forms = Forms(self)  # before the kit's set-up, which asks for the routes
        self.owners = Owners(self)
        super().__init__(seed=seed, clock=clock)
        source = self.clock.source
        self.clock.source = lambda: _ms(utc(source()))
        knobs = self.knobs
        knobs.requests_per_window, knobs.window_s, knobs.daily_limit = 190, 10.0, 625_000
        knobs.bucket_limits = {"search": (5, 1.0)}
        knobs.token_ttl_s = 1800  # HubSpot OAuth access tokens live 30 minutes
        self.tables = {
            "contacts": HubSpotTable(
                "contacts", self.clock, sequential_ids(start=CONTACT_ID_START), unique=("email",),
                normalize=_lower_email,
            ),
            "deals": HubSpotTable("deals", self.clock, sequential_ids(start=DEAL_ID_START)),
            **{
                name: HubSpotTable(name, self.clock, sequential_ids(start=ENGAGEMENT_ID_START + n * 100_000_000))
                for n, name in enumerate(ENGAGEMENTS)
            },
        }  # fmt: skip
        self.catalog = {obj: dict(props) for obj, props in CATALOG.items()}
        """This portal's properties: HubSpot's own, then the ones created through the properties API."""
        self.owners.seed()
        self.links: dict[tuple[str, str], dict[str, set[str]]] = {pair: {} for pair in ASSOCIATION_TYPES}
        self.labels = Labels()
        self.private_app_token = f"pat-na1-sandbox-{seed}"
        self.tokens.static.add(self.private_app_token)
        self.client_id = "closeloop-sandbox-client"
        self.client_secret = "closeloop-sandbox-secret"
        self.refresh_token = f"na1-sandbox-refresh-{seed}"
        self._shuffle = random.Random(seed ^ 0x5EED)
        self._render_plans: dict[tuple[str, tuple[str, ...]], list[tuple[str, bool]]] = {}

    # -- kit hooks -------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """HubSpot's paths, most specific first."""
        objects, v4 = "/crm/v3/objects/{object_type}", "/crm/v4"
        submit = "/submissions/v3/integration"
        table: list[tuple[str, Handler, list[str]]] = [
            ("/oauth/v1/token", self.token, ["POST"]),
            (objects, self.list_or_create, ["GET", "POST"]),
            (f"{objects}/search", self.search, ["POST"]),
            (f"{objects}/merge", self.merge, ["POST"]),
            (f"{objects}/batch/{{action}}", self.batch, ["POST"]),
            (f"{objects}/{{object_id}}", self.one, ["GET", "PATCH", "DELETE"]),
            ("/crm/v3/pipelines/{object_type}", self.pipelines, ["GET"]),
            ("/crm/v3/pipelines/{object_type}/{pipeline_id}", self.pipeline, ["GET"]),
            ("/crm/v3/properties/{object_type}", self.properties, ["GET", "POST"]),
            ("/crm/v3/properties/{object_type}/{name}", self.property, ["GET"]),
            (f"{v4}/associations/{{from_type}}/{{to_type}}/batch/read", self.associations_read, ["POST"]),
            (f"{v4}/associations/{{from_type}}/{{to_type}}/batch/associate/default",
             self.associations_create, ["POST"]),
            (f"{v4}/objects/{{from_type}}/{{from_id}}/associations/{{to_type}}", self.associations_of, ["GET"]),
            (f"{v4}/objects/{{from_type}}/{{from_id}}/associations/default/{{to_type}}/{{to_id}}",
             self.associate_one, ["PUT"]),
            (f"{v4}/objects/{{from_type}}/{{from_id}}/associations/{{to_type}}/{{to_id}}",
             self.associate_labelled, ["PUT", "DELETE"]),
            ("/marketing/v3/forms/", self.forms.create, ["POST"]),
            ("/marketing/v3/forms", self.forms.create, ["POST"]),
            (f"{submit}/submit/{{portal_id}}/{{form_guid}}", self.forms.submit, ["POST"]),
            (f"{submit}/secure/submit/{{portal_id}}/{{form_guid}}", self.forms.submit, ["POST"]),
            ("/contacts/v1/contact/vids/batch/", self.forms.contacts_batch, ["GET"]),
            ("/crm/v3/owners", self.owners.list, ["GET"]),
            ("/crm/v3/owners/", self.owners.list, ["GET"]),
            ("/crm/v3/owners/{owner_id}", self.owners.one, ["GET"]),
            ("/settings/v3/users", self.owners.create_user, ["POST"]),
            ("/settings/v3/users/", self.owners.create_user, ["POST"]),
            ("/settings/v3/users/{user_id}", self.owners.delete_user, ["DELETE"]),
        ]  # fmt: skip
        return [Route(path, _endpoint(handler), methods=methods) for path, handler, methods in table]

    def is_public(self, request: Request) -> bool:
        """Only the OAuth token endpoint and the public form submission take no bearer token."""
        path = request.url.path
        return path.startswith(("/oauth/", "/submissions/v3/integration/submit/"))

    def credentials(self, directory: Path) -> dict[str, str]:
        """The private-app token of this portal (``--seed 1``: pat-na1-sandbox-1)."""
        return {"base_url": self.base_url, "access_token": self.private_app_token}

    def authenticate(self, request: Request) -> None:
        """Bearer tokens: private-app tokens never expire; OAuth access tokens do."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        state = self.tokens.state(token)
        if state == "expired" and token is not None:
            ago = int((self.clock.now() - self.tokens.issued[token]).total_seconds())
            raise Refusal(
                error(
                    401,
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                    context={"expired": [str(ago)]},
                )
            )
        if state != "ok":
            raise Refusal(
                error(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
            )

    def bucket(self, request: Request) -> str:
        """Search spends its own, slower bucket; OAuth is outside the API limits."""
        if request.url.path.startswith("/oauth/"):
            return "oauth"
        return "search" if request.url.path.endswith("/search") else "default"

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """HubSpot's 429: a RATE_LIMIT body naming the policy that was hit, with the usage headers."""
        policy = "DAILY" if daily else ("SECONDLY" if bucket == "search" else "TEN_SECONDLY_ROLLING")
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "category": "RATE_LIMITS",
            "correlationId": error_body("", "")["correlationId"],
            "policyName": policy,
            "groupName": f"publicapi:private-app:{self.seed}",
        }
        return JSONAnswer(body, status_code=429, headers=self.limit_headers(bucket))

    def not_found(self, request: Request) -> Response:
        """A 404 in HubSpot's error body for a path the API does not route."""
        return error(404, f"Unable to route {request.method} {request.url.path}", "OBJECT_NOT_FOUND")

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """A 405 in HubSpot's error body."""
        return error(405, f"HTTP method {request.method} is not supported by this resource", "VALIDATION_ERROR")

    def server_error(self, status: int) -> Response:
        """A JSON 500 from the API; 502/504 come from the edge as HTML, like HubSpot's."""
        if status == 500:
            return error(500, "internal error", "INTERNAL_ERROR")
        title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
        return HTMLResponse(f"<html><head><title>{title}</title></head><body>{title}</body></html>", status)

    def limit_headers(self, bucket: str) -> dict[str, str]:
        """``X-HubSpot-RateLimit-*`` on API answers; HubSpot's search endpoints send none."""
        if bucket in ("search", "oauth"):
            return {}
        knobs = self.knobs
        return {
            "X-HubSpot-RateLimit-Daily": str(knobs.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, knobs.daily_limit - self.daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(knobs.window_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(knobs.requests_per_window),
            "X-HubSpot-RateLimit-Remaining": str(self.remaining("default")),
        }

    def now(self) -> datetime:
        """The write stamp, kept to HubSpot's millisecond precision."""
        return _ms(super().now())

    # -- rendering -------------------------------------------------------------------------------------
    def value_text(self, obj: str, row: Row, name: str) -> str | None:
        """A property's value as HubSpot returns it (text), computed properties included."""
        if name == "hs_object_id":
            return row.id
        if name in ("createdate", "hs_createdate"):
            return _iso(row.created_at)
        if name == MODIFIED_PROPERTY[obj]:
            return _iso(row.modified_at)
        if name in ("hs_is_closed", "hs_is_closed_won") and obj == "deals":
            closed, won = stage_flags(row.fields.get("dealstage"))
            return str(won if name == "hs_is_closed_won" else closed).lower()
        value = row.fields.get(name)
        return None if value is None else str(value)

    def value_typed(self, obj: str, row: Row, prop: Prop) -> Any:
        """A property's value as search compares it."""
        if prop.name == MODIFIED_PROPERTY[obj]:
            return row.modified_at
        if prop.name in ("createdate", "hs_createdate"):
            return row.created_at
        if prop.name == "hs_object_id":
            return int(row.id)
        return query.typed(prop, self.value_text(obj, row, prop.name))

    def render(
        self,
        obj: str,
        row: Row,
        names: Iterable[str] | None = None,
        *,
        trace: str | None = None,
        new: bool | None = None,
        set_only: bool = False,
    ) -> dict[str, Any]:
        """A SimplePublicObject: the asked properties (or the defaults) plus id and timestamps.

        A read lists an asked-for property without a value as null; a write's answer (``set_only``) lists only
        the properties that have a value, as HubSpot's create and update answers do.
        """
        created, updated = _iso(row.created_at), _iso(row.modified_at)
        modified, fields = MODIFIED_PROPERTY[obj], row.fields
        properties: dict[str, Any] = {}
        for name, computed in self._rendered(obj, names):
            if not computed:
                value = fields.get(name)
                properties[name] = None if value is None else str(value)
            elif name == "createdate" or name == modified:
                properties[name] = created if name == "createdate" else updated
            else:
                properties[name] = self.value_text(obj, row, name)
        body: dict[str, Any] = {
            "id": row.id,
            "properties": properties,
            "createdAt": created,
            "updatedAt": updated,
            "archived": row.deleted,
        }
        if set_only:
            body["properties"] = {k: v for k, v in properties.items() if v is not None}
        if row.deleted:
            body["archivedAt"] = updated
        if trace is not None:
            body["objectWriteTraceId"] = trace
        if new is not None:
            body["new"] = new
        return body

    def with_history(self, obj: str, row: Row, rendered: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
        """``rendered`` with ``propertiesWithHistory``: each asked stored property's values, newest first."""
        if not names:
            return rendered
        catalog, table = CATALOG[obj], self.table(obj)
        rendered["propertiesWithHistory"] = {
            name: [
                {"value": str(value), "timestamp": _iso(at), "sourceType": "API", "sourceId": "sandbox"}
                for value, at in table.field_history(row.id, name)
            ]
            for name in names
            if name in catalog and name not in COMPUTED
        }
        return rendered

    def _rendered(self, obj: str, names: Iterable[str] | None) -> list[tuple[str, bool]]:
        """The properties a render lists, in order, each with whether its value is computed (worked out once
        per list of names: a page renders hundreds of records with the same list)."""
        asked = tuple(names) if names else ()
        plan = self._render_plans.get((obj, asked))
        if plan is None:
            wanted = list(asked) if asked else list(DEFAULT_PROPERTIES[obj])
            wanted += [n for n in ("hs_object_id", "createdate", MODIFIED_PROPERTY[obj]) if n not in wanted]
            catalog = self.catalog[obj]
            plan = [(n, n in COMPUTED) for n in dict.fromkeys(wanted) if n in catalog]
            if len(self._render_plans) >= 256:
                self._render_plans.clear()
            self._render_plans[(obj, asked)] = plan
        return plan

    # -- request helpers -------------------------------------------------------------------------------
    def _object(self, request: Request, key: str = "object_type") -> str:
        name = OBJECT_ALIASES.get(request.path_params[key].lower())
        if name is None:
            raise refuse(400, f"Unable to infer object type from: {request.path_params[key]}")
        return name

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = orjson.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise refuse(400, f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(body, dict):
            raise refuse(400, "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: dict[str, Any], limit: int = MAX_BATCH) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise refuse(400, "Invalid input JSON: 'inputs' must be a list of objects")
        if len(inputs) > limit:
            raise refuse(400, f"Batch input has {len(inputs)} inputs; the limit is {limit}")
        return inputs

    @staticmethod
    def _names(request: Request, param: str = "properties") -> list[str]:
        return [n for value in request.query_params.getlist(param) for n in value.split(",") if n]

    def _check(self, obj: str, props: Any) -> tuple[dict[str, str], list[Problem]]:
        """Validate written properties: unknown, read-only, badly typed, forced rejections."""
        if not isinstance(props, dict):
            return {}, [("properties", "INVALID_INPUT", "properties must be an object")]
        catalog, clean, problems = self.catalog[obj], {}, []
        for name, raw in props.items():
            prop = catalog.get(name)
            if prop is None:
                problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif prop.read_only:
                problems.append((name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set."))
            elif raw is None or raw == "":
                clean[name] = ""
            else:
                try:
                    clean[name] = query.normalize_value(prop, raw)
                except ValueError as exc:
                    code = "INVALID_OPTION" if prop.type == "enumeration" else f"INVALID_{prop.type.upper()}"
                    problems.append((name, code, f"{raw!r} is not valid for {name}: {exc}"))
        if obj == "contacts" and clean.get("email") and "@" not in clean["email"]:
            problems.append(("email", "INVALID_EMAIL", f"Email address {clean['email']} is invalid"))
        rejected = self.rejects(props)
        if rejected and not problems:
            problems.append((rejected, "INVALID_VALUE", f"{props.get(rejected)!r} is not a valid value for {rejected}"))
        return clean, problems

    def _store(self, obj: str, clean: dict[str, str], row: Row | None = None) -> tuple[Row | None, str | None]:
        """Insert or update; a unique-value collision comes back as a message instead."""
        table = self.table(obj)
        values = {k: v for k, v in clean.items() if v != ""}
        entered = values.get("lifecyclestage") if obj == "contacts" else None
        if entered and not (row and row.fields.get(stage_date(entered))):
            values[stage_date(entered)] = _iso(self.now())  # HubSpot stamps the day a contact enters a stage
        if obj == "tasks" and "hs_task_status" in values:  # completed at the moment it first was; reopened: blank
            done = values["hs_task_status"] == "COMPLETED"
            before = row.fields.get("hs_task_completion_date") if row else None
            values["hs_task_completion_date"] = (before or _iso(self.now())) if done else ""
        clash = table.conflicts(values, except_id=row.id if row else None)
        if clash:
            owner = table.find(clash, values[clash])
            label = "Contact" if obj == "contacts" else "Deal"
            return None, f"{label} already exists. Existing ID: {owner.id if owner else ''}"
        if row is None:
            row = table.insert(values, at=self.now())
        else:
            table.update(row.id, values, at=self.now())
            for name in [k for k, v in clean.items() if v == ""]:
                row.fields.pop(name, None)  # writing "" clears a property
        self.stats.records_written += 1
        return row, None

    def _find(self, obj: str, value: Any, id_property: str | None) -> Row | None:
        table = self.table(obj)
        if id_property in (None, "", "hs_object_id"):
            return table.get(str(value))
        return table.find(str(id_property), value)

    def _unique_property(self, obj: str, id_property: str | None) -> None:
        if id_property in (None, "hs_object_id") or (obj == "contacts" and id_property == "email"):
            return
        prop = self.catalog[obj].get(str(id_property))
        if prop is None or not prop.unique:
            raise refuse(400, f"{id_property} is not a unique identifier property of {obj}")

    # -- OAuth -----------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        """``POST /oauth/v1/token``: a refresh-token grant, form encoded."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONAnswer({"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONAnswer({"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"}, 400)
        if form.get("refresh_token") != self.refresh_token:
            return JSONAnswer({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}, 400)
        ttl = self.knobs.token_ttl_s
        return JSONAnswer(
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": self.tokens.issue(ttl),
                "expires_in": ttl,
            }
        )

    # -- objects ---------------------------------------------------------------------------------------
    async def list_or_create(self, request: Request) -> Response:
        """``GET`` pages records by id (``archived=true`` lists archived ones); ``POST`` creates one."""
        obj = self._object(request)
        if request.method == "POST":
            return await self._create_one(obj, request)
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
            after = int(params.get("after", "0") or "0")
        except ValueError:
            raise refuse(400, "limit and after must be integers") from None
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise refuse(400, f"limit must be between 1 and {MAX_LIST_LIMIT}")
        archived = params.get("archived", "false").lower() == "true"
        table = self.table(obj)
        rows = [r for r in (table.deleted() if archived else table.live()) if int(r.id) >= after]
        rows.sort(key=lambda r: int(r.id))
        names = self._names(request)
        body: dict[str, Any] = {"results": [self.render(obj, r, names) for r in rows[:limit]]}
        if len(rows) > limit:
            nxt = rows[limit].id
            link = f"{self.base_url}/crm/v3/objects/{obj}?after={nxt}&limit={limit}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONAnswer(body)

    async def _create_one(self, obj: str, request: Request) -> Response:
        body = await self._json(request)
        clean, problems = self._check(obj, body.get("properties", {}))
        if problems:
            return error(400, validation_message(problems), "VALIDATION_ERROR", errors=validation_details(problems))
        row, clash = self._store(obj, clean)
        if row is None:
            return error(409, str(clash), "CONFLICT")
        for association in body.get("associations") or []:
            to_id = str(association.get("to", {}).get("id", ""))
            other = "deals" if obj == "contacts" else "contacts"
            if self.table(other).get(to_id):
                self._link(obj, row.id, other, to_id)
        return JSONAnswer(self.render(obj, row, [*DEFAULT_PROPERTIES[obj], *clean], set_only=True), status_code=201)

    async def one(self, request: Request) -> Response:
        """``GET``/``PATCH``/``DELETE`` one record by id or by a unique property (``idProperty``)."""
        obj = self._object(request)
        params = request.query_params
        id_property = params.get("idProperty")
        self._unique_property(obj, id_property)
        key = request.path_params["object_id"]
        if request.method == "DELETE":
            row = self._find(obj, key, id_property)
            if row is not None:
                self.table(obj).delete(row.id, at=self.now())
            return Response(status_code=204)
        archived = params.get("archived", "false").lower() == "true"
        if archived:
            row = self.table(obj).get(key, include_deleted=True)
            row = row if row is not None and row.deleted else None
        else:
            row = self._find(obj, key, id_property)
        if row is None:
            return error(404, "resource not found", "OBJECT_NOT_FOUND")
        if request.method == "GET":
            rendered = self.render(obj, row, self._names(request))
            rendered = self.with_history(obj, row, rendered, self._names(request, "propertiesWithHistory"))
            for other in self._names(request, "associations"):
                other_type = OBJECT_ALIASES.get(other)
                if other_type and (obj, other_type) in self.links:
                    ids = self._linked(obj, row.id, other_type)
                    kind = f"{obj[:-1]}_to_{other_type[:-1]}"
                    results = [{"id": i, "type": kind} for i in ids]
                    rendered.setdefault("associations", {})[other_type] = {"results": results}
            return JSONAnswer(rendered)
        body = await self._json(request)
        clean, problems = self._check(obj, body.get("properties", {}))
        if problems:
            return error(400, validation_message(problems), "VALIDATION_ERROR", errors=validation_details(problems))
        stored, clash = self._store(obj, clean, row)
        if stored is None:
            return error(409, str(clash), "CONFLICT")
        return JSONAnswer(self.render(obj, stored, [*DEFAULT_PROPERTIES[obj], *clean], set_only=True))

    async def merge(self, request: Request) -> Response:
        """``POST .../merge``: the loser is archived; the winner lists it in ``hs_merged_object_ids``."""
        obj = self._object(request)
        body = await self._json(request)
        winner_id, loser_id = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        if not winner_id or not loser_id or winner_id == loser_id:
            return error(400, "primaryObjectId and objectIdToMerge must name two different records", "VALIDATION_ERROR")
        table = self.table(obj)
        if table.get(winner_id) is None or table.get(loser_id) is None:
            return error(404, "Object not found. objectId are usually numeric.", "OBJECT_NOT_FOUND")
        winner = table.merge(loser_id, winner_id, at=self.now())
        if obj == "contacts":
            self.forms.absorb(loser_id, winner_id)
        for other in ("contacts", "deals"):
            if (obj, other) in self.links:
                for to_id in self._linked(obj, loser_id, other):
                    self._link(obj, winner_id, other, to_id)
        return JSONAnswer(self.render(obj, winner))

    # -- search ----------------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        """``POST .../search``: filterGroups, one sort, limit up to 200, offset paging capped at 10,000."""
        obj = self._object(request)
        body = await self._json(request)
        catalog = self.catalog[obj]
        try:
            groups = query.compile_groups(body.get("filterGroups") or [], catalog)
            sorts = query.parse_sorts(body.get("sorts"), catalog)
            limit = int(body.get("limit") or 10)
            offset = int(body.get("after") or 0)
        except query.QueryError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        except (TypeError, ValueError):
            return error(400, "limit and after must be integers", "VALIDATION_ERROR")
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            return error(400, f"limit must be between 1 and {MAX_SEARCH_LIMIT}", "VALIDATION_ERROR")
        if offset >= SEARCH_RESULT_CAP:
            # HubSpot serves at most 10,000 results of one query; paging past them is a 400.
            return error(
                400,
                f"There was a problem with the request. Search results are limited to {SEARCH_RESULT_CAP} "
                f"(after={offset}, limit={limit}); narrow the query with filters.",
                "VALIDATION_ERROR",
            )
        total, page = self._search(obj, groups, sorts, str(body.get("query") or ""), offset, limit)
        names = body.get("properties") or None
        result: dict[str, Any] = {"total": total, "results": [self.render(obj, r, names) for r in page]}
        if offset + limit < total:
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return JSONAnswer(result)

    def _search(
        self,
        obj: str,
        groups: list[list[query.Filter]],
        sorts: list[tuple[Prop, bool]],
        text: str,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Row]]:
        """(total, the page's rows) of a search: every match, sorted, sliced at ``offset`` (capped at 10,000)."""
        stop = min(offset + limit, SEARCH_RESULT_CAP)
        span = self._index_span(obj, groups, sorts, text)
        if span is not None:
            table, low, high, rest = span
            if not rest:
                # Every filter is the span itself: count and slice the index, read only the page's rows.
                return high - low, list(table.live_rows(low + offset, min(low + stop, high)))
            excluded = _excluded_ids(rest)
            if excluded is not None:
                # The span less some ids (a change stream skipping the records it holds): count what the span
                # loses, and read only up to the page's end.
                lost = sum(1 for i in excluded if (row := table.get(i)) is not None and _within(table, low, high, row))
                kept = (row for row in table.live_rows(low, high) if row.id not in excluded)
                return high - low - lost, list(islice(kept, offset, stop))
            # Other filters too: scan the span, already in the order asked for.
            rows = [row for row in table.live_rows(low, high) if query.matches([rest], self._typed_values(obj, row))]
            return len(rows), rows[offset:stop]
        rows = self._matching(obj, groups, text)
        if sorts and sorts[0][0].name in ("hs_object_id", MODIFIED_PROPERTY[obj]):
            # Rows come in id order; these two sort keys are never blank, so a plain key sort will do.
            name, descending = sorts[0][0].name, sorts[0][1]
            rows.sort(
                key=(lambda r: r.modified_at) if name != "hs_object_id" else (lambda r: int(r.id)), reverse=descending
            )
        else:
            query.sort_rows(rows, sorts, lambda row, prop: self.value_typed(obj, row, prop))
        return len(rows), rows[offset:stop]

    def _index_span(
        self, obj: str, groups: list[list[query.Filter]], sorts: list[tuple[Prop, bool]], text: str
    ) -> tuple[HubSpotTable, int, int, list[query.Filter]] | None:
        """The live (modified, id) index positions [low, high) holding a change-stream query's matches in its
        order, and the filters the span does not settle; None when the index does not serve the query.

        It serves one filter group sorted ascending by the modified time (index order, as ids have one width), or
        by id when the group pins the modified time to one instant (index order within an instant). Bounds on the
        modified time narrow the span by bisection; within one instant, bounds on ``hs_object_id`` do too.
        """
        table = self.table(obj)
        modified = MODIFIED_PROPERTY[obj]
        if text or len(groups) > 1 or not sorts or sorts[0][1] or not isinstance(table, HubSpotTable):
            return None
        if sorts[0][0].name not in (modified, "hs_object_id") or not table.ids_in_number_order():
            return None
        low, high = 0, table.live_count()
        rest: list[query.Filter] = []
        by_id: list[query.Filter] = []
        for f in groups[0] if groups else []:
            if f.prop.name == modified and query.is_range(f, datetime):
                first, last = f.bounds()
                if first is not None:
                    low = max(low, table.live_position(first, after=f.operator == "GT"))
                if last is not None:
                    high = min(high, table.live_position(last, after=f.operator != "LT"))
            elif f.prop.name == "hs_object_id" and query.is_range(f, Decimal):
                by_id.append(f)
            else:
                rest.append(f)
        if low >= high:
            return table, low, low, []
        one_instant = table.live_key(low)[0] == table.live_key(high - 1)[0]
        if sorts[0][0].name == "hs_object_id" and not one_instant:
            return None
        if not one_instant:
            return table, low, high, rest + by_id
        for f in by_id:
            # Within one instant the index runs by id, so each bound on the id is a cut found by bisection.
            first, last = f.bounds()
            if first is not None:
                above = f if f.operator in ("GT", "GTE") else query.Filter(f.prop, "GTE", first)
                low = _first_position(table, low, high, partial(_id_admitted, above))
            if last is not None:
                below = f if f.operator in ("LT", "LTE") else query.Filter(f.prop, "LTE", last)
                high = _first_position(table, low, high, partial(_id_refused, below))
        return table, low, max(low, high), rest

    def _typed_values(self, obj: str, row: Row) -> Callable[[Prop], Any]:
        return lambda prop: self.value_typed(obj, row, prop)

    def _matching(self, obj: str, groups: list[list[query.Filter]], text: str) -> list[Row]:
        table = self.table(obj)
        low, high = query.time_range(groups, MODIFIED_PROPERTY[obj])
        # The (modified_at, id) index narrows incremental queries to the rows they can match.
        start = Cursor(low - timedelta(milliseconds=1), "~") if isinstance(low, datetime) else None
        id_low, _ = query.time_range(groups, "hs_object_id")
        if isinstance(low, datetime) and low == high and id_low is not None:
            # One instant paged by id (a mass update): start right below the lowest id asked for. Ids have
            # one width here, so the index's text order is numeric order.
            below = str(int(id_low) - 1)
            if len(below) == ID_WIDTH:
                start = Cursor(low, below)
        found: list[Row] = []
        for row in table.changed_after(start):
            if isinstance(high, datetime) and row.modified_at > high:
                break
            if query.matches(groups, self._typed_values(obj, row)) and (not text or self._mentions(obj, row, text)):
                found.append(row)
        found.sort(key=lambda r: int(r.id))
        return found

    def _mentions(self, obj: str, row: Row, text: str) -> bool:
        needle = text.lower()
        return any(needle in str(row.fields.get(name, "")).lower() for name in SEARCHABLE[obj])

    # -- batch -----------------------------------------------------------------------------------------
    async def batch(self, request: Request) -> Response:
        """``POST .../batch/{read,create,update,upsert,archive}`` with up to 100 inputs."""
        obj = self._object(request)
        action = request.path_params["action"]
        handlers = {
            "read": self._batch_read,
            "create": self._batch_create,
            "update": self._batch_update,
            "upsert": self._batch_upsert,
            "archive": self._batch_archive,
        }
        if action not in handlers:
            return error(404, f"Unknown batch action {action}", "OBJECT_NOT_FOUND")
        body = await self._json(request)
        inputs = self._inputs(body)
        return await handlers[action](obj, body, inputs, request)

    def _shuffled(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # HubSpot does not promise results in input order; clients must map them by objectWriteTraceId.
        self._shuffle.shuffle(results)
        return results

    async def _batch_read(
        self, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]], request: Request
    ) -> Response:
        id_property = body.get("idProperty")
        self._unique_property(obj, id_property)
        archived = request.query_params.get("archived", "false").lower() == "true"
        names = body.get("properties") or None
        with_history = [str(n) for n in body.get("propertiesWithHistory") or []]
        if with_history and len(inputs) > HISTORY_BATCH:
            raise refuse(400, f"Batch input has {len(inputs)} inputs; with propertiesWithHistory the limit is 50")
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            row = self.table(obj).get(key, include_deleted=True) if archived else self._find(obj, key, id_property)
            if row is None or row.deleted != archived:
                missing.append(key)
            else:
                results.append(self.with_history(obj, row, self.render(obj, row, names), with_history))
        errors = []
        if missing:
            label = "CONTACT" if obj == "contacts" else "DEAL"
            message = f"Could not get some {label} objects, they may be deleted or not exist. Check that ids are valid."
            errors.append(record_error("OBJECT_NOT_FOUND", message, ids=missing))
        return batch(results, errors, self.clock.now())

    async def _batch_create(
        self, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]], request: Request
    ) -> Response:
        results, errors = [], []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            clean, problems = self._check(obj, item.get("properties", {}))
            if problems:
                errors.append(invalid_record(problems, trace, None))
                continue
            row, clash = self._store(obj, clean)
            if row is None:
                errors.append(record_error("CONFLICT", str(clash), trace=trace))
                continue
            results.append(self.render(obj, row, [*DEFAULT_PROPERTIES[obj], *clean], trace=trace, set_only=True))
        return batch(self._shuffled(results), errors, self.clock.now(), ok_status=201)

    async def _batch_update(
        self, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]], request: Request
    ) -> Response:
        self._refuse_duplicates(inputs)
        results, errors = [], []
        for item in inputs:
            trace, key, id_property = item.get("objectWriteTraceId"), str(item.get("id", "")), item.get("idProperty")
            self._unique_property(obj, id_property)
            row = self._find(obj, key, id_property)
            if row is None:
                errors.append(record_error("OBJECT_NOT_FOUND", "Object not found.", trace=trace, ids=[key]))
                continue
            clean, problems = self._check(obj, item.get("properties", {}))
            if problems:
                errors.append(invalid_record(problems, trace, row.id))
                continue
            stored, clash = self._store(obj, clean, row)
            if stored is None:
                errors.append(record_error("CONFLICT", str(clash), trace=trace, ids=[row.id]))
                continue
            results.append(self.render(obj, stored, [*DEFAULT_PROPERTIES[obj], *clean], trace=trace, set_only=True))
        return batch(self._shuffled(results), errors, self.clock.now())

    async def _batch_upsert(
        self, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]], request: Request
    ) -> Response:
        self._refuse_duplicates(inputs)
        results, errors = [], []
        for item in inputs:
            trace, key, id_property = item.get("objectWriteTraceId"), item.get("id"), item.get("idProperty")
            self._unique_property(obj, id_property)
            row = self._find(obj, key, id_property)
            props = dict(item.get("properties") or {})
            if row is None and id_property not in (None, "hs_object_id"):
                props[str(id_property)] = key  # a created record carries the value it was upserted by
            clean, problems = self._check(obj, props)
            if problems:
                errors.append(invalid_record(problems, trace, row.id if row else None))
                continue
            if row is None and id_property in (None, "hs_object_id"):
                errors.append(record_error("OBJECT_NOT_FOUND", "Object not found.", trace=trace, ids=[str(key)]))
                continue
            stored, clash = self._store(obj, clean, row)
            if stored is None:
                errors.append(record_error("CONFLICT", str(clash), trace=trace))
                continue
            names = [*DEFAULT_PROPERTIES[obj], *clean]
            results.append(self.render(obj, stored, names, trace=trace, new=row is None, set_only=True))
        return batch(self._shuffled(results), errors, self.clock.now())

    async def _batch_archive(
        self, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]], request: Request
    ) -> Response:
        table = self.table(obj)
        for item in inputs:
            if table.get(str(item.get("id", ""))) is not None:
                table.delete(str(item["id"]), at=self.now())
        return Response(status_code=204)

    @staticmethod
    def _refuse_duplicates(inputs: Sequence[dict[str, Any]]) -> None:
        keys = [str(item.get("id", "")).lower() for item in inputs]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise refuse(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")

    # -- metadata --------------------------------------------------------------------------------------
    async def pipelines(self, request: Request) -> Response:
        """``GET /crm/v3/pipelines/{objectType}``: the default deal pipeline."""
        obj = self._object(request)
        return JSONAnswer({"results": [pipeline()] if obj == "deals" else []})

    async def pipeline(self, request: Request) -> Response:
        """``GET /crm/v3/pipelines/deals/{pipelineId}``."""
        if self._object(request) != "deals" or request.path_params["pipeline_id"] != "default":
            return error(404, "Unable to find pipeline", "OBJECT_NOT_FOUND")
        return JSONAnswer(pipeline())

    async def properties(self, request: Request) -> Response:
        """``GET /crm/v3/properties/{objectType}``: every property with its modification metadata;
        ``POST``: create one."""
        obj = self._object(request)
        if request.method == "POST":
            return self._create_property(obj, await self._json(request))
        if request.query_params.get("archived", "false").lower() == "true":
            return JSONAnswer({"results": []})
        return JSONAnswer({"results": [p.render(i) for i, p in enumerate(self.catalog[obj].values())]})

    def _create_property(self, obj: str, body: dict[str, Any]) -> Response:
        """A new property in this portal; its name must be new and its type one HubSpot knows."""
        prop = property_from(body)
        if isinstance(prop, str):
            return error(400, prop, "VALIDATION_ERROR")
        if prop.name in self.catalog[obj]:
            return error(409, f"Property named '{prop.name}' already exists.", "OBJECT_ALREADY_EXISTS")
        self.catalog[obj][prop.name] = prop
        if prop.unique:
            self.table(obj).add_unique(prop.name)
        self._render_plans.clear()
        return JSONAnswer(prop.render(len(self.catalog[obj]) - 1), status_code=201)

    async def property(self, request: Request) -> Response:
        """``GET /crm/v3/properties/{objectType}/{propertyName}``."""
        obj = self._object(request)
        name = request.path_params["name"]
        if name not in self.catalog[obj]:
            return error(404, f"Unable to find property {name}", "OBJECT_NOT_FOUND")
        return JSONAnswer(self.catalog[obj][name].render(list(self.catalog[obj]).index(name)))

    # -- v4 associations -------------------------------------------------------------------------------
    def _pair(self, request: Request) -> tuple[str, str]:
        pair = (self._object(request, "from_type"), self._object(request, "to_type"))
        if pair not in ASSOCIATION_TYPES:
            raise refuse(400, f"No association between {pair[0]} and {pair[1]}")
        return pair

    def _linked(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        return sorted(self.links[(from_type, to_type)].get(from_id, ()), key=int)

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.links[(from_type, to_type)].setdefault(from_id, set()).add(to_id)
        self.links[(to_type, from_type)].setdefault(to_id, set()).add(from_id)

    @staticmethod
    def _spec(from_type: str, to_type: str) -> dict[str, Any]:
        return {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOCIATION_TYPES[(from_type, to_type)]}

    def _unlink(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.links[(from_type, to_type)].get(from_id, set()).discard(to_id)
        self.links[(to_type, from_type)].get(to_id, set()).discard(from_id)
        self.labels.drop(from_type, from_id, to_type, to_id)

    def _to_entry(self, from_type: str, from_id: str, to_type: str, to_id: str) -> dict[str, Any]:
        types = self.labels.association_types(from_type, from_id, to_type, to_id)
        return {"toObjectId": to_id, "associationTypes": types}

    async def associations_read(self, request: Request) -> Response:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``."""
        from_type, to_type = self._pair(request)
        inputs = self._inputs(await self._json(request), limit=1000)
        results, errors = [], []
        for item in inputs:
            from_id = str(item.get("id", ""))
            linked = self._linked(from_type, from_id, to_type)
            if not linked:
                errors.append(
                    record_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {from_type[:-1]} {from_id}.",
                        fromObjectId=[from_id],
                    )
                    | {"subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND"}
                )
                continue
            to = [self._to_entry(from_type, from_id, to_type, to_id) for to_id in linked]
            results.append({"from": {"id": from_id}, "to": to})
        return batch(results, errors, self.clock.now())

    async def associations_create(self, request: Request) -> Response:
        """``POST /crm/v4/associations/{from}/{to}/batch/associate/default``: both directions are linked."""
        from_type, to_type = self._pair(request)
        inputs = self._inputs(await self._json(request), limit=2000)
        results, errors = [], []
        for item in inputs:
            from_id, to_id = str(item.get("from", {}).get("id", "")), str(item.get("to", {}).get("id", ""))
            missing = [i for t, i in ((from_type, from_id), (to_type, to_id)) if self.table(t).get(i) is None]
            if missing:
                errors.append(record_error("OBJECT_NOT_FOUND", f"Object not found: {missing}", ids=missing))
                continue
            self._link(from_type, from_id, to_type, to_id)
            results.append(
                {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": self._spec(from_type, to_type)}
            )
            results.append(
                {"from": {"id": to_id}, "to": {"id": from_id}, "associationSpec": self._spec(to_type, from_type)}
            )
        return batch(results, errors, self.clock.now())

    async def associations_of(self, request: Request) -> Response:
        """``GET /crm/v4/objects/{from}/{id}/associations/{to}``."""
        from_type, to_type = self._pair(request)
        from_id = request.path_params["from_id"]
        results = [self._to_entry(from_type, from_id, to_type, i) for i in self._linked(from_type, from_id, to_type)]
        return JSONAnswer({"results": results})

    async def associate_one(self, request: Request) -> Response:
        """``PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}``."""
        from_type, to_type = self._pair(request)
        from_id, to_id = request.path_params["from_id"], request.path_params["to_id"]
        if self.table(from_type).get(from_id) is None or self.table(to_type).get(to_id) is None:
            return error(404, "Object not found", "OBJECT_NOT_FOUND")
        self._link(from_type, from_id, to_type, to_id)
        result = {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": self._spec(from_type, to_type)}
        return batch([result], [], self.clock.now())

    async def associate_labelled(self, request: Request) -> Response:
        """Labelled create (PUT) and archive (DELETE) of ``.../objects/{from}/{id}/associations/{to}/{toId}``."""
        from_type, to_type = self._pair(request)
        from_id, to_id = request.path_params["from_id"], request.path_params["to_id"]
        if request.method == "DELETE":
            self._unlink(from_type, from_id, to_type, to_id)
            return Response(status_code=204)
        raw = await request.body()
        try:
            wanted = kinds((from_type, to_type), orjson.loads(raw or b"null"))
        except (ValueError, AttributeError) as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        if self.table(from_type).get(from_id) is None or self.table(to_type).get(to_id) is None:
            return error(404, "Object not found", "OBJECT_NOT_FOUND")
        self._link(from_type, from_id, to_type, to_id)
        self.labels.add(from_type, from_id, to_type, to_id, wanted)
        body = {
            "fromObjectTypeId": OBJECT_TYPE_IDS[from_type], "fromObjectId": from_id,
            "toObjectTypeId": OBJECT_TYPE_IDS[to_type], "toObjectId": to_id,
            "labels": self.labels.names(from_type, from_id, to_type, to_id),
        }  # fmt: skip
        return JSONAnswer(body, status_code=201)

    def link(self, deal_id: str, contact_id: str) -> None:
        """Associate a deal with a contact (seeding and tests)."""
        self._link("deals", deal_id, "contacts", contact_id)


def _excluded_ids(rest: Sequence[query.Filter]) -> set[str] | None:
    """The ids a query's leftover filters exclude, when they are nothing but ``hs_object_id NOT_IN``; else None."""
    if not all(f.operator == "NOT_IN" and f.prop.name == "hs_object_id" for f in rest):
        return None
    return {str(int(v)) if isinstance(v, Decimal) else str(v) for f in rest for v in f.values}


def _within(table: HubSpotTable, low: int, high: int, row: Row) -> bool:
    """Whether a live row sits at an index position in [low, high)."""
    return high > low and table.live_key(low) <= row.key <= table.live_key(high - 1)
