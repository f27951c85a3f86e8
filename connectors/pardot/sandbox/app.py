"""The Account Engagement (Pardot) API v5 emulator: Salesforce OAuth, the business-unit header, prospects,
visitor activities, custom fields and campaigns, with v5's paging tokens, error codes and limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from closeloop.sandbox import Refusal, SandboxBase
from closeloop.sandbox.kit import JSONAnswer, read_json
from closeloop.sandbox.records import RecordTable, Row, sequential_ids

from ..fields import ACTIVITY_FIELDS, CUSTOM_TYPES, STANDARD
from . import tracking
from .prospects import asked_fields, checked_body, custom_name, render
from .query import (
    SEQUENCE_WARNING,
    QueryError,
    Spec,
    decode_token,
    encode_token,
    matches,
    parse_query,
    sort_key,
)

API = "/api/v5/objects"
TOKEN_PATH = "/services/oauth2/token"
BUSINESS_UNIT = "0Uv000000000001AAA"
CLIENT_ID, CLIENT_SECRET = "closeloop-pardot-sandbox", "closeloop-pardot-sandbox-secret"
REFRESH_TOKEN = "closeloop-pardot-refresh-token"
CUSTOM_FIELD_FIELDS = ("id", "name", "fieldId", "apiFieldId", "type", "isRecordMultipleResponses", "isRequired")


def fail(status: int, code: int, message: str, *, warning: str | None = None) -> JSONAnswer:
    """v5's error body ``{code, message}``."""
    headers = {"Pardot-Warning": warning} if warning else None
    return JSONAnswer({"code": code, "message": message}, status_code=status, headers=headers)


def _row_value(row: Row, name: str) -> Any:
    if name == "id":
        return int(row.id)
    if name == "createdAt":
        return row.created_at
    if name == "updatedAt":
        return row.modified_at
    return row.fields.get(name)


PROSPECTS = Spec(
    ints=("id",),
    dates=("createdAt", "updatedAt", "lastActivityAt"),
    exact=("email", "salesforceId"),
    order=("id", "createdAt", "updatedAt", "lastActivityAt"),
    recycles=True,
    value=_row_value,
)
ACTIVITIES = Spec(
    ints=("id", "prospectId", "type"),
    dates=("createdAt", "updatedAt"),
    exact=(),
    order=("id", "createdAt", "updatedAt"),
    recycles=False,
    value=_row_value,
)


class PardotSandbox(SandboxBase):
    """One emulated business unit of Account Engagement, on a Salesforce org's OAuth."""

    vendor = "pardot"

    def __init__(self, *, seed: int = 0, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(seed=seed, clock=clock)
        # v5's limits: 5 requests at once and a daily budget by edition (Advanced: 100,000); no rate window.
        self.knobs.concurrency_limit = 5
        self.knobs.daily_limit = 100_000
        self.knobs.requests_per_window, self.knobs.window_s = 100_000, 1.0
        self.knobs.token_ttl_s = 7200
        self.business_unit_id = BUSINESS_UNIT
        self.client_id, self.client_secret, self.refresh_token = CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
        self.allow_duplicate_emails = True
        """AMPSEA (allow multiple prospects with the same email): a repeated create makes a second prospect."""
        self.sequence_limit = 100_000
        for name, prefix in (("prospects", 1000), ("visitor-activities", 50000), ("campaigns", 3000)):
            self.tables[name] = RecordTable(name, self.clock, sequential_ids("", prefix + 1))
        self.custom_fields: dict[str, dict[str, Any]] = {}
        """fieldId -> the custom field record."""
        self.visitors: dict[int, int | None] = {}
        """Tracked visitor id -> the prospect it converted to (None while anonymous)."""
        self.form_handlers: dict[str, dict[str, Any]] = {}
        """Form handler path -> {id, name, campaignId, success_url}."""

    # -- the SandboxBase hooks ---------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The v5 subset closeloop uses, and Salesforce's token endpoint."""
        return [
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(f"{API}/prospects", self.prospects, methods=["GET", "POST"]),
            Route(f"{API}/prospects/do/upsertLatestByEmail", self.upsert, methods=["POST"]),
            Route(f"{API}/prospects/{{id:int}}", self.prospect, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{API}/visitor-activities", self.activities, methods=["GET"]),
            Route(f"{API}/custom-fields", self.custom_field_collection, methods=["GET", "POST"]),
            Route(f"{API}/campaigns", self.campaigns, methods=["GET"]),
            Route("/analytics", self._page_view, methods=["GET"]),
            Route("/l/{account:int}/{handler}", self._form_handler, methods=["POST"]),
        ]

    def is_public(self, request: Request) -> bool:
        """The token endpoint, and the website's tracking hits and form posts, take no token."""
        path = request.url.path
        return path in (TOKEN_PATH, "/analytics") or path.startswith("/l/")

    def credentials(self, directory: Path) -> dict[str, str]:
        """The business unit and the connected app (client credentials); it serves the token endpoint itself."""
        return {
            "base_url": self.base_url,
            "auth_url": self.base_url,
            "business_unit_id": self.business_unit_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def authenticate(self, request: Request) -> None:
        """A live Salesforce token (184) and this business unit's id in the header (181, 201)."""
        header = request.headers.get("authorization", "")
        state = self.tokens.state(header.removeprefix("Bearer ") if header.startswith("Bearer ") else None)
        if state != "ok":
            raise Refusal(fail(401, 184, "access_token is invalid, unknown, or malformed: Inactive token"))
        unit = request.headers.get("pardot-business-unit-id")
        if unit is None:
            raise Refusal(fail(400, 181, "A required header is missing: Pardot-Business-Unit-Id"))
        if unit != self.business_unit_id:
            raise Refusal(fail(401, 201, "Invalid Business Unit ID or the API host is wrong for it"))

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """122 once the day's budget is spent; 66 for requests beyond the concurrency cap."""
        if daily:
            return fail(429, 122, "Daily API rate limit met")
        return fail(429, 66, "This API user has exceeded the maximum number of concurrent requests")

    def server_error(self, status: int) -> Response:
        """183: an internal error (worth a retry)."""
        return fail(status, 183, "An internal error has occurred")

    # -- OAuth (the Salesforce org's token endpoint) ----------------------------------------------------
    async def token(self, request: Request) -> Response:
        """Client credentials or refresh token; Salesforce answers without expires_in."""
        # The form is url-encoded, as OAuth requires; parsing it here spares a multipart dependency.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        credentials = (form.get("client_id"), form.get("client_secret"))
        if grant not in ("client_credentials", "refresh_token"):
            return JSONAnswer({"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400)
        if credentials != (self.client_id, self.client_secret):
            return JSONAnswer({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        if grant == "refresh_token" and form.get("refresh_token") != self.refresh_token:
            return JSONAnswer({"error": "invalid_grant", "error_description": "expired access/refresh token"}, 400)
        return JSONAnswer(
            {
                "access_token": self.tokens.issue(self.knobs.token_ttl_s),
                "instance_url": self.base_url,
                "token_type": "Bearer",
                "scope": "api pardot_api refresh_token",
                "issued_at": str(int(self.clock.now().timestamp() * 1000)),
            }
        )

    # -- prospects -----------------------------------------------------------------------------------------
    @property
    def custom(self) -> dict[str, str]:
        """apiFieldId -> type of every custom field."""
        return {custom_name(f["fieldId"]): str(f["type"]) for f in self.custom_fields.values()}

    def prospect_fields(self) -> set[str]:
        """Every name ``fields`` may ask of a prospect."""
        return {*STANDARD, *self.custom, "campaign.id", "campaign.name"}

    async def prospects(self, request: Request) -> Response:
        """Query (GET) or create (POST) prospects."""
        if request.method == "GET":
            return self._query(request, "prospects", PROSPECTS, self.prospect_fields())
        try:
            names = asked_fields(request.query_params.get("fields") or "id", self.prospect_fields())
            values = checked_body(await self._body(request), self.custom)
            row = self._create(values)
        except QueryError as exc:
            return fail(exc.status, exc.code, exc.message)
        location = f"{self.base_url}{API}/prospects/{row.id}"
        return JSONAnswer(self._render(row, names), status_code=201, headers={"Location": location})

    async def prospect(self, request: Request) -> Response:
        """Read (GET), update (PATCH, omitted fields unchanged) or delete to the recycle bin (DELETE)."""
        table = self.tables["prospects"]
        row = table.get(str(request.path_params["id"]), include_deleted=True)
        if row is None:
            return fail(404, 3, "Invalid prospect ID")
        if request.method == "DELETE":
            if row.deleted:
                return fail(404, 3, "Invalid prospect ID", warning="201;Record In Recycle Bin")
            table.delete(row.id, at=self._stamp())
            return Response(status_code=204)
        try:
            names = asked_fields(request.query_params.get("fields"), self.prospect_fields())
            if request.method == "GET":
                if row.deleted:
                    return fail(404, 3, "Invalid prospect ID", warning="201;Record In Recycle Bin")
                return JSONAnswer(self._render(row, names))
            if row.deleted:
                return fail(400, 219, "Deleted records can't be updated")
            self._update(row, checked_body(await self._body(request), self.custom))
        except QueryError as exc:
            return fail(exc.status, exc.code, exc.message)
        return JSONAnswer(self._render(row, names))

    async def upsert(self, request: Request) -> Response:
        """``do/upsertLatestByEmail``: update the latest prospect with the email, else create one."""
        try:
            body = await self._body(request)
            if not isinstance(body, dict) or not body.get("matchEmail") or not isinstance(body.get("prospect"), dict):
                raise QueryError(400, 13, "Required parameters missing: matchEmail and prospect")
            fields = body.get("fields") or ["id"]
            names = asked_fields(",".join(str(f) for f in fields), self.prospect_fields())
            values = checked_body(body["prospect"], self.custom)
            values.setdefault("email", body["matchEmail"])
            # secondaryDeletedSearch (also match the recycle bin) is not emulated: closeloop sends false.
            existing = self._latest(str(body["matchEmail"]))
            if existing is None:
                return JSONAnswer(self._render(self._create(values), names), status_code=201)
            self._update(existing, values)
        except QueryError as exc:
            return fail(exc.status, exc.code, exc.message)
        return JSONAnswer(self._render(existing, names))

    def _latest(self, email: str) -> Row | None:
        """The live prospect with this email (any case) most recently active, else most recently updated."""
        wanted = email.strip().lower()
        live = [r for r in self.tables["prospects"].live() if str(r.fields.get("email") or "").lower() == wanted]
        key = lambda r: (r.fields.get("lastActivityAt") or r.modified_at, r.modified_at, int(r.id))  # noqa: E731
        return max(live, key=key, default=None)

    def _create(self, values: dict[str, Any]) -> Row:
        if not values.get("email"):
            raise QueryError(400, 13, "Required parameter missing: email")
        if not self.allow_duplicate_emails and self._latest(str(values["email"])) is not None:
            raise QueryError(400, 54, "Email address is already in use")
        self._refuse_forced(values)
        self.stats.records_written += 1
        return self.tables["prospects"].insert(values, at=self._stamp())

    def _update(self, row: Row, values: dict[str, Any]) -> None:
        self._refuse_forced(values)
        self.stats.records_written += 1
        self.tables["prospects"].update(row.id, values, at=self._stamp())

    def _refuse_forced(self, values: dict[str, Any]) -> None:
        name = self.rejects(values)
        if name is not None:
            raise QueryError(400, 85, f"Unable to save the prospect: invalid value for '{name}'")

    def _stamp(self) -> datetime:
        """v5 keeps whole seconds."""
        return self.now().replace(microsecond=0)

    def _render(self, row: Row, names: list[str]) -> dict[str, Any]:
        campaigns = {int(r.id): {"id": int(r.id), **r.fields} for r in self.tables["campaigns"].live()}
        return render(row, names, {"campaign": campaigns})

    async def _body(self, request: Request) -> Any:
        try:
            return await read_json(request)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise QueryError(400, 150, "Invalid JSON in the request body") from None

    # -- visitor activities, custom fields, campaigns -------------------------------------------------------
    async def activities(self, request: Request) -> Response:
        """Query visitor activities (read-only; no recycle bin)."""
        known = {*ACTIVITY_FIELDS, "visitorId", "visitId", "fileId", "customRedirectId", "updatedAt", "campaign.id"}
        return self._query(request, "visitor-activities", ACTIVITIES, known)

    async def campaigns(self, request: Request) -> Response:
        """Query campaigns."""
        spec = Spec(("id",), ("createdAt", "updatedAt"), (), ("id",), recycles=True, value=_row_value)
        return self._query(request, "campaigns", spec, {"id", "name", "cost", "createdAt", "updatedAt"})

    async def custom_field_collection(self, request: Request) -> Response:
        """List (GET) or create (POST) prospect custom fields."""
        try:
            names = asked_fields(request.query_params.get("fields") or "id", set(CUSTOM_FIELD_FIELDS))
            if request.method == "GET":
                values = [{n: f.get(n) for n in names} for f in self.custom_fields.values()]
                return JSONAnswer({"values": values, "nextPageToken": None, "nextPageUrl": None})
            body = await self._body(request)
            created = self.add_custom_field(body.get("fieldId"), body.get("name"), body.get("type", "Text"))
        except QueryError as exc:
            return fail(exc.status, exc.code, exc.message)
        return JSONAnswer({n: created.get(n) for n in names}, status_code=201)

    def add_custom_field(self, field_id: Any, name: Any, kind: Any) -> dict[str, Any]:
        """Create a prospect custom field (also used to seed the closeloop fields)."""
        if not isinstance(field_id, str) or not field_id or not isinstance(name, str) or not name:
            raise QueryError(400, 13, "Required parameters missing: name and fieldId")
        if kind not in CUSTOM_TYPES:
            raise QueryError(400, 51, f"Invalid parameter: type '{kind}'; valid: {', '.join(CUSTOM_TYPES)}")
        if field_id in self.custom_fields or field_id in STANDARD:
            raise QueryError(400, 51, f"Invalid parameter: fieldId '{field_id}' is already in use")
        record = {
            "id": 7000 + len(self.custom_fields) + 1,
            "name": name,
            "fieldId": field_id,
            "apiFieldId": custom_name(field_id),
            "type": kind,
            "isRecordMultipleResponses": False,
            "isRequired": False,
        }
        self.custom_fields[field_id] = record
        return record

    # -- the one query loop --------------------------------------------------------------------------------
    def _query(self, request: Request, name: str, spec: Spec, known: set[str]) -> Response:
        params = dict(request.query_params)
        try:
            names = asked_fields(params.get("fields"), known)
            token = params.get("nextPageToken")
            if token is not None:
                if set(params) - {"fields", "nextPageToken"}:
                    raise QueryError(400, 51, "Invalid parameter: only fields may be sent with nextPageToken")
                query, last, served = decode_token(token, self.clock.now())
            else:
                query, last, served = parse_query(params, spec), (), 0
        except QueryError as exc:
            return fail(exc.status, exc.code, exc.message)
        keyed = sorted(
            ((sort_key(r, query.order, spec), r) for r in self.tables[name].rows.values() if matches(r, query, spec)),
            key=lambda pair: pair[0],
        )
        rest = [pair for pair in keyed if pair[0] > last] if last else keyed
        room = min(query.limit, self.sequence_limit - served)
        page = rest[:room]
        more = len(rest) > len(page)
        campaigns = {int(r.id): {"id": int(r.id), **r.fields} for r in self.tables["campaigns"].live()}
        values = [render(row, names, {"campaign": campaigns}) for _, row in page]
        headers: dict[str, str] = {}
        next_token = None
        if more and served + len(page) < self.sequence_limit:
            next_token = encode_token(query, page[-1][0], served + len(page), self.clock.now())
        elif more:
            headers["Pardot-Warning"] = SEQUENCE_WARNING
        next_url = f"{self.base_url}{request.url.path}?nextPageToken={next_token}" if next_token else None
        body = {"values": values, "nextPageToken": next_token, "nextPageUrl": next_url}
        return JSONAnswer(body, headers=headers or None)

    # -- the website: tracking code and form handlers (see ``tracking``) ---------------------------------
    async def _page_view(self, request: Request) -> Response:
        return await tracking.page_view(self, request)

    async def _form_handler(self, request: Request) -> Response:
        return await tracking.form_handler(self, request)

    def add_form_handler(self, path: str, name: str, campaign: str, success_url: str) -> dict[str, Any]:
        """A form handler at ``/l/1001/<path>`` whose successes count for ``campaign``."""
        handler = {"id": 9001 + len(self.form_handlers), "name": name, "success_url": success_url,
                   "campaignId": self.campaign_id(campaign)}  # fmt: skip
        self.form_handlers[path] = handler
        return handler

    def campaign_id(self, name: str) -> int:
        """The id of the campaign called ``name`` (created when missing)."""
        table = self.tables["campaigns"]
        found = next((row.id for row in table.live() if row.fields.get("name") == name), None)
        return int(found or table.insert({"name": name, "cost": 0}, at=self._stamp()).id)

    def campaign_of(self, url: str) -> int | None:
        """The campaign a tracked page belongs to: its utm_campaign, when a campaign has that name."""
        wanted = dict(parse_qsl(urlsplit(url).query)).get("utm_campaign")
        return next((int(r.id) for r in self.tables["campaigns"].live() if r.fields.get("name") == wanted), None)

    def form_prospect(self, values: dict[str, Any], first_touch: dict[str, Any], campaign_id: int) -> Row:
        """The latest prospect with the form's email, updated; else a new one with its first touch and campaign."""
        existing = self._latest(str(values["email"]))
        if existing is not None:
            self._update(existing, values)
            return existing
        return self._create({**values, **first_touch, "campaignId": campaign_id, "source": "Website"})

    def convert(self, visitor: int, prospect_id: int) -> None:
        """Assign the visitor's anonymous page views to the prospect it became."""
        table = self.tables["visitor-activities"]
        for row in self.activities_of_visitor(visitor):
            if row.fields.get("prospectId") is None:
                table.update(row.id, {"prospectId": prospect_id}, at=self._stamp())

    def activities_of_visitor(self, visitor: int) -> list[Row]:
        """A visitor's activities, oldest first."""
        rows = (r for r in self.tables["visitor-activities"].live() if r.fields.get("visitorId") == visitor)
        return sorted(rows, key=lambda r: (r.created_at, int(r.id)))

    def log_activity(self, prospect_id: int | None, at: datetime, kind: int, type_name: str, **fields: Any) -> Row:
        """Log one visitor activity (of a prospect, or of an anonymous visitor) at ``at``."""
        moment = at.replace(microsecond=0)
        row = self.tables["visitor-activities"].insert(
            {"type": kind, "typeName": type_name, "prospectId": prospect_id, **fields}, at=moment
        )
        prospect = self.tables["prospects"].get(str(prospect_id)) if prospect_id is not None else None
        if prospect is not None:
            last = prospect.fields.get("lastActivityAt")
            if last is None or last < moment:
                prospect.fields["lastActivityAt"] = moment
            prospect.fields.setdefault("firstActivityAt", moment)
        return row
