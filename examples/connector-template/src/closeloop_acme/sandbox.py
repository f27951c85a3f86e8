"""An emulator of Acme's API on closeloop's sandbox kit: the kit brings limits, faults, knobs and counters."""

from __future__ import annotations

from typing import Any

from closeloop.model import Cursor, parse_utc
from closeloop.sandbox import RecordTable, Refusal, Row, SandboxBase, Seeder, sequential_ids
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

API_KEY = "acme-sandbox-key"  # the emulator's fixed, public test key
FIELDS = {"email": "email", "first_name": "string", "last_name": "string"}


def person(row: Row) -> dict[str, Any]:
    """A row as Acme answers it."""
    return {**row.fields, "id": row.id, "updated_at": row.modified_at.isoformat(), "deleted": row.deleted}


class AcmeSandbox(SandboxBase):
    """Acme's people API: a change feed by keyset token, reads by id, search, upsert by email, schema."""

    vendor = "acme"

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.tables["people"] = RecordTable("people", self.clock, sequential_ids("", 1, 8), unique=("email",))

    def routes(self) -> list[BaseRoute]:
        """Acme's endpoints."""
        return [
            Route("/v1/{obj}/changes", self.changes),
            Route("/v1/schema/{obj}", self.schema),
            Route("/v1/{obj}/search", self.search, methods=["POST"]),
            Route("/v1/{obj}/upsert", self.upsert, methods=["POST"]),
            Route("/v1/{obj}", self.read),
        ]

    def authenticate(self, request: Request) -> None:
        """A bearer API key."""
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            raise Refusal(JSONResponse({"message": "invalid API key"}, status_code=401))

    async def changes(self, request: Request) -> Response:
        """Rows after the ``after`` token ("<updated_at>|<id>") in (updated_at, id) order, deleted ones too."""
        table = self.table(request.path_params["obj"])
        limit = int(request.query_params.get("limit", "100"))
        after = _position(request.query_params.get("after"))
        rows = []
        for row in table.changed_after(after, include_deleted=True):
            rows.append(row)
            if len(rows) > limit:
                break
        body: dict[str, Any] = {"results": [person(r) for r in rows[:limit]]}
        if len(rows) > limit:
            body["next"] = f"{rows[limit - 1].modified_at.isoformat()}|{rows[limit - 1].id}"
        return JSONResponse(body)

    async def read(self, request: Request) -> Response:
        """Live rows by id."""
        table = self.table(request.path_params["obj"])
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        rows = [row for row in map(table.get, ids) if row is not None]
        return JSONResponse({"results": [person(r) for r in rows]})

    async def search(self, request: Request) -> Response:
        """Live rows whose unique field equals a value, case-insensitively."""
        table = self.table(request.path_params["obj"])
        body = await request.json()
        rows = [row for row in (table.find(body["field"], v) for v in body["values"]) if row is not None]
        return JSONResponse({"results": [person(r) for r in rows]})

    async def upsert(self, request: Request) -> Response:
        """Each record updated when its email exists, else created; a refused one says which field."""
        table = self.table(request.path_params["obj"])
        results: list[dict[str, Any]] = []
        for fields in (await request.json())["records"]:
            refused = self.rejects(fields)
            if refused is not None:
                error = {"code": "INVALID_VALUE", "field": refused, "message": f"{refused} is not valid"}
                results.append({"error": error})
                continue
            existing = table.find("email", fields.get("email"))
            row = table.update(existing.id, fields) if existing else table.insert(fields)
            results.append({"id": row.id, "created": existing is None})
        return JSONResponse({"results": results})

    async def schema(self, request: Request) -> Response:
        """The object's fields."""
        return JSONResponse({"fields": [{"name": name, "type": kind} for name, kind in FIELDS.items()]})


def _position(token: str | None) -> Cursor | None:
    if not token:
        return None
    moment, _, row_id = token.partition("|")
    return Cursor(parse_utc(moment), row_id)


def create_sandbox(seed: int = 0, people: int = 0) -> AcmeSandbox:
    """An Acme sandbox seeded with ``people`` people."""
    sandbox = AcmeSandbox(seed=seed)
    for someone in Seeder(seed).people(people):
        sandbox.table("people").insert(
            {"email": someone.email, "first_name": someone.first_name, "last_name": someone.last_name}
        )
    return sandbox
