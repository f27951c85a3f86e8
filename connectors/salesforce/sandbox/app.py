"""The Salesforce REST API emulator: OAuth token endpoint, sObjects, collections, SOQL query, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from closeloop.sandbox import Refusal, SandboxBase
from closeloop.sandbox.kit import JSONAnswer, read_json

from . import conditional, soap, soql
from .org import MultipleMatches, Org, RecordRefused, SfError
from .schema import SObjectType, to_millis
from .tooling import create_custom_field

API = "/services/data/{version}"
TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
COLLECTION_MAX = 200
QUERY_BATCH_MAX = 2000
LOCATORS_KEPT = 200
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
DEFAULT_CLIENT_ID = "closeloop-sandbox"
DEFAULT_CLIENT_SECRET = "closeloop-sandbox-secret"
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
_VERSION = re.compile(r"v(\d+)\.(\d)")


COMPOSITE_MAX = 25
_ROW_URL = re.compile(r"/services/data/(?P<version>v[0-9.]+)/sobjects/(?P<sobject>\w+)/(?P<record_id>\w+)")


def errors(status: int, *items: SfError) -> JSONAnswer:
    """Salesforce's error body: a JSON list of ``{message, errorCode, fields}``."""
    return JSONAnswer([item.single() for item in items], status_code=status)


@dataclass
class _Locator:
    """A query cursor: the rows' ids and modified times at query time, served in batches.

    Two flat lists rather than a list of (id, time) pairs: a million-row read keeps 16 bytes a row, not 80.
    """

    sobject: SObjectType
    fields: tuple[str, ...]
    ids: list[str]
    stamps: list[datetime]
    batch: int
    resource: str


class SalesforceSandbox(SandboxBase):
    """An emulated Salesforce org behind the REST API subset closeloop uses."""

    vendor = "salesforce"
    trailing_slash = True  # simple-salesforce asks for query/ and limits/; Salesforce answers them as query, limits

    def __init__(self, *, seed: int = 0, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(seed=seed, clock=clock)
        # The vendor's own limits: a daily API request allocation and no short rate window to speak of.
        self.knobs.daily_limit = 100_000
        self.knobs.requests_per_window = 100_000
        self.knobs.window_s = 1.0
        self.knobs.concurrency_limit = 25
        self.knobs.token_ttl_s = 7200
        self.org = Org(self.tables, self.clock, self.now, self.rejects)
        self.oauth_clients: dict[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.jwt_clients: dict[str, tuple[bytes, set[str]]] = {}
        self.jwt_login: tuple[str, str, bytes] | None = None
        """The JWT bearer login ``credentials`` hands out: (consumer key, username, private key PEM)."""
        self.query_batch_min = 1
        """Salesforce's floor for batchSize is 200; tests may page smaller."""
        self._locators: OrderedDict[str, _Locator] = OrderedDict()
        self._locator_ids = itertools.count(1)

    def now(self) -> datetime:
        """Write stamps, to the millisecond like Salesforce's SystemModstamp."""
        return to_millis(super().now())

    # -- credentials ---------------------------------------------------------------------------------
    def register_jwt_client(self, consumer_key: str, public_key_pem: bytes, username: str) -> None:
        """Accept JWT bearer assertions from ``consumer_key``, signed by the key, for ``username``."""
        _, users = self.jwt_clients.get(consumer_key, (public_key_pem, set()))
        self.jwt_clients[consumer_key] = (public_key_pem, {*users, username})

    def credentials(self, directory: Path) -> dict[str, str]:
        """JWT bearer, as production runs: the consumer key, the user and the private key written to a file."""
        found = {"base_url": self.base_url, "auth_url": self.base_url}
        if self.jwt_login is not None:
            consumer_key, username, private_pem = self.jwt_login
            directory.mkdir(parents=True, exist_ok=True)
            key_file = directory / "salesforce-jwt-key.pem"
            key_file.write_bytes(private_pem)
            key_file.chmod(0o600)
            found |= {"client_id": consumer_key, "username": username, "private_key_file": str(key_file)}
        return found

    def authenticate(self, request: Request) -> None:
        """Bearer (or OAuth) access tokens from the token endpoint."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or self.tokens.state(token.strip()) != "ok":
            raise Refusal(errors(401, SfError("INVALID_SESSION_ID", "Session expired or invalid")))

    def is_public(self, request: Request) -> bool:
        """The token endpoint and the version list need no session; SOAP carries its session in the envelope."""
        path = request.url.path
        return path in (TOKEN_PATH, "/services/data", "/services/data/") or path.startswith("/services/Soap/")

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """Salesforce answers both the daily allocation and concurrency overflow with 403."""
        message = "TotalRequests Limit exceeded." if daily else "ConcurrentPerOrgLongTxn Limit exceeded."
        response = errors(403, SfError("REQUEST_LIMIT_EXCEEDED", message))
        response.headers.update(self.limit_headers(bucket))
        return response

    def not_found(self, request: Request) -> Response:
        """Salesforce's 404 for a resource it does not have."""
        return errors(404, SfError("NOT_FOUND", "The requested resource does not exist"))

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """Salesforce's 405, naming the methods the resource takes."""
        message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed.replace(', ', ',')}"
        return errors(405, SfError("METHOD_NOT_ALLOWED", message))

    def server_error(self, status: int) -> Response:
        """An internal failure in Salesforce's error shape."""
        if status == 500:
            return errors(
                500,
                SfError(
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include "
                    "this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
                ),
            )
        return errors(status, SfError("SERVER_UNAVAILABLE", "Service temporarily unavailable"))

    def limit_headers(self, bucket: str) -> dict[str, str]:
        """``Sforce-Limit-Info: api-usage=used/limit`` on every answer."""
        return {"Sforce-Limit-Info": f"api-usage={self.daily_used}/{self.knobs.daily_limit}"}

    # -- routes ---------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The REST API subset closeloop uses, plus a Lead Convert control."""
        return [
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route("/services/data", self.versions, methods=["GET"]),
            Route(f"{API}/limits", self.limits, methods=["GET"]),
            Route(f"{API}/query", self.query, methods=["GET"]),
            Route(f"{API}/queryAll", self.query, methods=["GET"]),
            Route(f"{API}/query/{{locator}}", self.query_more, methods=["GET"]),
            Route(f"{API}/queryAll/{{locator}}", self.query_more, methods=["GET"]),
            Route(f"{API}/sobjects", self.describe_global, methods=["GET"]),
            Route(f"{API}/sobjects/{{sobject}}/describe", self.describe, methods=["GET"]),
            Route(f"{API}/sobjects/{{sobject}}", self.create, methods=["POST"]),
            Route(f"{API}/sobjects/{{sobject}}/{{record_id}}", self.record, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{API}/sobjects/{{sobject}}/{{key}}/{{value:path}}", self.by_key, methods=["GET", "PATCH"]),
            Route(f"{API}/composite", self.composite, methods=["POST"]),
            Route(f"{API}/composite/sobjects", self.collection, methods=["POST", "PATCH", "DELETE"]),
            Route(f"{API}/composite/sobjects/{{sobject}}", self.collection_retrieve, methods=["GET", "POST"]),
            Route(f"{API}/composite/sobjects/{{sobject}}/{{key}}", self.collection_upsert, methods=["PATCH"]),
            Route(f"{API}/tooling/sobjects/CustomField", self.custom_field, methods=["POST"]),
            Route(f"{self.control_prefix}/salesforce/convert-lead", self.convert_lead, methods=["POST"]),
            Route("/services/Soap/u/{version}", self.soap, methods=["POST"]),
        ]

    # -- OAuth -----------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        """JWT bearer and client credentials grants; the answer names this org's instance URL."""
        # The form is url-encoded, as OAuth requires; parsing it here spares a multipart dependency.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = str(form.get("grant_type", ""))
        if grant == JWT_GRANT:
            refusal = self._check_assertion(str(form.get("assertion", "")))
        elif grant == "client_credentials":
            refusal = self._check_client(request, form)
        else:
            refusal = ("unsupported_grant_type", "grant type not supported")
        if refusal:
            return JSONAnswer({"error": refusal[0], "error_description": refusal[1]}, status_code=400)
        token = self.tokens.issue(self.knobs.token_ttl_s)
        issued = str(int(self.clock.now().timestamp() * 1000))
        signature = hmac.new(b"sandbox", f"{self.base_url}{issued}".encode(), hashlib.sha256).digest()
        return JSONAnswer(
            {
                "access_token": token,
                "scope": "api",
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": base64.b64encode(signature).decode(),
            }
        )

    def _check_assertion(self, assertion: str) -> tuple[str, str] | None:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        client = self.jwt_clients.get(str(claims.get("iss", "")))
        if client is None:
            return "invalid_client_id", "client identifier invalid"
        key, users = client
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=[*LOGIN_AUDIENCES, self.base_url],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        # Expiry is judged on the sandbox clock, which tests may freeze.
        if datetime.fromtimestamp(int(claims["exp"]), UTC) <= self.clock.now():
            return "invalid_grant", "expired authorization code"
        if claims["sub"] not in users:
            return "invalid_grant", "user hasn't approved this consumer"
        return None

    def _check_client(self, request: Request, form: Any) -> tuple[str, str] | None:
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        expected = self.oauth_clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, secret):
            return "invalid_client", "invalid client credentials"
        return None

    # -- resources -----------------------------------------------------------------------------------
    async def versions(self, request: Request) -> Response:
        """The API versions this org serves."""
        return JSONAnswer([{"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"}])

    async def limits(self, request: Request) -> Response:
        """``/limits``: the daily API request allocation and what is left of it."""
        if (bad := self._version(request)) is not None:
            return bad
        maximum = self.knobs.daily_limit
        return JSONAnswer(
            {
                "DailyApiRequests": {"Max": maximum, "Remaining": max(0, maximum - self.daily_used)},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            }
        )

    async def describe_global(self, request: Request) -> Response:
        """Describe Global: the sObjects of the org."""
        if (bad := self._version(request)) is not None:
            return bad
        objects = [
            {"name": o.name, "keyPrefix": o.key_prefix, "createable": o.createable, "queryable": True}
            for o in self.org.objects.values()
        ]
        return JSONAnswer({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    async def custom_field(self, request: Request) -> Response:
        """Tooling API: create a custom field (201 with ``{id, success, errors}``)."""
        if (bad := self._version(request)) is not None:
            return bad
        status, body = create_custom_field(self.org, await read_json(request))
        return JSONAnswer(body, status_code=status)

    async def describe(self, request: Request) -> Response:
        """sObject Describe."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        return JSONAnswer(found.describe(request.path_params["version"]))

    async def create(self, request: Request) -> Response:
        """POST /sobjects/{Obj}: 201 with ``{id, success, errors}``."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        try:
            row = self.org.create(found, await read_json(request))
        except RecordRefused as refused:
            return errors(refused.status, *refused.errors)
        self.stats.records_written += 1
        return JSONAnswer({"id": row.id, "success": True, "errors": []}, status_code=201)

    async def record(self, request: Request) -> Response:
        """GET, PATCH (204) or DELETE (204) one record by id."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        version = request.path_params["version"]
        record_id = request.path_params["record_id"]
        try:
            if request.method == "DELETE":
                self.org.delete(found, record_id)
                self.stats.records_written += 1
                return Response(status_code=204)
            row = self.org.row(found, record_id)
            if row is None:
                return errors(404, SfError("NOT_FOUND", "The requested resource does not exist"))
            if request.method == "GET":
                names = self._field_list(found, request.query_params.get("fields"))
                if isinstance(names, Response):
                    return names
                return JSONAnswer(found.render(row, names, version))
            conditional.check(conditional.header(request.headers), row.fields)
            self.org.update(found, row, await read_json(request))
        except RecordRefused as refused:
            return errors(refused.status, *refused.errors)
        except conditional.PreconditionFailed as failed:
            return errors(failed.status, failed.error)
        self.stats.records_written += 1
        return Response(status_code=204)

    # -- composite -------------------------------------------------------------------------------------
    async def composite(self, request: Request) -> Response:
        """POST /composite: up to 25 sObject Rows subrequests (PATCH or GET by id) in one API call.

        Each subrequest may carry ``httpHeaders`` (``If-Unmodified-Since`` is honoured); results come back in
        order under ``compositeResponse``. References between subrequests (``@{ref.id}``) are not served.
        """
        if (bad := self._version(request)) is not None:
            return bad
        body = await read_json(request)
        subrequests = body.get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            return errors(400, SfError("JSON_PARSER_ERROR", "compositeRequest is required"))
        if len(subrequests) > COMPOSITE_MAX:
            return errors(
                400, SfError("LIMIT_EXCEEDED", f"Composite requests may contain up to {COMPOSITE_MAX} subrequests")
            )
        version = request.path_params["version"]
        return JSONAnswer({"compositeResponse": [self._subrequest(version, sub) for sub in subrequests]})

    def _subrequest(self, version: str, sub: dict[str, Any]) -> dict[str, Any]:
        reference = str(sub.get("referenceId") or "")

        def answer(status: int, payload: Any = None) -> dict[str, Any]:
            return {"body": payload, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference}

        match = _ROW_URL.fullmatch(str(sub.get("url") or ""))
        method = str(sub.get("method") or "")
        if match is None or match["version"] != version or method not in ("GET", "PATCH"):
            return answer(404, [SfError("NOT_FOUND", "The requested resource does not exist").single()])
        sobject = self.org.sobject(match["sobject"])
        row = self.org.row(sobject, match["record_id"]) if sobject is not None else None
        if sobject is None or row is None:
            return answer(404, [SfError("NOT_FOUND", "The requested resource does not exist").single()])
        if method == "GET":
            return answer(200, sobject.render(row, list(sobject.fields), version))
        try:
            conditional.check(conditional.header(sub.get("httpHeaders") or {}), row.fields)
            self.org.update(sobject, row, sub.get("body") or {})
        except RecordRefused as refused:
            return answer(refused.status, [e.single() for e in refused.errors])
        except conditional.PreconditionFailed as failed:
            return answer(failed.status, [failed.error.single()])
        self.stats.records_written += 1
        return answer(204)

    async def by_key(self, request: Request) -> Response:
        """GET or upsert (PATCH) by an external-id field: 201 created, 200/204 updated, 300 several matches."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        version = request.path_params["version"]
        key = self._upsert_key(found, request.path_params["key"])
        if isinstance(key, Response):
            return key
        value = request.path_params["value"]
        if request.method == "GET":
            rows = self.org.table(found.name).find_all(key, value)
            if len(rows) > 1:
                return self._several(found, [r.id for r in rows], version)
            if not rows:
                return errors(404, SfError("NOT_FOUND", "The requested resource does not exist"))
            return JSONAnswer(found.render(rows[0], list(found.fields), version))
        try:
            row, created = self.org.upsert(found, key, value, await read_json(request))
        except MultipleMatches as several:
            return self._several(found, several.ids, version)
        except RecordRefused as refused:
            return errors(refused.status, *refused.errors)
        self.stats.records_written += 1
        body = {"id": row.id, "success": True, "errors": [], "created": created}
        if created:
            return JSONAnswer(body, status_code=201)
        # Before API version 46.0 an update by external id answered 204 without a body.
        return JSONAnswer(body) if self._version_number(version) >= 46.0 else Response(status_code=204)

    def _several(self, sobject: SObjectType, ids: list[str], version: str) -> Response:
        return JSONAnswer([f"/services/data/{version}/sobjects/{sobject.name}/{i}" for i in ids], status_code=300)

    # -- collections ---------------------------------------------------------------------------------
    async def collection(self, request: Request) -> Response:
        """POST (create), PATCH (update) or DELETE (``?ids=``) up to 200 records, one result per record."""
        if (bad := self._version(request)) is not None:
            return bad
        if request.method == "DELETE":
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
            if len(ids) > COLLECTION_MAX:
                return self._too_many()
            return JSONAnswer(self._delete_each(ids, all_or_none=all_or_none))
        body = await read_json(request)
        records = body.get("records") or []
        if len(records) > COLLECTION_MAX:
            return self._too_many()
        creating = request.method == "POST"
        results = self._save_each(records, bool(body.get("allOrNone")), lambda rec: self._save_one(rec, creating))
        return JSONAnswer(results)

    async def collection_upsert(self, request: Request) -> Response:
        """PATCH /composite/sobjects/{Obj}/{ExtIdField}: upsert up to 200 records; results carry ``created``."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        key = self._upsert_key(found, request.path_params["key"])
        if isinstance(key, Response):
            return key
        body = await read_json(request)
        records = body.get("records") or []
        if len(records) > COLLECTION_MAX:
            return self._too_many()

        def upsert(record: dict[str, Any]) -> dict[str, Any]:
            value = next((v for k, v in record.items() if k.lower() == key.lower()), None)
            if value in (None, ""):
                raise RecordRefused([SfError("MISSING_ARGUMENT", f"{key} not specified", (key,))])
            try:
                row, created = self.org.upsert(found, key, value, record)
            except MultipleMatches as several:
                raise RecordRefused(
                    [
                        SfError(
                            "DUPLICATE_EXTERNAL_ID",
                            f"{key}: more than one record found for external id field: {several.ids}",
                            (key,),
                        )
                    ]
                ) from None
            return {"id": row.id, "success": True, "errors": [], "created": created}

        return JSONAnswer(self._save_each(records, bool(body.get("allOrNone")), upsert))

    async def collection_retrieve(self, request: Request) -> Response:
        """GET ``?ids=&fields=`` or POST ``{ids, fields}``: records by id, null where none."""
        found = self._sobject(request)
        if isinstance(found, Response):
            return found
        if request.method == "POST":
            body = await read_json(request)
            ids, fields = body.get("ids") or [], ",".join(body.get("fields") or [])
        else:
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            fields = request.query_params.get("fields", "")
        names = self._field_list(found, fields or None)
        if isinstance(names, Response):
            return names
        version = request.path_params["version"]
        rows = [self.org.row(found, i) for i in ids]
        return JSONAnswer([found.render(r, names, version) if r else None for r in rows])

    def _save_one(self, record: dict[str, Any], creating: bool) -> dict[str, Any]:
        sobject = self.org.sobject(str((record.get("attributes") or {}).get("type", "")))
        if sobject is None:
            raise RecordRefused([SfError("INVALID_TYPE", "Must specify a type in attributes")])
        if creating:
            if record.get("Id"):
                raise RecordRefused([SfError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))])
            return {"id": self.org.create(sobject, record).id, "success": True, "errors": []}
        record_id = str(record.get("Id") or "")
        row = self.org.row(sobject, record_id, include_deleted=True) if record_id else None
        if row is None:
            code = "MISSING_ARGUMENT" if not record_id else "INVALID_CROSS_REFERENCE_KEY"
            raise RecordRefused(
                [
                    SfError(
                        code,
                        "Id not specified in an update call" if not record_id else "invalid cross reference id",
                        ("Id",),
                    )
                ]
            )
        if row.deleted:
            raise RecordRefused([SfError("ENTITY_IS_DELETED", "entity is deleted")])
        body = {k: v for k, v in record.items() if k != "Id"}
        return {"id": self.org.update(sobject, row, body).id, "success": True, "errors": []}

    def _save_each(
        self, records: list[dict[str, Any]], all_or_none: bool, save: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        if all_or_none:
            refusals = self._dry_run(records, save)
            if any(refusals):
                return [_rolled_back(r) for r in refusals]
        results = []
        for record in records:
            try:
                results.append(save(record))
                self.stats.records_written += 1
            except RecordRefused as refused:
                results.append({"success": False, "errors": [e.collection() for e in refused.errors]})
        return results

    def _dry_run(
        self, records: list[dict[str, Any]], save: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> list[RecordRefused | None]:
        """allOrNone: find the refusals without keeping any change (every table is restored)."""
        snapshot = {name: _table_state(table) for name, table in self.tables.items()}
        refusals: list[RecordRefused | None] = []
        for record in records:
            try:
                save(record)
                refusals.append(None)
            except RecordRefused as refused:
                refusals.append(refused)
        for name, state in snapshot.items():
            _restore(self.tables[name], state)
        return refusals

    def _delete_each(self, ids: list[str], *, all_or_none: bool) -> list[dict[str, Any]]:
        def delete(record: dict[str, Any]) -> dict[str, Any]:
            record_id = record["Id"]
            for sobject in self.org.objects.values():
                if record_id[:3] == sobject.key_prefix:
                    return {"id": self.org.delete(sobject, record_id).id, "success": True, "errors": []}
            raise RecordRefused([SfError("MALFORMED_ID", f"malformed id {record_id}")])

        results = self._save_each([{"Id": i} for i in ids], all_or_none, delete)
        for record_id, result in zip(ids, results, strict=True):
            result.setdefault("id", record_id)
        return results

    def _too_many(self) -> Response:
        return errors(
            400,
            SfError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"),
        )

    # -- query -----------------------------------------------------------------------------------------
    async def query(self, request: Request) -> Response:
        """GET /query or /queryAll ``?q=SOQL``: the first batch, and ``nextRecordsUrl`` when there is more."""
        if (bad := self._version(request)) is not None:
            return bad
        text = request.query_params.get("q")
        if not text:
            return errors(400, SfError("MALFORMED_QUERY", "A query string has to be specified"))
        resource = "queryAll" if request.url.path.rstrip("/").endswith("queryAll") else "query"
        try:
            sobject, bound, rows = self.org.query(text, include_deleted=resource == "queryAll")
        except soql.SoqlError as exc:
            return errors(400, SfError(exc.code, exc.message))
        if bound.count_only:
            return JSONAnswer({"totalSize": len(rows), "done": True, "records": []})
        locator = _Locator(
            sobject,
            bound.fields,
            [row.id for row in rows],
            [row.modified_at for row in rows],
            self._batch_size(request),
            resource,
        )
        return self._serve_batch(locator, self._remember(locator), 0, request.path_params["version"])

    async def query_more(self, request: Request) -> Response:
        """GET the next batch of a query through its ``nextRecordsUrl``."""
        if (bad := self._version(request)) is not None:
            return bad
        name, _, start = request.path_params["locator"].rpartition("-")
        locator = self._locators.get(name)
        if locator is None or not start.isdigit():
            return errors(400, SfError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        return self._serve_batch(locator, name, int(start), request.path_params["version"])

    def _serve_batch(self, locator: _Locator, name: str, start: int, version: str) -> Response:
        rows = self.tables[locator.sobject.name].rows
        end = min(start + locator.batch, len(locator.ids))
        names, render = list(locator.fields), locator.sobject.render
        records = []
        for row_id, stamp in zip(locator.ids[start:end], locator.stamps[start:end], strict=True):
            row = rows.get(row_id)
            # A record changed since the query began now sorts later; the next read finds it there.
            if row is not None and row.modified_at == stamp:
                records.append(render(row, names, version))
        end = max(start, end)
        body: dict[str, Any] = {"totalSize": len(locator.ids), "done": end >= len(locator.ids)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{version}/{locator.resource}/{name}-{end}"
        else:
            self._locators.pop(name, None)
        body["records"] = records
        return JSONAnswer(body)

    def _remember(self, locator: _Locator) -> str:
        name = f"01g{next(self._locator_ids):012d}AAA"
        self._locators[name] = locator
        while len(self._locators) > LOCATORS_KEPT:
            self._locators.popitem(last=False)
        return name

    def _batch_size(self, request: Request) -> int:
        options = request.headers.get("sforce-query-options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        if not match:
            return QUERY_BATCH_MAX
        return max(self.query_batch_min, min(QUERY_BATCH_MAX, int(match.group(1))))

    # -- control -----------------------------------------------------------------------------------------
    async def convert_lead(self, request: Request) -> Response:
        """Sandbox control: convert a lead (``{leadId, contactId?}``) as Salesforce's Lead Convert does."""
        body = await read_json(request)
        try:
            contact_id = self.org.convert_lead(str(body.get("leadId", "")), body.get("contactId"))
        except RecordRefused as refused:
            return errors(refused.status, *refused.errors)
        return JSONAnswer({"leadId": body.get("leadId"), "contactId": contact_id})

    async def soap(self, request: Request) -> Response:
        """The SOAP API's merge call (see ``soap``)."""
        return await soap.merge_endpoint(request, lambda session: self.tokens.state(session) == "ok", self.org.merge)

    # -- helpers ---------------------------------------------------------------------------------------
    def _version(self, request: Request) -> Response | None:
        if _VERSION.fullmatch(request.path_params.get("version", "")) is None:
            return errors(404, SfError("NOT_FOUND", "The requested resource does not exist"))
        return None

    @staticmethod
    def _version_number(version: str) -> float:
        return float(version[1:])

    def _sobject(self, request: Request) -> SObjectType | Response:
        if (bad := self._version(request)) is not None:
            return bad
        sobject = self.org.sobject(request.path_params["sobject"])
        if sobject is None:
            return errors(404, SfError("NOT_FOUND", "The requested resource does not exist"))
        return sobject

    def _upsert_key(self, sobject: SObjectType, name: str) -> str | Response:
        found = sobject.lookup(name)
        if found is None or (found.name not in sobject.id_lookups and found.name != "Id"):
            return errors(
                400,
                SfError(
                    "INVALID_FIELD",
                    f"Field name provided, {name} is not an External ID or indexed field for {sobject.name}",
                ),
            )
        return found.name

    def _field_list(self, sobject: SObjectType, fields: str | None) -> list[str] | Response:
        if not fields:
            return list(sobject.fields)
        names = []
        for name in (n.strip() for n in fields.split(",") if n.strip()):
            found = sobject.lookup(name)
            if found is None:
                return errors(400, SfError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject.name}'"))
            names.append(found.name)
        return names


def _rolled_back(refused: RecordRefused | None) -> dict[str, Any]:
    if refused is not None:
        return {"success": False, "errors": [e.collection() for e in refused.errors]}
    rolled = SfError(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    )
    return {"success": False, "errors": [rolled.collection()]}


def _table_state(table: Any) -> dict[str, Any]:
    import copy

    return copy.deepcopy({k: v for k, v in vars(table).items() if k not in ("clock", "new_id", "normalize")})


def _restore(table: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(table, name, value)
