"""HubSpot-shaped answers: error bodies, batch envelopes, and the table that records merges like HubSpot."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from closeloop.model import iso_utc
from closeloop.sandbox import RecordTable, Row
from closeloop.sandbox.kit import JSONAnswer, Refusal

Problem = tuple[str, str, str]
"""(property name, HubSpot error code, message) of one invalid property value."""


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """The body of a whole-request error, as every HubSpot v3 endpoint answers it."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def error(status: int, message: str, category: str, **extra: Any) -> JSONAnswer:
    """A whole-request error response."""
    return JSONAnswer(error_body(message, category, **extra), status_code=status)


def refuse(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> Refusal:
    """An exception a handler raises to answer with a HubSpot error."""
    return Refusal(error(status, message, category, **extra))


def validation_message(problems: Sequence[Problem]) -> str:
    """HubSpot's message for invalid property values: a JSON list inside the text."""
    details = [
        {"isValid": False, "message": message, "error": code, "name": name, "localizedErrorMessage": message}
        for name, code, message in problems
    ]
    return f"Property values were not valid: {json.dumps(details, separators=(',', ':'))}"


def validation_details(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """The ``errors[]`` entries of a validation error."""
    return [
        {"message": message, "code": code, "in": name, "context": {"propertyName": [name]}}
        for name, code, message in problems
    ]


def record_error(
    category: str, message: str, *, trace: str | None = None, ids: Sequence[str] = (), **context: list[str]
) -> dict[str, Any]:
    """One entry of a batch's ``errors[]`` (a StandardError); the trace id ties it to its input."""
    ctx: dict[str, list[str]] = dict(context)
    if trace is not None:
        ctx["objectWriteTraceId"] = [trace]
    if ids:
        ctx["ids"] = list(ids)
    return {"status": "error", "category": category, "message": message, "context": ctx, "errors": [], "links": {}}


def invalid_record(problems: Sequence[Problem], trace: str | None, record_id: str | None) -> dict[str, Any]:
    """The batch error of one record whose property values were refused."""
    body = record_error(
        "VALIDATION_ERROR", validation_message(problems), trace=trace, ids=[record_id] if record_id else ()
    )
    body["errors"] = validation_details(problems)
    return body


def batch(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: datetime, *, ok_status: int = 200
) -> JSONAnswer:
    """A batch answer: ``ok_status`` when every input succeeded, 207 with ``errors``/``numErrors`` otherwise."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso_utc(started),
        "startedAt": iso_utc(started),
        "completedAt": iso_utc(started),
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return JSONAnswer(body, status_code=207 if errors else ok_status)


class HubSpotTable(RecordTable):
    """A record table whose merge leaves ``hs_merged_object_ids`` on the winner, as HubSpot does.

    It also knows whether its ids' text order is their number order (decimal, one width, no leading zero: what
    the sandbox hands out), which lets searches sorted by id read the (modified, id) index in order.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_widths: set[int] = set()
        self._odd_ids = False

    def insert(
        self,
        fields: Mapping[str, Any],
        *,
        row_id: str | None = None,
        at: datetime | None = None,
        modified: datetime | None = None,
    ) -> Row:
        """Insert, noting the id's shape; ``modified`` seeds a record changed since its creation ``at``."""
        row = super().insert(fields, row_id=row_id, at=at)
        if modified is not None:
            self._move(row, modified)
        if len(row.id) not in self._id_widths:
            self._id_widths.add(len(row.id))
        if not (row.id.isdigit() and row.id.isascii() and row.id[0] != "0"):
            self._odd_ids = True
        return row

    def ids_in_number_order(self) -> bool:
        """Whether sorting ids as text sorts them as numbers."""
        return len(self._id_widths) <= 1 and not self._odd_ids

    def merge(self, loser_id: str, winner_id: str, *, at: datetime | None = None) -> Row:
        """Archive the loser and list it (and whatever it had absorbed) in the winner's merged ids."""
        absorbed = _ids(self.rows[loser_id].fields.get("hs_merged_object_ids"))
        before = _ids(self.rows[winner_id].fields.get("hs_merged_object_ids"))
        winner = super().merge(loser_id, winner_id, at=at)
        merged = [*before, *(i for i in [loser_id, *absorbed] if i not in before)]
        winner.fields["hs_merged_object_ids"] = ";".join(merged)
        self._index_unique(winner)  # fields copied from the loser may include a unique value
        return winner


def _ids(text: Any) -> list[str]:
    return [part for part in str(text or "").split(";") if part]
