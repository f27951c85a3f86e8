"""HubSpot metadata and marketing facts: properties, deal pipelines, and touchpoints from contact properties."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from closeloop.http.errors import HttpError
from closeloop.model import (
    FieldInfo,
    FieldType,
    NativeRecord,
    ObjectSchema,
    OwnedField,
    StageInfo,
    Touchpoint,
    parse_utc,
)

from . import forms
from .api import HubSpotApi

# hs_analytics_source values and the channels closeloop reports them under.
CHANNELS = {
    "ORGANIC_SEARCH": "organic_search",
    "PAID_SEARCH": "paid_search",
    "PAID_SOCIAL": "paid_social",
    "EMAIL_MARKETING": "email",
    "REFERRALS": "referral",
    "DIRECT_TRAFFIC": "direct",
    "OFFLINE": "events",
    "SOCIAL_MEDIA": "other",
    "OTHER_CAMPAIGNS": "other",
}
TOUCH_PROPERTIES = (
    "hs_analytics_source", "hs_analytics_source_data_1", "hs_analytics_source_data_2",
    "hs_analytics_first_timestamp", "hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2",
    "hs_latest_source_timestamp", "recent_conversion_event_name", "recent_conversion_date",
    "first_conversion_event_name", "first_conversion_date", "num_conversion_events", "utm_source", "utm_medium",
    "utm_campaign", "createdate",
)  # fmt: skip
_SIMPLE_TYPES = {
    "datetime": FieldType.DATETIME,
    "date": FieldType.DATE,
    "bool": FieldType.BOOLEAN,
    "enumeration": FieldType.PICKLIST,
}


def field_info(prop: Mapping[str, Any]) -> FieldInfo:
    """One property of the properties API as a FieldInfo (writability from ``modificationMetadata``)."""
    name, kind = str(prop["name"]), str(prop.get("type", "string"))
    if name == "hs_object_id":
        field_type = FieldType.ID
    elif name == "email":
        field_type = FieldType.EMAIL
    elif prop.get("fieldType") == "phonenumber":
        field_type = FieldType.PHONE
    elif kind == "number":
        field_type = FieldType.DECIMAL if prop.get("showCurrencySymbol") else FieldType.NUMBER
    else:
        field_type = _SIMPLE_TYPES.get(kind, FieldType.STRING)
    options = tuple(str(o["value"]) for o in prop.get("options") or [] if not o.get("hidden"))
    picklist = options if field_type is FieldType.PICKLIST else None
    meta = prop.get("modificationMetadata") or {}
    return FieldInfo(
        name=name,
        type=field_type,
        read_only=bool(meta.get("readOnlyValue", False)),
        picklist=picklist,
        restricted=picklist is not None,  # HubSpot refuses enumeration values outside the options
        label=str(prop.get("label", "")),
    )


def stage_info(pipeline: Mapping[str, Any], stage: Mapping[str, Any]) -> StageInfo:
    """A pipeline stage: won means closed with probability 1.0 (HubSpot's metadata values are text)."""
    meta = stage.get("metadata") or {}
    closed = str(meta.get("isClosed", "false")).lower() == "true"
    probability = float(meta["probability"]) if meta.get("probability") not in (None, "") else None
    return StageInfo(
        value=str(stage["id"]),
        label=str(stage.get("label", "")),
        is_closed=closed,
        is_won=closed and probability == 1.0,
        probability=probability,
        pipeline=str(pipeline.get("id")),
    )


# closeloop's field types as HubSpot property (type, fieldType); anything else is a text property.
PROPERTY_TYPES = {
    FieldType.NUMBER: ("number", "number"),
    FieldType.DECIMAL: ("number", "number"),
    FieldType.DATE: ("date", "date"),
    FieldType.DATETIME: ("datetime", "date"),
}
OWNED_GROUP = {"contacts": "contactinformation", "deals": "dealinformation"}


def property_create(obj: str, field: OwnedField) -> dict[str, Any]:
    """The ``POST /crm/v3/properties/{obj}`` body that creates one of closeloop's fields."""
    kind, field_type = PROPERTY_TYPES.get(field.type, ("string", "text"))
    body: dict[str, Any] = {
        "name": field.name,
        "label": field.label,
        "type": kind,
        "fieldType": field_type,
        "groupName": OWNED_GROUP[obj],
        "description": "Kept by closeloop; do not edit.",
        "hasUniqueValue": field.unique,
        "formField": False,
    }
    if field.type is FieldType.DECIMAL:
        body["numberDisplayHint"] = "currency"
    return body


async def create_properties(api: HubSpotApi, obj: str, fields: Sequence[OwnedField]) -> None:
    """Create each property; one that exists already (another replica made it) is left as it is."""
    for field in fields:
        try:
            # Safe to repeat: a property made by an attempt whose answer was lost comes back as 409 below.
            await api.post(f"/crm/v3/properties/{obj}", property_create(obj, field), idempotent=True)
        except HttpError as exc:
            if exc.status != 409:  # 409: OBJECT_ALREADY_EXISTS
                raise


async def describe(api: HubSpotApi, obj: str) -> ObjectSchema:
    """Fields from ``/crm/v3/properties/{obj}``; for deals, stages of every pipeline."""
    body = await api.get(f"/crm/v3/properties/{obj}")
    fields = {info.name: info for info in (field_info(p) for p in body.get("results", []) if not p.get("archived"))}
    stages: tuple[StageInfo, ...] = ()
    if obj == "deals":
        pipelines = (await api.get("/crm/v3/pipelines/deals")).get("results", [])
        stages = tuple(
            stage_info(p, s)
            for p in pipelines
            if not p.get("archived")
            for s in p.get("stages", [])
            if not s.get("archived")
        )
    return ObjectSchema(object=obj, fields=fields, stages=stages)


def contact_touchpoints(
    contact_id: str,
    props: Mapping[str, Any],
    since: datetime | None,
    submissions: Sequence[Mapping[str, Any]] | None = None,
) -> list[Touchpoint]:
    """Original source, latest source and form fills of a contact, each with the values of its own moment.

    The contact's UTM properties tell its original source (the first touch), so only that touch carries them;
    the latest source carries HubSpot's drill-down; each form fill carries its page's UTM values (``submissions``,
    see ``forms``). Without submissions (they could not be read), the first and recent conversions stand in,
    with no UTM values: the contact's current ones would say nothing of those moments.
    """
    found: list[Touchpoint] = []
    first_seen = _when(props.get("hs_analytics_first_timestamp")) or _when(props.get("createdate"))
    source = props.get("hs_analytics_source")
    if source and first_seen:
        utm = {k: str(props[k]) for k in ("utm_source", "utm_medium", "utm_campaign") if props.get(k)}
        detail = _drill_down(props, "hs_analytics_source")
        found.append(_touch(contact_id, first_seen, "original_source", str(source), utm, detail))
    latest, latest_at = props.get("hs_latest_source"), _when(props.get("hs_latest_source_timestamp"))
    if latest and latest_at and latest_at != first_seen:
        found.append(_touch(contact_id, latest_at, "visit", str(latest), {}, _drill_down(props, "hs_latest_source")))
    if submissions is not None:
        found += [t for s in submissions if (t := forms.submission_touch(contact_id, s)) is not None]
    else:
        found += _conversions(contact_id, props)
    return [t for t in found if since is None or t.occurred_at > since]


def _drill_down(props: Mapping[str, Any], name: str) -> str:
    return " / ".join(str(props[k]) for k in (name, f"{name}_data_1", f"{name}_data_2") if props.get(k))


def _conversions(contact_id: str, props: Mapping[str, Any]) -> list[Touchpoint]:
    conversions: dict[datetime, str] = {}
    for prefix in ("first", "recent"):
        at, name = _when(props.get(f"{prefix}_conversion_date")), props.get(f"{prefix}_conversion_event_name")
        if at and name:
            conversions[at] = str(name)  # the first and the recent conversion are often the same one
    return [Touchpoint(contact_id, at, "form_fill", detail=name) for at, name in conversions.items()]


class TouchCache:
    """The touch properties of the contacts the change stream read last, so their touchpoints need no read.

    The engine asks for a page's touchpoints right after applying it; holding the last few pages' contacts
    (never more than ``capacity``, oldest out first) answers that, and a 1,000,000-record sync keeps no more.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._props: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def remember(self, records: Iterable[NativeRecord]) -> None:
        """Keep the touch properties of these live records (archived ones have none)."""
        for record in records:
            if record.deleted:
                self._props.pop(record.id, None)
                continue
            self._props[record.id] = {k: record.fields[k] for k in TOUCH_PROPERTIES if k in record.fields}
            self._props.move_to_end(record.id)
        while len(self._props) > self.capacity:
            self._props.popitem(last=False)

    def split(self, ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The known contacts' touch properties by id, and the ids that must be read."""
        known: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for contact_id in dict.fromkeys(i for i in ids if i):
            props = self._props.get(contact_id)
            if props is None:
                missing.append(contact_id)
            else:
                known[contact_id] = props
        return known, missing

    def clear(self) -> None:
        """Forget everything (a new stream starts)."""
        self._props.clear()


def _touch(contact_id: str, at: datetime, kind: str, source: str, utm: dict[str, str], detail: str) -> Touchpoint:
    return Touchpoint(contact_id, at, kind, CHANNELS.get(source), utm.get("utm_campaign"), utm, detail or None)


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():  # older portals hand some datetimes out as epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return parse_utc(text)
