"""HubSpot forms in the emulator: form definitions, submissions, and the contact's submissions as the v1 API lists
them.

- ``POST /marketing/v3/forms/`` creates a form (its id is a GUID);
- ``POST /submissions/v3/integration/submit/{portalId}/{formGuid}`` (public) and ``.../secure/submit/...``
  (bearer token) submit it: ``fields[] {objectTypeId, name, value}``, ``context {pageUri, pageName}``, optional
  ``submittedAt`` (epoch milliseconds). The contact of the submitted email is created or updated, and HubSpot's
  conversion properties (first and recent conversion, their dates, the count) follow the submission;
- ``GET /contacts/v1/contact/vids/batch/?vid=..&formSubmissionMode=all|newest|oldest|none`` lists contacts (at
  most 100 vids; unknown ones are left out) with their ``form-submissions``, newest first.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from closeloop.model import iso_utc, parse_utc
from closeloop.sandbox.kit import JSONAnswer

from .answers import error, validation_message

if TYPE_CHECKING:
    from .app import HubSpotSandbox

PORTAL_ID = 62515
MAX_VIDS = 100
CONTACT_TYPE = "0-1"


@dataclass
class Forms:
    """The portal's forms and each contact's submissions (newest last)."""

    sandbox: HubSpotSandbox
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: random.Random = field(default_factory=lambda: random.Random(0xF0A5))
    """GUIDs of its own, so the sandbox's fault dice roll as they would without forms."""

    def guid(self) -> str:
        """A GUID, the same sequence on every run."""
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    async def create(self, request: Request) -> Response:
        """``POST /marketing/v3/forms/``: a form with a name; its GUID and stamps come back."""
        body = await self.sandbox._json(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return error(400, "Invalid input JSON: 'name' is required", "VALIDATION_ERROR")
        stamp = iso_utc(self.sandbox.now())
        form: dict[str, Any] = {"id": self.guid(), "name": name,
                "formType": body.get("formType") or "hubspot", "createdAt": stamp, "updatedAt": stamp,
                "archived": False}  # fmt: skip
        self.forms[form["id"]] = form
        return JSONAnswer(form, status_code=201)

    async def submit(self, request: Request) -> Response:
        """Record a submission on the contact of its email (created when new), as HubSpot does."""
        form = self.forms.get(request.path_params["form_guid"])
        if form is None or str(request.path_params["portal_id"]) != str(PORTAL_ID):
            return _submit_error(404, "The form could not be found.", "FORM_NOT_FOUND")
        body = await self.sandbox._json(request)
        values = {str(f.get("name")): f.get("value") for f in body.get("fields") or [] if isinstance(f, dict)
                  if f.get("objectTypeId", CONTACT_TYPE) == CONTACT_TYPE}  # fmt: skip
        email = str(values.get("email") or "").strip().lower()
        if "@" not in email:
            return _submit_error(400, "The request is not valid", "INVALID_EMAIL")
        clean, problems = self.sandbox._check("contacts", values)
        if problems:
            return _submit_error(400, validation_message(problems), "INVALID_PROPERTY")
        at = _submitted_at(body.get("submittedAt")) or self.sandbox.now()
        row, clash = self.sandbox._store("contacts", clean, self.sandbox.table("contacts").find("email", email))
        if row is None:
            return _submit_error(409, str(clash), "CONFLICT")
        context = body.get("context") or {}
        self._record(row.id, form, at, str(context.get("pageUri") or ""), str(context.get("pageName") or ""))
        return JSONAnswer({"inlineMessage": "Thanks for submitting the form."})

    def _record(self, contact_id: str, form: dict[str, Any], at: datetime, page: str, title: str) -> None:
        mine = self.submissions.setdefault(contact_id, [])
        mine.append({"conversion-id": self.guid(),
                     "timestamp": int(at.timestamp() * 1000), "form-id": form["id"], "portal-id": PORTAL_ID,
                     "page-url": page, "canonical-url": page.split("?")[0], "page-title": title,
                     "title": form["name"], "form-type": "HUBSPOT", "meta-data": []})  # fmt: skip
        stamp = iso_utc(at)
        table = self.sandbox.table("contacts")
        row = table.get(contact_id)
        assert row is not None
        conversion = {"recent_conversion_event_name": form["name"], "recent_conversion_date": stamp,
                      "num_conversion_events": str(len(mine))}  # fmt: skip
        if not row.fields.get("first_conversion_date"):
            conversion |= {"first_conversion_event_name": form["name"], "first_conversion_date": stamp}
        table.update(contact_id, conversion, at=self.sandbox.now())

    def absorb(self, loser_id: str, winner_id: str) -> None:
        """A merge gives the winner the loser's submissions, in time order."""
        moved = self.submissions.pop(loser_id, [])
        if moved:
            merged = [*self.submissions.get(winner_id, []), *moved]
            self.submissions[winner_id] = sorted(merged, key=lambda s: s["timestamp"])

    async def contacts_batch(self, request: Request) -> Response:
        """``GET /contacts/v1/contact/vids/batch/``: the live contacts asked for, with their submissions."""
        vids = request.query_params.getlist("vid")
        if len(vids) > MAX_VIDS:
            return error(400, f"at most {MAX_VIDS} vids per request", "VALIDATION_ERROR")
        mode = request.query_params.get("formSubmissionMode", "newest")
        wanted = request.query_params.getlist("property")
        found: dict[str, Any] = {}
        for vid in dict.fromkeys(vids):
            row = self.sandbox.table("contacts").get(vid)
            if row is None or row.deleted:
                continue
            names = wanted or [k for k, v in row.fields.items() if v not in (None, "")]
            properties = {n: {"value": t} for n in names if (t := self.sandbox.value_text("contacts", row, n))}
            submitted = self.submissions.get(vid) or seeded_submission(row.id, row.fields)
            found[vid] = {"vid": int(vid), "canonical-vid": int(vid), "merged-vids": [], "portal-id": PORTAL_ID,
                          "is-contact": True, "properties": properties,
                          "form-submissions": _by_mode(submitted, mode)}  # fmt: skip
        return JSONAnswer(found)


def seeded_submission(contact_id: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The submission behind a seeded contact's first conversion, worked out from its properties when asked (a
    million seeded contacts keep no submission objects): the form on a landing page tagged with its UTM values."""
    name, at = fields.get("first_conversion_event_name"), fields.get("first_conversion_date")
    if not name or not at:
        return []
    utm = {k: str(fields[k]) for k in ("utm_source", "utm_medium", "utm_campaign") if fields.get(k)}
    page = "https://www.example.com/landing" + (f"?{urlencode(utm)}" if utm else "")
    stamp = int(parse_utc(str(at)).timestamp() * 1000)
    return [{"conversion-id": f"seed-{contact_id}", "timestamp": stamp, "form-id": "seed-form", "portal-id": PORTAL_ID,
             "page-url": page, "canonical-url": page.split("?")[0], "page-title": "Landing page", "title": name,
             "form-type": "HUBSPOT", "meta-data": []}]  # fmt: skip


def _by_mode(submissions: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    newest_first = sorted(submissions, key=lambda s: s["timestamp"], reverse=True)
    if mode == "all":
        return newest_first
    if mode == "none" or not newest_first:
        return []
    return [newest_first[0] if mode == "newest" else newest_first[-1]]


def _submitted_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, UTC)
    except ValueError:
        return None


def _submit_error(status: int, message: str, kind: str) -> JSONAnswer:
    """The Forms API's error body: a status, a message and typed ``errors[]``."""
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "errors": [{"message": message, "errorType": kind}]}  # fmt: skip
    return JSONAnswer(body, status_code=status)
