"""Touchpoints of prospects: the original source on the prospect, and visitor activities (page views, form
fills, email clicks) with their time and campaign.

v5 filters visitor activities by ranges, not lists: activities are read by prospect-id ranges and the rows of
prospects not asked for are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from closeloop.model import Touchpoint, parse_utc

from .api import PardotApi
from .fields import ACTIVITY_FIELDS, CLICK, FORM_SUCCESS, VIEW
from .reads import id_ranges, moment

SOURCE_FIELDS = (
    "id", "createdAt", "source", "sourceParameter", "mediumParameter", "campaignParameter", "campaign.name",
    "firstReferrerUrl",
)  # fmt: skip
UTM_FIELDS = {"sourceParameter": "utm_source", "mediumParameter": "utm_medium", "campaignParameter": "utm_campaign"}


async def read_touchpoints(
    api: PardotApi, ids: Sequence[str], since: datetime | None, types: Sequence[int]
) -> list[Touchpoint]:
    """Touchpoints of these prospects (since ``since`` when given), ordered by prospect and time."""
    wanted = set(ids)
    found: list[Touchpoint] = []
    for low, high in id_ranges(ids):
        bounds = {"idGreaterThanOrEqualTo": low, "idLessThanOrEqualTo": high, "limit": 1000}
        async for page in api.query("prospects", SOURCE_FIELDS, bounds):
            found.extend(original_source(p) for p in page.values if str(p["id"]) in wanted and p.get("createdAt"))
        params: dict[str, Any] = {
            "prospectIdGreaterThanOrEqualTo": low,
            "prospectIdLessThanOrEqualTo": high,
            "typeLessThanOrEqualTo": max(types),
            "orderBy": "id ASC",
            "limit": 1000,
        }
        if since is not None:
            params["createdAtAfterOrEqualTo"] = moment(since)
        async for page in api.query("visitor-activities", ACTIVITY_FIELDS, params):
            found.extend(
                activity_touchpoint(a) for a in page.values if str(a.get("prospectId")) in wanted and a["type"] in types
            )
    if since is not None:
        found = [t for t in found if t.occurred_at >= since]
    return sorted(found, key=lambda t: (t.native_id, t.occurred_at, t.kind))


def original_source(prospect: Mapping[str, Any]) -> Touchpoint:
    """The prospect's first touch: its source, first-touch UTM parameters and source campaign."""
    utm = {key: str(prospect[name]) for name, key in UTM_FIELDS.items() if prospect.get(name)}
    return Touchpoint(
        native_id=str(prospect["id"]),
        occurred_at=parse_utc(str(prospect["createdAt"])),
        kind="original_source",
        channel=prospect.get("source"),
        campaign=utm.get("utm_campaign") or prospect.get("campaign.name"),
        utm=utm,
        detail=prospect.get("firstReferrerUrl") or prospect.get("source"),
    )


def activity_touchpoint(activity: Mapping[str, Any]) -> Touchpoint:
    """A page view (visit), form fill or email click, at its own time, with its campaign and any UTM values."""
    kind = activity_kind(activity)
    utm = utm_values(str(activity.get("details") or ""))
    return Touchpoint(
        native_id=str(activity["prospectId"]),
        occurred_at=parse_utc(str(activity["createdAt"])),
        kind=kind,
        channel="email" if kind == "email_click" else utm.get("utm_medium"),
        campaign=activity.get("campaign.name") or utm.get("utm_campaign"),
        utm=utm,
        detail=activity.get("details") or activity.get("typeName"),
    )


def activity_kind(activity: Mapping[str, Any]) -> str:
    """visit (page view), form_fill (form or form handler success), email_click, or the type name."""
    kind = activity.get("type")
    if kind == VIEW:
        return "visit"
    if kind == FORM_SUCCESS and (
        activity.get("formId") or activity.get("formHandlerId") or activity.get("landingPageId")
    ):
        return "form_fill"
    if kind == CLICK and (activity.get("emailId") or activity.get("listEmailId")):
        return "email_click"
    return str(activity.get("typeName") or kind).lower().replace(" ", "_")


def utm_values(details: str) -> dict[str, str]:
    """``utm_*`` pairs of a URL in an activity's details (page views carry the page's address)."""
    if "://" not in details:
        return {}
    return {k: v for k, v in parse_qsl(urlsplit(details).query) if k.startswith("utm_") and v}
