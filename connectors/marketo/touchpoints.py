"""Marketing touchpoints of leads: the original source fields, and web visits, form fills and program status
changes from the activities API (``leadIds`` takes at most 30 ids per call)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from closeloop.model import Touchpoint, iso_utc, parse_utc
from connectors.marketo.api import MAX_BATCH, MarketoApi

VISIT_WEBPAGE, FILL_OUT_FORM, CHANGE_STATUS_IN_PROGRESSION = 1, 2, 104
KINDS = {VISIT_WEBPAGE: "web_visit", FILL_OUT_FORM: "form_fill", CHANGE_STATUS_IN_PROGRESSION: "program"}
LEADS_PER_ACTIVITY_CALL = 30
SOURCE_FIELDS = (
    "id", "updatedAt", "createdAt", "leadSource", "originalSourceType", "originalSourceInfo",
    "acquisitionProgramId", "utmSource", "utmMedium", "utmCampaign",
)  # fmt: skip
UTM_FIELDS = {"utmSource": "utm_source", "utmMedium": "utm_medium", "utmCampaign": "utm_campaign"}


async def read_touchpoints(api: MarketoApi, ids: Sequence[str], since: datetime) -> list[Touchpoint]:
    """Touchpoints of these leads since ``since``, ordered by lead and time."""
    found: list[Touchpoint] = []
    async for leads in api.leads("id", ids, SOURCE_FIELDS):
        found.extend(original_source(lead) for lead in leads if lead.get("createdAt"))
    found = [t for t in found if t.occurred_at >= since]
    if ids:
        token = (
            await api.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": iso_utc(since, millis=False)})
        )["nextPageToken"]
        for start in range(0, len(ids), LEADS_PER_ACTIVITY_CALL):
            found.extend(await _activities(api, ids[start : start + LEADS_PER_ACTIVITY_CALL], token))
    return sorted(found, key=lambda t: (t.native_id, t.occurred_at, t.kind))


async def _activities(api: MarketoApi, ids: Sequence[str], token: str) -> list[Touchpoint]:
    params = {
        "activityTypeIds": ",".join(str(k) for k in KINDS),
        "leadIds": ",".join(ids),
        "batchSize": MAX_BATCH,
        "nextPageToken": token,
    }
    found: list[Touchpoint] = []
    while True:
        body = await api.get("/rest/v1/activities.json", params)
        found.extend(activity_touchpoint(a) for a in body.get("result") or [])
        if not body.get("moreResult") or not body.get("nextPageToken"):
            return found
        params["nextPageToken"] = body["nextPageToken"]


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


def activity_touchpoint(activity: dict[str, Any]) -> Touchpoint:
    """A web visit, form fill (UTM values from its query parameters) or program status change."""
    attributes = {a.get("name"): a.get("value") for a in activity.get("attributes") or []}
    kind = KINDS.get(int(activity["activityTypeId"]), str(activity["activityTypeId"]))
    native_id, moment = str(activity["leadId"]), parse_utc(activity["activityDate"])
    if kind == "program":
        return Touchpoint(native_id, moment, kind, campaign=activity.get("primaryAttributeValue"),
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
