"""The Zoho CRM connector: COQL change reads, deleted records, upserts by duplicate-check field, field metadata."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx

from closeloop.connector import ConnectorContext
from closeloop.http import (
    Action,
    AuthError,
    BudgetExhausted,
    HttpClient,
    HttpError,
    RefreshingAuth,
    RetryPolicy,
    Token,
    build_http,
)
from closeloop.http.paging import KeysetPaginator, PageNumberPaginator, Params, paginate
from closeloop.model import (
    ActivityPage,
    Association,
    Cursor,
    Limits,
    NativeRecord,
    ObjectSchema,
    OwnedField,
    Owner,
    Page,
    TouchPage,
    Touchpoint,
    WriteOp,
    WriteRequest,
    WriteResult,
    now_utc,
)

from . import activities, campaigns
from .reads import (
    COQL_MAX_LIMIT,
    MORE_RECORDS,
    PAGE_SIZE,
    SEARCH_MAX_CRITERIA,
    changes_query,
    coql_columns,
    cursor_key,
    deleted_since,
    equals_criteria,
    interleave,
    more_records,
    position_key,
    to_deletion,
    to_record,
)
from .schema import MODIFIED_TIME, custom_field, layout_id, object_schema, pipeline_stages, require_field
from .settings import ZohoSettings
from .writes import WRITE_LIMIT, chunks, group_key, record_body, whole_call_failure, write_result

log = logging.getLogger(__name__)

API_PATH = "/crm/v8"
USERS_PAGE = 200  # the users API's largest page
LIMITS = Limits(
    max_write_batch=WRITE_LIMIT,
    max_read_batch=100,  # ids per list call
    page_size=COQL_MAX_LIMIT,
    # Zoho meters credits per rolling 24 h and concurrent calls, not requests per second; the window
    # below only smooths bursts. Heavy APIs (COQL, search, upsert) share a sub-concurrency of 10.
    requests_per_window=100,
    window_seconds=1.0,
    max_concurrency=10,
    daily_budget=50_000,  # the base every paid edition gets; admins set theirs with daily_budget
)


def classify(response: httpx.Response) -> Action | None:
    """Zoho's oddities: 304 means nothing changed, a 400 with ``data[]`` holds per-record results."""
    if response.status_code == 304:
        return Action.IGNORE
    if response.status_code in (400, 429):
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if response.status_code == 400 and isinstance(body, dict) and isinstance(body.get("data"), list):
            return Action.IGNORE
        if response.status_code == 429 and isinstance(body, dict) and body.get("code") == "LIMIT_EXCEEDED":
            raise BudgetExhausted("Zoho CRM: the org's API credits for the last 24 hours are spent")
    return None


class ZohoConnector:
    """One Zoho CRM org: Leads, Contacts, Deals (and any module with Modified_Time)."""

    def __init__(self, context: ConnectorContext) -> None:
        settings = context.settings
        assert isinstance(settings, ZohoSettings)  # the plugin's settings_model guarantees it
        self.system = context.system
        self.settings = settings
        self._clock = context.clock or now_utc
        self._api = settings.api_url
        retry = RetryPolicy(
            attempts=settings.max_attempts,
            base_delay=settings.backoff_base_seconds,
            max_delay=settings.backoff_max_seconds,
        )
        self._accounts = build_http(context, base_url=settings.accounts_url, auth=None, limits=LIMITS, retry=retry)
        self._auth = RefreshingAuth(self._fetch_token, scheme="Zoho-oauthtoken", clock=self._clock)
        self.http: HttpClient = build_http(
            context,
            base_url=self._api,
            auth=self._auth,
            limits=self.limits(""),
            classifier=classify,
            retry=retry,
        )
        self._schemas: dict[str, ObjectSchema] = {}

    # -- auth ------------------------------------------------------------------------------------------
    async def _fetch_token(self) -> Token:
        params = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
            "refresh_token": self.settings.refresh_token.get_secret_value(),
        }
        response = await self._accounts.request("POST", "/oauth/v2/token", params=params, idempotent=True)
        payload = response.json()
        if "access_token" not in payload:
            # Zoho answers a bad refresh token with HTTP 200 and {"error": "invalid_code"}.
            reason = payload.get("error", "no access_token")
            raise AuthError(response.status_code, f"Zoho accounts refused the refresh token: {reason}")
        if payload.get("api_domain") and not self.settings.base_url:
            self._api = str(payload["api_domain"]).rstrip("/")  # the org's data centre, as Zoho says
        return Token.from_oauth(payload, self._clock())

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Take the token before a rate slot: a refresh inside the slot would delay the send and let the
        # vendor's window see calls closer together than the limiter allowed.
        await self._auth.header()
        return await self.http.request(method, f"{self._api}{API_PATH}/{path}", **kwargs)

    async def _get(self, path: str, **kwargs: Any) -> Any:
        response = await self._call("GET", path, **kwargs)
        return response.json() if response.status_code == 200 and response.content else None

    async def _get_page(self, path: str, params: Params, **kwargs: Any) -> Any:
        return await self._get(path, params=params, **kwargs)

    # -- metadata --------------------------------------------------------------------------------------
    async def describe(self, obj: str) -> ObjectSchema:
        """Fields from ``/settings/fields``; Deals' stages from the Stage picklist or the layout's pipeline."""
        if obj in self._schemas:
            return self._schemas[obj]
        payload = await self._get("settings/fields", params={"module": obj})
        entries = (payload or {}).get("fields") or []
        schema = object_schema(obj, entries)
        if "Stage" in schema.fields and not schema.stages:
            layout = layout_id(entries)
            if layout:
                pipelines = await self._get("settings/pipeline", params={"layout_id": layout})
                schema = ObjectSchema(obj, schema.fields, pipeline_stages(pipelines or {}))
        self._schemas[obj] = schema
        return schema

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        """Create closeloop's own fields on ``obj``; the next describe lists them."""
        body = {"fields": [custom_field(f) for f in fields]}
        try:
            # Safe to repeat: a field made by an attempt whose answer was lost is DUPLICATE_DATA below.
            await self._call("POST", "settings/fields", params={"module": obj}, json=body, idempotent=True)
        except HttpError as exc:
            if "DUPLICATE_DATA" not in exc.body_text:  # made meanwhile (another replica)
                raise
        self._schemas.pop(obj, None)

    async def _columns(self, obj: str, purpose: str) -> list[str]:
        schema = await self.describe(obj)
        require_field(schema, MODIFIED_TIME, purpose)
        return coql_columns(schema.fields)

    # -- reads -----------------------------------------------------------------------------------------
    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """COQL pages in (Modified_Time, id) order with the recycle bin's deletions merged in."""
        columns = await self._columns(obj, "read its changes incrementally")
        size = min(self.settings.page_size or COQL_MAX_LIMIT, COQL_MAX_LIMIT)
        deletions = await self._deletions(obj, since)
        floor = cursor_key(since) if since else None

        def after(payload: Any) -> str | None:
            rows = payload.get("data") or []
            if not (rows and more_records(payload)):
                return None
            return changes_query(obj, columns, max(map(to_record, rows), key=position_key).position, size)

        async def fetch(query: str) -> Any:
            response = await self._call("POST", "coql", json={"select_query": query}, idempotent=True)
            return response.json() if response.status_code == 200 else {}

        async for payload in paginate(fetch, KeysetPaginator(changes_query(obj, columns, since, size), after)):
            rows = payload.get("data") or []
            kept = [
                r for r in sorted(map(to_record, rows), key=position_key) if floor is None or position_key(r) > floor
            ]
            page = interleave(kept, deletions, last_page=not (rows and more_records(payload)))
            if page:
                yield Page(page)

    async def _deletions(self, obj: str, since: Cursor | None) -> list[NativeRecord]:
        floor = cursor_key(since) if since else None
        found: list[NativeRecord] = []
        pages = PageNumberPaginator({"type": "all", "per_page": PAGE_SIZE}, MORE_RECORDS)
        async for payload in paginate(partial(self._get_page, f"{obj}/deleted", headers=deleted_since(since)), pages):
            deletions = map(to_deletion, (payload or {}).get("data") or [])
            found.extend(d for d in deletions if floor is None or position_key(d) > floor)
        return sorted(found, key=position_key)

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """The records with these ids, 100 per list call."""
        columns = await self._columns(obj, "read its records")
        found: list[NativeRecord] = []
        for chunk in chunks(list(ids), LIMITS.max_read_batch):
            payload = await self._get(obj, params={"ids": ",".join(chunk), "fields": ",".join(columns)})
            found.extend(to_record(row) for row in (payload or {}).get("data") or [])
        return found

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Records whose ``key`` equals a value; Zoho's search is case-insensitive, 10 conditions a call."""
        await self._columns(obj, "search its records")
        found: dict[str, NativeRecord] = {}
        for chunk in chunks(list(values), SEARCH_MAX_CRITERIA):
            pages = PageNumberPaginator({"criteria": equals_criteria(key, chunk), "per_page": PAGE_SIZE}, MORE_RECORDS)
            async for payload in paginate(partial(self._get_page, f"{obj}/search"), pages):
                for row in (payload or {}).get("data") or []:
                    record = to_record(row)
                    found[record.id] = record
        return list(found.values())

    # -- writes ----------------------------------------------------------------------------------------
    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Insert, update, upsert (by the request's duplicate-check field) and delete, 100 per call."""
        groups: dict[tuple[WriteOp, str | None], list[int]] = {}
        for index, request in enumerate(batch):
            groups.setdefault(group_key(request), []).append(index)
        results: dict[int, WriteResult] = {}
        for (op, upsert_key), indexes in groups.items():
            for chunk in chunks(indexes):
                requests = [batch[i] for i in chunk]
                outcome = await self._write_call(obj, op, upsert_key, requests)
                results.update(zip(chunk, outcome, strict=True))
        return [results[i] for i in range(len(batch))]

    async def _write_call(
        self, obj: str, op: WriteOp, upsert_key: str | None, requests: Sequence[WriteRequest]
    ) -> list[WriteResult]:
        body: dict[str, Any] = {"data": [record_body(r) for r in requests]}
        try:
            if op is WriteOp.DELETE:
                ids = ",".join(str(r.native_id) for r in requests)
                response = await self._call("DELETE", obj, params={"ids": ids})
            elif op is WriteOp.UPSERT:
                body["duplicate_check_fields"] = [upsert_key]
                response = await self._call("POST", f"{obj}/upsert", json=body, idempotent=True)
            elif op is WriteOp.UPDATE:
                response = await self._call("PUT", obj, json=body)
            else:
                response = await self._call("POST", obj, json=body, idempotent=False)
        except HttpError as exc:
            if exc.status != 400 or exc.response is None:
                raise
            return whole_call_failure(requests, exc.response.json())  # e.g. an unknown duplicate-check field
        entries = response.json().get("data") or []
        return [write_result(r, e) for r, e in zip(requests, entries, strict=True)]

    # -- deals and contacts ----------------------------------------------------------------------------
    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Each deal's Contact_Name lookup, plus its Contact Roles when ``contact_roles`` is on."""
        links: dict[tuple[str, str], Association] = {}
        for chunk in chunks(list(ids), LIMITS.max_read_batch):
            payload = await self._get(obj, params={"ids": ",".join(chunk), "fields": "Contact_Name"})
            for row in (payload or {}).get("data") or []:
                contact = row.get("Contact_Name")
                if isinstance(contact, Mapping) and contact.get("id"):
                    links[(str(row["id"]), str(contact["id"]))] = Association(str(row["id"]), str(contact["id"]))
        if self.settings.contact_roles:
            for deal_id in ids:
                payload = await self._get(f"{obj}/{deal_id}/Contact_Roles")
                for row in (payload or {}).get("data") or []:
                    role = (row.get("Contact_Role") or {}).get("name")
                    links[(deal_id, str(row["id"]))] = Association(deal_id, str(row["id"]), role)
        return list(links.values())

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Point each deal's Contact_Name lookup at the contact (Zoho's primary deal-contact link)."""
        requests = [
            WriteRequest(
                ref=str(i), op=WriteOp.UPDATE, native_id=link.from_id, fields={"Contact_Name": {"id": link.to_id}}
            )
            for i, link in enumerate(links)
        ]
        return await self.write(obj, requests)

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """None by person: campaign memberships come through the touch stream, a call per campaign, not per person."""
        return []

    async def touch_changes(self, since: Cursor | None) -> AsyncIterator[TouchPage]:
        """The members of the campaigns to read now (see ``campaigns``) as touches, a page per campaign; the last
        page moves the stream's position to this read's start. None where the user cannot read campaigns."""
        if not self.settings.campaign_members:
            return
        now = self._clock()
        every = timedelta(hours=self.settings.campaign_reread_hours)
        listed = await self._campaigns()
        if listed is None:
            return
        held = since or Cursor(campaigns.EPOCH, "")
        for campaign in campaigns.campaigns_to_read(listed, since, now, every):
            backfill = campaigns.first_read(campaign, since)
            touches: list[Touchpoint] = []
            for module in self.settings.campaign_members:
                async for rows in self._related(f"{campaigns.CAMPAIGNS}/{campaign.id}/{module}"):
                    touches += [campaigns.member_touch(campaign, r, backfill=backfill, now=now) for r in rows]
            yield TouchPage(tuple(touches), held)
        yield TouchPage((), Cursor(now, ""))

    async def _campaigns(self) -> list[campaigns.Campaign] | None:
        """Every campaign, 200 a call; None when the org or the user has no Campaigns module."""
        found: list[campaigns.Campaign] = []
        try:
            async for rows in self._related(campaigns.CAMPAIGNS, campaigns.CAMPAIGN_FIELDS):
                found += map(campaigns.to_campaign, rows)
        except HttpError as exc:
            if exc.status not in (400, 403):
                raise
            log.warning("Zoho campaigns not read (%s): campaign memberships make no touches", exc)
            return None
        return found

    async def _related(self, path: str, fields: Sequence[str] = campaigns.MEMBER_FIELDS) -> AsyncIterator[list[Any]]:
        """Pages of a list or related-list call, 200 records each."""
        pages = PageNumberPaginator({"fields": ",".join(fields), "per_page": PAGE_SIZE}, MORE_RECORDS)
        async for payload in paginate(partial(self._get_page, path), pages):
            yield list((payload or {}).get("data") or [])

    async def owners(self) -> list[Owner]:
        """The org's users with their emails (disabled ones flagged): the people a record's ``Owner`` names."""
        found: list[Owner] = []
        pages = PageNumberPaginator({"type": "AllUsers", "per_page": USERS_PAGE}, MORE_RECORDS)
        async for body in paginate(partial(self._get_page, "users"), pages):
            users = (body or {}).get("users") or []
            found += [Owner(str(u["id"]), str(u.get("email") or ""), active=u.get("status") == "active") for u in users]
        return found

    def merges_unnamed(self, obj: str) -> bool:
        """Zoho deletes a merged-away record (Merge Records API or Find & Merge) like any other: its deleted list
        names no master, whatever the module."""
        return True

    def activity_streams(self) -> tuple[str, ...]:
        """Calls, Tasks and Events, each read as its own stream (the SLA's follow-ups)."""
        return activities.ACTIVITY_MODULES

    async def activity_changes(self, stream: str, since: Cursor | None) -> AsyncIterator[ActivityPage]:
        """Records of one activity module changed after ``since`` as sales activities; none where it is hidden."""
        if not (await self.describe(stream)).fields:
            return
        async for page in self.read_changes(stream, since):
            found = tuple(activities.to_activity(stream, r) for r in page.records)
            yield ActivityPage(found, page.records[-1].position)

    def limits(self, obj: str) -> Limits:
        """Zoho's documented limits: 100 records per write, 2,000 rows per COQL page, concurrency 10."""
        if self.settings.page_size:
            return replace(LIMITS, page_size=min(self.settings.page_size, COQL_MAX_LIMIT))
        return LIMITS

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self.http.aclose()
        await self._accounts.aclose()
