"""The emulated portal's metadata: property definitions of contacts and deals, and the default deal pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EPOCH = "1970-01-01T00:00:00Z"  # HubSpot reports createdAt = 0 for its default pipelines and properties


@dataclass(frozen=True)
class Prop:
    """One property definition, as the properties API describes it."""

    name: str
    label: str
    type: str  # string | number | datetime | date | enumeration | bool
    field_type: str  # text | textarea | phonenumber | number | date | select | radio | booleancheckbox
    group: str
    read_only: bool = False
    unique: bool = False
    calculated: bool = False
    hubspot_defined: bool = True
    options: tuple[tuple[str, str], ...] = ()
    currency: bool = False

    def render(self, order: int) -> dict[str, Any]:
        """The property as ``GET /crm/v3/properties/{objectType}`` returns it."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": self.group,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.options)
            ],
            "displayOrder": order,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "showCurrencySymbol": self.currency,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "archived": False,
            "createdAt": EPOCH,
            "updatedAt": EPOCH,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }


SOURCES = (
    ("ORGANIC_SEARCH", "Organic Search"),
    ("PAID_SEARCH", "Paid Search"),
    ("EMAIL_MARKETING", "Email Marketing"),
    ("SOCIAL_MEDIA", "Organic Social"),
    ("REFERRALS", "Referrals"),
    ("OTHER_CAMPAIGNS", "Other Campaigns"),
    ("DIRECT_TRAFFIC", "Direct Traffic"),
    ("OFFLINE", "Offline Sources"),
    ("PAID_SOCIAL", "Paid Social"),
)
LIFECYCLE_STAGES = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
CURRENCIES = (("USD", "US Dollar"), ("EUR", "Euro"), ("GBP", "British Pound"), ("CAD", "Canadian Dollar"))

# (id, label, probability, isClosed) of the default deal pipeline, in display order.
DEFAULT_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)


FIELD_TYPES = {
    "string": ("text", "textarea", "phonenumber", "html", "file"),
    "number": ("number", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
    "bool": ("booleancheckbox",),
}
"""Property types an app may create, with the field types each accepts."""


def property_from(body: dict[str, Any]) -> Prop | str:
    """The property a ``POST /crm/v3/properties/{objectType}`` body creates, or HubSpot's validation message."""
    missing = [key for key in ("name", "label", "type", "fieldType", "groupName") if not body.get(key)]
    if missing:
        return f"Missing required fields: {', '.join(missing)}"
    name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
    if not name.replace("_", "").isalnum() or name != name.lower() or name[0].isdigit():
        return f"Property name '{name}' must be lower case letters, digits and underscores, starting with a letter"
    if field_type not in FIELD_TYPES.get(kind, ()):
        return f"Property type '{kind}' with field type '{field_type}' is not valid"
    options = tuple((str(o.get("value")), str(o.get("label"))) for o in body.get("options") or [])
    return Prop(
        name,
        str(body["label"]),
        kind,
        field_type,
        str(body["groupName"]),
        unique=bool(body.get("hasUniqueValue")),
        hubspot_defined=False,
        options=options,
        currency=body.get("numberDisplayHint") == "currency",
    )


def _text(name: str, label: str, group: str, **kw: Any) -> Prop:
    return Prop(name, label, "string", "text", group, **kw)


def stage_date(stage: str) -> str:
    """The property in which HubSpot keeps when a contact entered lifecycle stage ``stage``."""
    return f"hs_lifecyclestage_{stage}_date"


def _datetime(name: str, label: str, group: str, **kw: Any) -> Prop:
    return Prop(name, label, "datetime", "date", group, **kw)


def _number(name: str, label: str, group: str, **kw: Any) -> Prop:
    return Prop(name, label, "number", "number", group, **kw)


_ANALYTICS = "analyticsinformation"
_CONVERSION = "conversioninformation"

CONTACT_PROPERTIES: tuple[Prop, ...] = (
    _text("email", "Email", "contactinformation"),
    _text("firstname", "First Name", "contactinformation"),
    _text("lastname", "Last Name", "contactinformation"),
    Prop("phone", "Phone Number", "string", "phonenumber", "contactinformation"),
    _text("company", "Company Name", "contactinformation"),
    _text("jobtitle", "Job Title", "contactinformation"),
    Prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation", options=LIFECYCLE_STAGES),
    # its options are the portal's active owners, kept by owners.py
    Prop("hubspot_owner_id", "Contact owner", "enumeration", "select", "sales_properties"),
    Prop(
        "hs_analytics_source",
        "Original Traffic Source",
        "enumeration",
        "select",
        _ANALYTICS,
        read_only=True,
        calculated=True,
        options=SOURCES,
    ),
    _text(
        "hs_analytics_source_data_1",
        "Original Traffic Source Drill-Down 1",
        _ANALYTICS,
        read_only=True,
        calculated=True,
    ),
    _text(
        "hs_analytics_source_data_2",
        "Original Traffic Source Drill-Down 2",
        _ANALYTICS,
        read_only=True,
        calculated=True,
    ),
    _datetime("hs_analytics_first_timestamp", "Time First Seen", _ANALYTICS, read_only=True, calculated=True),
    Prop(
        "hs_latest_source",
        "Latest Traffic Source",
        "enumeration",
        "select",
        _ANALYTICS,
        read_only=True,
        calculated=True,
        options=SOURCES,
    ),
    _text("hs_latest_source_data_1", "Latest Traffic Source Drill-Down 1", _ANALYTICS, read_only=True, calculated=True),
    _text("hs_latest_source_data_2", "Latest Traffic Source Drill-Down 2", _ANALYTICS, read_only=True, calculated=True),
    _datetime("hs_latest_source_timestamp", "Latest Traffic Source Date", _ANALYTICS, read_only=True, calculated=True),
    _text("first_conversion_event_name", "First Conversion", _CONVERSION, read_only=True, calculated=True),
    _datetime("first_conversion_date", "First Conversion Date", _CONVERSION, read_only=True, calculated=True),
    _text("recent_conversion_event_name", "Recent Conversion", _CONVERSION, read_only=True, calculated=True),
    _datetime("recent_conversion_date", "Recent Conversion Date", _CONVERSION, read_only=True, calculated=True),
    _number("num_conversion_events", "Number of Form Submissions", _CONVERSION, read_only=True, calculated=True),
    _text("utm_source", "UTM Source", _ANALYTICS, hubspot_defined=False),
    _text("utm_medium", "UTM Medium", _ANALYTICS, hubspot_defined=False),
    _text("utm_campaign", "UTM Campaign", _ANALYTICS, hubspot_defined=False),
    # the portal's own property for sales' rejection reason (the shipped contacts mapping writes it)
    _text("lead_rejection_reason", "Lead rejection reason", "sales_properties", hubspot_defined=False),
    _datetime("createdate", "Create Date", "contactinformation", read_only=True),
    _datetime("lastmodifieddate", "Last Modified Date", "contactinformation", read_only=True, calculated=True),
    _number("hs_object_id", "Record ID", "contactinformation", read_only=True, calculated=True),
    _text("hs_merged_object_ids", "Merged Record IDs", "contactinformation", read_only=True, calculated=True),
    # "Became a <stage> date": set by HubSpot when the contact enters the stage, never by a client.
    *(
        _datetime(stage_date(value), f"Became a {label} date", "contactinformation", read_only=True, calculated=True)
        for value, label in LIFECYCLE_STAGES
    ),
)

DEAL_PROPERTIES: tuple[Prop, ...] = (
    _text("dealname", "Deal Name", "dealinformation"),
    _number("amount", "Amount", "dealinformation", currency=True),
    Prop(
        "dealstage",
        "Deal Stage",
        "enumeration",
        "radio",
        "dealinformation",
        options=tuple((sid, label) for sid, label, _, _ in DEFAULT_STAGES),
    ),
    Prop("pipeline", "Pipeline", "enumeration", "select", "dealinformation", options=(("default", "Sales Pipeline"),)),
    _datetime("closedate", "Close Date", "dealinformation"),
    Prop("deal_currency_code", "Currency", "enumeration", "select", "dealinformation", options=CURRENCIES),
    Prop("description", "Deal Description", "string", "textarea", "dealinformation"),
    Prop(
        "hs_is_closed",
        "Is Deal Closed?",
        "bool",
        "booleancheckbox",
        "dealinformation",
        read_only=True,
        calculated=True,
        options=(("true", "Yes"), ("false", "No")),
    ),
    Prop(
        "hs_is_closed_won",
        "Is Closed Won",
        "bool",
        "booleancheckbox",
        "dealinformation",
        read_only=True,
        calculated=True,
        options=(("true", "Yes"), ("false", "No")),
    ),
    _datetime("createdate", "Create Date", "dealinformation", read_only=True),
    _datetime("hs_lastmodifieddate", "Last Modified Date", "dealinformation", read_only=True, calculated=True),
    _number("hs_object_id", "Record ID", "dealinformation", read_only=True, calculated=True),
    _text("hs_merged_object_ids", "Merged Deal IDs", "dealinformation", read_only=True, calculated=True),
)

# HubSpot's own properties of a new portal; an app's properties (closeloop's among them) are created through
# ``POST /crm/v3/properties/{objectType}`` into each sandbox's own copy of the catalog.
CATALOG: dict[str, dict[str, Prop]] = {
    "contacts": {p.name: p for p in CONTACT_PROPERTIES},
    "deals": {p.name: p for p in DEAL_PROPERTIES},
}
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
SEARCHABLE = {"contacts": ("email", "firstname", "lastname", "phone", "company"), "deals": ("dealname",)}
OBJECT_TYPE_IDS = {"contacts": "0-1", "deals": "0-3"}
# v4 association type ids of the HUBSPOT_DEFINED default association, per direction.
ASSOCIATION_TYPES = {("deals", "contacts"): 3, ("contacts", "deals"): 4}


def pipeline() -> dict[str, Any]:
    """The default deal pipeline as ``GET /crm/v3/pipelines/deals`` returns it."""
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "archived": False,
        "createdAt": EPOCH,
        "updatedAt": EPOCH,
        "stages": [
            {
                "id": sid,
                "label": label,
                "displayOrder": order,
                "metadata": {"isClosed": "true" if closed else "false", "probability": probability},
                "archived": False,
                "createdAt": EPOCH,
                "updatedAt": EPOCH,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for order, (sid, label, probability, closed) in enumerate(DEFAULT_STAGES)
        ],
    }


def stage_flags(stage: str | None) -> tuple[bool, bool]:
    """(is closed, is won) of a default-pipeline stage."""
    for sid, _, probability, closed in DEFAULT_STAGES:
        if sid == stage:
            return closed, closed and float(probability) == 1.0
    return False, False


# Engagements: calls, emails, meetings and tasks a sales rep logs on a contact (the SLA's follow-ups), each with
# a few of HubSpot's own properties, its object type id and its default association with contacts both ways.
def _engagement(prefix: str, *own: Prop) -> tuple[Prop, ...]:
    group = f"{prefix}_information"
    return (
        *own,
        _datetime("hs_timestamp", "Activity date", group),
        _text("hubspot_owner_id", "Activity assigned to", group),
        _datetime("hs_createdate", "Create date", group, read_only=True),
        _datetime("hs_lastmodifieddate", "Last modified date", group, read_only=True, calculated=True),
        _number("hs_object_id", "Record ID", group, read_only=True, calculated=True),
    )


def _options(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((v, v.replace("_", " ").title()) for v in values)


ENGAGEMENTS: dict[str, tuple[Prop, ...]] = {
    "calls": _engagement(
        "call",
        _text("hs_call_title", "Call title", "call_information"),
        Prop("hs_call_status", "Call status", "enumeration", "select", "call_information",
             options=_options("COMPLETED", "BUSY", "NO_ANSWER", "CONNECTING", "QUEUED", "CANCELED", "FAILED")),
    ),
    "emails": _engagement(
        "email",
        _text("hs_email_subject", "Email subject", "email_information"),
        Prop("hs_email_direction", "Email direction", "enumeration", "select", "email_information",
             options=_options("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
    ),
    "meetings": _engagement(
        "meeting",
        _text("hs_meeting_title", "Meeting name", "meeting_information"),
        _datetime("hs_meeting_start_time", "Start time", "meeting_information"),
        Prop("hs_meeting_outcome", "Meeting outcome", "enumeration", "select", "meeting_information",
             options=_options("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
    ),
    "tasks": _engagement(
        "task",
        _text("hs_task_subject", "Task title", "task_information"),
        Prop("hs_task_status", "Task status", "enumeration", "select", "task_information",
             options=_options("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        _datetime("hs_task_completion_date", "Completed at", "task_information", read_only=True),
    ),
}  # fmt: skip
ENGAGEMENT_TYPE_IDS = {"calls": "0-48", "emails": "0-49", "meetings": "0-47", "tasks": "0-27"}
ENGAGEMENT_ASSOCIATIONS = {"calls": (194, 193), "emails": (198, 197), "meetings": (200, 199), "tasks": (204, 203)}
"""Engagement -> contact and contact -> engagement default association type ids."""
for _obj, _props in ENGAGEMENTS.items():
    CATALOG[_obj] = {p.name: p for p in _props}
    MODIFIED_PROPERTY[_obj] = "hs_lastmodifieddate"
    DEFAULT_PROPERTIES[_obj] = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp")
    SEARCHABLE[_obj] = ()
    OBJECT_TYPE_IDS[_obj] = ENGAGEMENT_TYPE_IDS[_obj]
    ASSOCIATION_TYPES[(_obj, "contacts")], ASSOCIATION_TYPES[("contacts", _obj)] = ENGAGEMENT_ASSOCIATIONS[_obj]
