"""The Salesforce connector: SOQL change reads through queryAll, collections writes, describe, contact roles."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from closeloop.connector import ConnectorContext, FieldTimes
from closeloop.http import (
    Action,
    AuthError,
    BudgetExhausted,
    HttpClient,
    HttpError,
    RefreshingAuth,
    RetryPolicy,
    Token,
    Usage,
    build_http,
    decode_json,
)
from closeloop.http.paging import NextUrlPaginator, paginate
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
    StageInfo,
    TouchPage,
    Touchpoint,
    WriteOp,
    WriteRequest,
    WriteResult,
    WriteStatus,
    advance,
    now_utc,
    records_after,
)

from . import activities, campaigns, history, soql
from .paging import DONE, NEXT_URL, ChangeBatch, ChangePaginator, expired_locator
from .schema import (
    STAGE_FIELDS,
    STAGE_OBJECT,
    custom_field,
    object_schema,
    selectable,
    stage_infos,
    to_record,
    upsert_keys,
)
from .settings import SalesforceSettings
from .writes import (
    COLLECTION_MAX,
    COMPOSITE_MAX,
    chunks,
    conditional_result,
    conditional_update,
    record_body,
    whole_call_failure,
    write_result,
)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
QUERY_BATCH_MAX = 2000
IDS_PER_QUERY = 300  # keeps a GET /query URL well under Salesforce's 16 KB request-line limit
ROLE_OBJECT = "OpportunityContactRole"
USER_OBJECT = "User"  # the users who own records (OwnerId)
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def read_usage(response: httpx.Response) -> Usage | None:
    """``Sforce-Limit-Info: api-usage=used/limit``: the org's daily API requests, fed to the budget."""
    match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
    return Usage(daily_used=int(match.group(1)), daily_limit=int(match.group(2))) if match else None


def classify(response: httpx.Response) -> Action | None:
    """403 REQUEST_LIMIT_EXCEEDED: a spent daily allocation stops calls; a concurrency overflow waits."""
    if response.status_code != 403:
        return None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    entries = [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []
    limited = [e for e in entries if e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED"]
    if not limited:
        return None
    if any("TotalRequests" in str(e.get("message", "")) for e in limited):
        raise BudgetExhausted("Salesforce: the org's daily API request limit is exceeded (REQUEST_LIMIT_EXCEEDED)")
    return Action.RATE_LIMITED


class SalesforceConnector:
    """One Salesforce org: Lead and Contact (both people), Opportunity and its contact roles."""

    def __init__(self, context: ConnectorContext) -> None:
        settings = context.settings
        assert isinstance(settings, SalesforceSettings)  # the plugin's settings_model guarantees it
        self.system = context.system
        self.settings = settings
        self._clock = context.clock or now_utc
        self._instance = (settings.base_url or settings.login_url).rstrip("/")
        self._daily_limit: int | None = None
        retry = RetryPolicy(
            attempts=settings.max_attempts,
            base_delay=settings.backoff_base_seconds,
            max_delay=settings.backoff_max_seconds,
        )
        self._login = build_http(context, base_url=settings.login_url, auth=None, limits=self.limits(""), retry=retry)
        self._auth = RefreshingAuth(self._fetch_token, clock=self._clock)
        self.http: HttpClient = build_http(
            context,
            base_url=self._instance,
            auth=self._auth,
            limits=self.limits(""),
            classifier=classify,
            observe_headers=self._observe,
            retry=retry,
        )
        self._describes: dict[str, Mapping[str, Any]] = {}
        self._schemas: dict[str, ObjectSchema] = {}

    # -- auth ------------------------------------------------------------------------------------------
    async def _fetch_token(self) -> Token:
        settings = self.settings
        if settings.auth_flow == "jwt_bearer":
            claims = {
                "iss": settings.client_id,
                "sub": settings.username,
                "aud": settings.audience,
                "exp": int((self._clock() + timedelta(minutes=3)).timestamp()),
            }
            form = {"grant_type": JWT_GRANT, "assertion": jwt.encode(claims, settings.signing_key(), "RS256")}
        else:
            assert settings.client_secret is not None  # the settings validator guarantees it
            form = {
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
            }
        try:
            response = await self._login.request("POST", "/services/oauth2/token", data=form, idempotent=True)
        except HttpError as exc:
            raise AuthError(exc.status, f"Salesforce refused the {settings.auth_flow} grant: {exc.body_text}") from None
        payload = response.json()
        if payload.get("instance_url") and not settings.base_url:
            self._instance = str(payload["instance_url"]).rstrip("/")  # the org's own host, as Salesforce says
        # Salesforce gives no expires_in: the session lasts the org's timeout; a 401 triggers a new grant.
        return Token.from_oauth(payload, self._clock())

    def _observe(self, response: httpx.Response) -> Usage | None:
        usage = read_usage(response)
        if usage is not None:
            self._daily_limit = usage.daily_limit
        return usage

    async def _url(self, path: str) -> str:
        # The token answer names the org's instance, so a token comes before the first URL is built.
        await self._auth.header()
        return f"{self._instance}/services/data/v{self.settings.api_version}/{path}"

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, await self._url(path), **kwargs)
        return decode_json(response)

    # -- metadata --------------------------------------------------------------------------------------
    async def _describe(self, obj: str) -> Mapping[str, Any]:
        if obj not in self._describes:
            name = soql.object_name(obj)
            try:
                self._describes[obj] = await self._json("GET", f"sobjects/{name}/describe")
            except HttpError as exc:
                if exc.status == 404:
                    raise ValueError(f"Salesforce has no object {obj!r} (or the user cannot see it)") from None
                raise
        return self._describes[obj]

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        """Create closeloop's own fields on ``obj`` through the Tooling API; the next describe lists them.

        The integration user's profile or permission set must grant them (field-level security) to read them.
        """
        name = soql.object_name(obj)
        for field in fields:
            try:
                # Safe to repeat: a field made by an attempt whose answer was lost is a duplicate name below.
                body = custom_field(name, field)
                await self._json("POST", "tooling/sobjects/CustomField", json=body, idempotent=True)
            except HttpError as exc:
                if "DUPLICATE_DEVELOPER_NAME" not in exc.body_text:  # made meanwhile (another replica)
                    raise
        self._describes.pop(obj, None)
        self._schemas.pop(obj, None)

    async def _allowed(self, obj: str) -> soql.AllowList:
        describe = await self._describe(obj)
        return soql.AllowList(str(describe["name"]), frozenset(e["name"] for e in describe["fields"]))

    async def describe(self, obj: str) -> ObjectSchema:
        """Fields from sObject Describe; an Opportunity's stages from the OpportunityStage table."""
        if obj not in self._schemas:
            describe = await self._describe(obj)
            stages: tuple[StageInfo, ...] = ()
            if any(e["name"] == "StageName" for e in describe["fields"]):
                stage_list = await self._allowed(STAGE_OBJECT)
                query = soql.select(
                    stage_list,
                    STAGE_FIELDS,
                    soql.compare(stage_list, "IsActive", "=", value=True),
                    order=("SortOrder",),
                )
                stages = stage_infos([row async for rows in self._query(query, all_rows=False) for row in rows])
            self._schemas[obj] = object_schema(str(describe["name"]), describe, stages)
        return self._schemas[obj]

    # -- reads -----------------------------------------------------------------------------------------
    async def _query(self, query: str, *, all_rows: bool, batch: int | None = None) -> AsyncIterator[list[Any]]:
        """Batches of a query's rows, following ``nextRecordsUrl``."""
        headers = _batch_header(batch)
        first = f"{await self._url('queryAll' if all_rows else 'query')}?{urlencode({'q': query})}"
        async for payload in paginate(partial(self._json_at, headers=headers), NextUrlPaginator(first, NEXT_URL, DONE)):
            yield list(payload.get("records") or [])

    async def _json_at(self, url: str, headers: Mapping[str, str]) -> Any:
        """GET a query URL: the query's own, or a ``nextRecordsUrl`` (a path on the org's instance)."""
        absolute = url if url.startswith(("http://", "https://")) else f"{self._instance}{url}"
        response = await self.http.request("GET", absolute, headers=dict(headers))
        return decode_json(response)

    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """queryAll on (SystemModstamp, Id) after the cursor: deletions, merges and conversions included."""
        allowed = await self._allowed(obj)
        fields = selectable(await self._describe(obj))
        headers = _batch_header(min(self.settings.page_size or QUERY_BATCH_MAX, QUERY_BATCH_MAX))

        async def fetch(batch: ChangeBatch) -> Any:
            if batch.next_url is not None:
                try:
                    return await self._json_at(batch.next_url, headers)
                except HttpError as exc:
                    if not expired_locator(exc.body_text):
                        raise
            query = soql.changes_query(allowed, fields, batch.after)
            return await self._json_at(f"{await self._url('queryAll')}?{urlencode({'q': query})}", headers)

        after = since
        async for payload in paginate(fetch, ChangePaginator(since)):
            # The literal holds milliseconds; a finer cursor is honoured here.
            records = records_after(after, map(to_record, payload.get("records") or []))
            if records:
                yield Page(tuple(records))
                after = advance(after, records)

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """The live records with these ids."""
        return await self._select_in(obj, "Id", list(dict.fromkeys(ids)))

    async def field_times(self, obj: str, ids: Sequence[str], fields: Sequence[str]) -> FieldTimes:
        """When each tracked field of these records last changed, from the object's field history."""
        name = history.HISTORY_OBJECTS.get(obj)
        if name is None or not ids or not fields:
            return {}
        try:
            allowed = await self._allowed(name)
        except ValueError:
            return {}  # the org tracks no field history of this object: the record-level rule applies
        rows: list[Any] = []
        for chunk in chunks(list(dict.fromkeys(ids)), IDS_PER_QUERY):
            async for batch in self._query(history.history_query(allowed, obj, chunk, fields), all_rows=False):
                rows.extend(batch)
        return history.latest(obj, rows)

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Records whose ``key`` equals one of ``values``; SOQL compares text case-insensitively."""
        # A value with a control character SOQL cannot write could never be stored, so it matches nothing.
        wanted = list(dict.fromkeys(v for v in values if v and not any(ord(c) < 0x20 and c not in "\n\r\t" for c in v)))
        return await self._select_in(obj, key, wanted)

    async def _select_in(self, obj: str, key: str, values: Sequence[object]) -> list[NativeRecord]:
        allowed = await self._allowed(obj)
        fields = selectable(await self._describe(obj))
        found: list[NativeRecord] = []
        for chunk in chunks(values, IDS_PER_QUERY):
            query = soql.select(allowed, fields, soql.is_in(allowed, key, chunk))
            async for rows in self._query(query, all_rows=False):
                found.extend(map(to_record, rows))
        return found

    # -- writes ----------------------------------------------------------------------------------------
    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Collections of 200: create, update, upsert by an external-id field, delete; results in input order."""
        describe = await self._describe(obj)
        results: list[WriteResult | None] = [None] * len(batch)
        groups: dict[tuple[WriteOp, str | None], list[int]] = {}
        for index, request in enumerate(batch):
            groups.setdefault((request.op, request.upsert_key), []).append(index)
        for (op, key), indexes in groups.items():
            if op is WriteOp.UPDATE and self._conditional(batch, indexes):
                answers = await self._conditional_updates(str(describe["name"]), [batch[i] for i in indexes])
                for index, result in zip(indexes, answers, strict=True):
                    results[index] = result
                continue
            if key is not None and key not in upsert_keys(describe):
                raise ValueError(f"{obj}.{key} is not an external id or idLookup field; Salesforce cannot upsert on it")
            for chunk in chunks(indexes, COLLECTION_MAX):
                requests = [batch[i] for i in chunk]
                for index, result in zip(
                    chunk, await self._write_chunk(str(describe["name"]), op, key, requests), strict=True
                ):
                    results[index] = result
        return [r for r in results if r is not None]

    @staticmethod
    def _conditional(batch: Sequence[WriteRequest], indexes: Sequence[int]) -> bool:
        """Updates go through Composite with a precondition when every one carries its read time and one call
        holds them all (more would cost more calls than a collection update plus the engine's re-read)."""
        return len(indexes) <= COMPOSITE_MAX and all(batch[i].unmodified_since is not None for i in indexes)

    async def _conditional_updates(self, obj: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Up to 25 updates in one Composite call, each refused (412) if its record changed since the read."""
        api_path = f"/services/data/v{self.settings.api_version}"
        body = {
            "allOrNone": False,
            "compositeRequest": [conditional_update(api_path, obj, i, r) for i, r in enumerate(requests)],
        }
        try:
            answer = await self._json("POST", "composite", json=body)
        except AuthError:
            raise
        except HttpError as exc:
            error = whole_call_failure(exc.body_text)
            return [WriteResult.failed(r.ref, error) for r in requests]
        by_ref = {str(e.get("referenceId")): e for e in answer.get("compositeResponse") or []}
        return [conditional_result(r, by_ref.get(f"r{i}", {})) for i, r in enumerate(requests)]

    async def _write_chunk(
        self, obj: str, op: WriteOp, key: str | None, requests: Sequence[WriteRequest]
    ) -> list[WriteResult]:
        records = [record_body(obj, r) for r in requests]
        try:
            if op is WriteOp.DELETE:
                ids = ",".join(str(r.native_id) for r in requests)
                entries = await self._json("DELETE", "composite/sobjects", params={"ids": ids, "allOrNone": "false"})
            elif op is WriteOp.UPSERT:
                # The key was checked against describe, so it is a plain API name in the path.
                body = {"allOrNone": False, "records": records}
                entries = await self._json("PATCH", f"composite/sobjects/{obj}/{key}", json=body)
            else:
                method = "POST" if op is WriteOp.CREATE else "PATCH"
                entries = await self._json(method, "composite/sobjects", json={"allOrNone": False, "records": records})
        except AuthError:
            raise
        except HttpError as exc:  # the whole call was refused: every record carries the vendor's reason
            error = whole_call_failure(exc.body_text)
            return [WriteResult.failed(r.ref, error) for r in requests]
        return [write_result(r, e) for r, e in zip(requests, entries, strict=True)]

    # -- contact roles ---------------------------------------------------------------------------------
    async def _roles(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        allowed = await self._allowed(ROLE_OBJECT)
        rows: list[Mapping[str, Any]] = []
        for chunk in chunks(list(dict.fromkeys(ids)), IDS_PER_QUERY):
            query = soql.select(
                allowed, ("Id", "OpportunityId", "ContactId", "Role"), soql.is_in(allowed, "OpportunityId", chunk)
            )
            async for batch in self._query(query, all_rows=False):
                rows.extend(batch)
        return rows

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """OpportunityContactRoles of these opportunities, as (opportunity, contact, role)."""
        if obj != "Opportunity" or not ids:
            return []
        return [Association(r["OpportunityId"], r["ContactId"], r.get("Role")) for r in await self._roles(ids)]

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Create OpportunityContactRoles; an existing (opportunity, contact) pair is reported, not duplicated."""
        if obj != "Opportunity":
            raise ValueError(f"Salesforce links contacts to Opportunity, not {obj}")
        existing = {
            (r["OpportunityId"], r["ContactId"]): r["Id"] for r in await self._roles([x.from_id for x in links])
        }
        requests = [
            WriteRequest(
                ref=f"{link.from_id}:{link.to_id}",
                op=WriteOp.CREATE,
                fields={
                    "OpportunityId": link.from_id,
                    "ContactId": link.to_id,
                    **({"Role": link.role} if link.role else {}),
                },
            )
            for link in links
        ]
        fresh = [r for r, link in zip(requests, links, strict=True) if (link.from_id, link.to_id) not in existing]
        created = {r.ref: r for r in await self.write(ROLE_OBJECT, fresh)} if fresh else {}
        return [
            created.get(r.ref)
            or WriteResult(r.ref, WriteStatus.UPDATED, native_id=existing[(link.from_id, link.to_id)])
            for r, link in zip(requests, links, strict=True)
        ]

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """The campaign responses of these contacts or leads (read when a person arrives or changes)."""
        key = campaigns.PERSON_KEYS.get(obj)
        if key is None or not ids or not await self._has(campaigns.MEMBER_OBJECT):
            return []
        members = await self._select_in(campaigns.MEMBER_OBJECT, key, list(dict.fromkeys(ids)))
        return [t for t in await self._member_touches(members) if since is None or t.occurred_at > since]

    async def touch_changes(self, since: Cursor | None) -> AsyncIterator[TouchPage]:
        """Campaign members changed after ``since`` as the touches of their people; none where campaigns are hidden."""
        if not await self._has(campaigns.MEMBER_OBJECT):
            return
        async for page in self.read_changes(campaigns.MEMBER_OBJECT, since):
            yield TouchPage(tuple(await self._member_touches(list(page.records))), page.records[-1].position)

    async def _member_touches(self, members: Sequence[NativeRecord]) -> list[Touchpoint]:
        wanted = campaigns.campaign_ids(list(members))
        found = await self._select_in(campaigns.CAMPAIGN_OBJECT, "Id", wanted) if wanted else []
        names = {r.id: r.fields for r in found}
        return [t for m in members if (t := campaigns.member_touch(m.fields, names)) is not None]

    async def owners(self) -> list[Owner]:
        """The org's users with their emails, inactive ones flagged: the people an ``OwnerId`` names."""
        allowed = await self._allowed(USER_OBJECT)
        found: list[Owner] = []
        async for batch in self._query(soql.select(allowed, ("Id", "Email", "IsActive")), all_rows=False):
            found += [Owner(str(r["Id"]), str(r.get("Email") or ""), active=bool(r.get("IsActive"))) for r in batch]
        return found

    def activity_streams(self) -> tuple[str, ...]:
        """Tasks and Events, each read as its own stream (the SLA's follow-ups)."""
        return activities.ACTIVITY_OBJECTS

    async def activity_changes(self, stream: str, since: Cursor | None) -> AsyncIterator[ActivityPage]:
        """Tasks or Events changed after ``since`` as sales activities; none where the user cannot see them."""
        if not await self._has(stream):
            return
        async for page in self.read_changes(stream, since):
            found = tuple(activities.to_activity(stream, r) for r in page.records)
            yield ActivityPage(found, page.records[-1].position)

    async def _has(self, obj: str) -> bool:
        """True when the org lets this user read ``obj`` (campaigns are a feature an org or profile may lack)."""
        try:
            await self._describe(obj)
        except ValueError:
            return False
        return True

    def limits(self, obj: str) -> Limits:
        """Salesforce meters API requests per 24 h and concurrent long requests, not requests per second."""
        return Limits(
            max_write_batch=COLLECTION_MAX,
            max_read_batch=IDS_PER_QUERY,
            page_size=min(self.settings.page_size or QUERY_BATCH_MAX, QUERY_BATCH_MAX),
            # No documented short window: this only smooths bursts; admins narrow it with requests_per_window.
            requests_per_window=100,
            window_seconds=1.0,
            max_concurrency=25,
            # The org's allocation arrives with every Sforce-Limit-Info header; an admin cap may lower it.
            daily_budget=self.settings.daily_budget or self._daily_limit,
            conditional_update_batch=COMPOSITE_MAX,
        )

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self.http.aclose()
        await self._login.aclose()


def _batch_header(batch: int | None) -> dict[str, str]:
    """The query options asking ``batch`` rows per answer (Salesforce's default, 2,000, without)."""
    return {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
