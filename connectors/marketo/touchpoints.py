"""Marketing touchpoints of leads: the original source fields, and web visits, form fills and program status
changes from the activities API (``leadIds`` takes at most 30 ids per call)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from closeloop.http.paging import TokenPaginator, paginate
from closeloop.model import Cursor, TouchPage, Touchpoint, iso_utc, parse_utc

from .api import MAX_BATCH, MORE_RESULT, NEXT_TOKEN, MarketoApi, MarketoError

log = logging.getLogger(__name__)

VISIT_WEBPAGE, FILL_OUT_FORM, CHANGE_STATUS_IN_PROGRESSION = 1, 2, 104
KINDS = {VISIT_WEBPAGE: "web_visit", FILL_OUT_FORM: "form_fill", CHANGE_STATUS_IN_PROGRESSION: "program"}
LEADS_PER_ACTIVITY_CALL = 30
SOURCE_FIELDS = (
    "id", "updatedAt", "createdAt", "leadSource", "originalSourceType", "originalSourceInfo",
    "acquisitionProgramId", "utmSource", "utmMedium", "utmCampaign",
)  # fmt: skip
UTM_FIELDS = {"utmSource": "utm_source", "utmMedium": "utm_medium", "utmCampaign": "utm_campaign"}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Channels of Marketo programs (as a new instance lists them) and the channels closeloop reports them under;
# a program of another channel keeps none.
PROGRAM_CHANNELS = {
    "Webinar": "events",
    "Tradeshow": "events",
    "Roadshow": "events",
    "Event": "events",
    "Email Blast": "email",
    "Email Send": "email",
    "Nurture": "email",
    "Online Advertising": "paid_search",
    "PPC": "paid_search",
    "Paid Social": "paid_social",
    "Referral": "referral",
}


async def read_touchpoints(api: MarketoApi, ids: Sequence[str], since: datetime) -> list[Touchpoint]:
    """Touchpoints of these leads since ``since``, ordered by lead and time."""
    found: list[Touchpoint] = []
    async for leads in api.leads("id", ids, SOURCE_FIELDS):
        found.extend(original_source(lead) for lead in leads if lead.get("createdAt"))
    found = [t for t in found if t.occurred_at >= since]
    if ids:
        token = await _token(api, since)
        activities: list[dict[str, Any]] = []
        for start in range(0, len(ids), LEADS_PER_ACTIVITY_CALL):
            async for page in _activities(api, token, ids[start : start + LEADS_PER_ACTIVITY_CALL]):
                activities += page
        found += await activity_touchpoints(api, activities)
    return sorted(found, key=lambda t: (t.native_id, t.occurred_at, t.kind))


async def touch_changes(api: MarketoApi, since: Cursor | None) -> AsyncIterator[TouchPage]:
    """Every lead's web visits, form fills and program status changes logged after ``since``, a page at a time:
    a program status change leaves the lead itself unchanged, so only the activity log tells it."""
    start = since.modified_at if since is not None else EPOCH
    async for page in _activities(api, await _token(api, start), ()):
        # the token is to the second: what the cursor already passed within that second is left out
        after = [a for a in page if since is None or since < _position(a)]
        if after:
            yield TouchPage(tuple(await activity_touchpoints(api, after)), _position(after[-1]))


def _position(activity: Mapping[str, Any]) -> Cursor:
    """An activity's place in the log: (activityDate, id), the id zero-padded so that text order is number order."""
    return Cursor(parse_utc(activity["activityDate"]), f"{int(activity['id']):015d}")


async def _token(api: MarketoApi, since: datetime) -> str:
    body = await api.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": iso_utc(since, millis=False)})
    return str(body["nextPageToken"])


async def _activities(api: MarketoApi, token: str, ids: Sequence[str]) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the touch activities after ``token`` (of these leads, or of every lead when none are named)."""
    params = {"activityTypeIds": ",".join(str(k) for k in KINDS), "batchSize": MAX_BATCH, "nextPageToken": token}
    if ids:
        params["leadIds"] = ",".join(ids)
    pages = TokenPaginator(params, NEXT_TOKEN, "nextPageToken", more_at=MORE_RESULT)
    async for body in paginate(partial(api.get, "/rest/v1/activities.json"), pages):
        yield list(body.get("result") or [])


async def activity_touchpoints(api: MarketoApi, activities: Sequence[dict[str, Any]]) -> list[Touchpoint]:
    """The activities as touches; program status changes take their program's channel (one Asset API call)."""
    programs = {int(a["primaryAttributeValueId"]) for a in activities
                if KINDS.get(int(a["activityTypeId"])) == "program" and a.get("primaryAttributeValueId")}  # fmt: skip
    channels = await program_channels(api, sorted(programs)) if programs else {}
    return [activity_touchpoint(a, channels) for a in activities]


async def program_channels(api: MarketoApi, ids: Sequence[int]) -> dict[int, str]:
    """Each program's channel by the Asset API; none when the API user may not read programs."""
    found: dict[int, str] = {}
    for start in range(0, len(ids), MAX_BATCH):
        params = {"filterType": "id", "filterValues": ",".join(str(i) for i in ids[start : start + MAX_BATCH])}
        try:
            body = await api.get("/rest/asset/v1/programs.json", params)
        except MarketoError as exc:
            log.warning("Marketo program channels not read (%s): program touches keep no channel", exc)
            return found
        found |= {int(p["id"]): str(p.get("channel") or "") for p in body.get("result") or []}
    return found


def original_source(lead: dict[str, Any]) -> Touchpoint:
    """The lead's first touch, from its original source and UTM fields."""
    utm = {key: str(lead[name]) for name, key in UTM_FIELDS.items() if lead.get(name)}
    return Touchpoint(
        native_id=str(lead["id"]),
        occurred_at=parse_utc(lead["createdAt"]),
        kind="original_source",
        channel=lead.get("leadSource") or lead.get("originalSourceType"),
        campaign=utm.get("utm_campaign"),
        utm=utm,
        detail=lead.get("originalSourceInfo") or lead.get("originalSourceType"),
    )


def activity_touchpoint(activity: dict[str, Any], channels: Mapping[int, str] | None = None) -> Touchpoint:
    """A web visit, form fill (UTM values from its query parameters) or program status change (its program's
    name as the campaign, its channel, and the new status)."""
    attributes = {a.get("name"): a.get("value") for a in activity.get("attributes") or []}
    kind = KINDS.get(int(activity["activityTypeId"]), str(activity["activityTypeId"]))
    native_id, moment = str(activity["leadId"]), parse_utc(activity["activityDate"])
    if kind == "program":
        channel = (channels or {}).get(int(activity.get("primaryAttributeValueId") or 0), "")
        return Touchpoint(native_id, moment, kind, channel=PROGRAM_CHANNELS.get(channel),
                          campaign=activity.get("primaryAttributeValue"),
                          detail=str(attributes.get("New Status") or "") or None)  # fmt: skip
    utm = utm_values(attributes)
    return Touchpoint(
        native_id,
        moment,
        kind,
        channel=utm.get("utm_medium"),
        campaign=utm.get("utm_campaign"),
        utm=utm,
        detail=activity.get("primaryAttributeValue"),
    )


def utm_values(attributes: dict[str, Any]) -> dict[str, str]:
    """``utm_*`` pairs from the Query Parameters attribute, else from the page or referrer URL."""
    for name in ("Query Parameters", "Webpage URL", "Referrer URL"):
        raw = str(attributes.get(name) or "")
        query = urlsplit(raw).query if "://" in raw else raw
        pairs = {k: v for k, v in parse_qsl(query) if k.startswith("utm_") and v}
        if pairs:
            return pairs
    return {}
