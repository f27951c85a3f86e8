"""The emulated org's modules: fields, picklists, the Deals pipeline, their metadata in Zoho's shape."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

LEAD_SOURCES = (
    "Advertisement",
    "Cold Call",
    "Employee Referral",
    "External Referral",
    "Online Store",
    "Partner",
    "Public Relations",
    "Sales Email Alias",
    "Seminar Partner",
    "Internal Seminar",
    "Trade Show",
    "Web Download",
    "Web Research",
    "Chat",
    # Orgs add their own values; the seed's paid social traffic needs one.
    "Social Media",
)
SEED_SOURCES = {
    "organic_search": "Web Research",
    "paid_search": "Advertisement",
    "paid_social": "Social Media",
    "email": "Sales Email Alias",
    "referral": "External Referral",
    "direct": "Web Download",
    "events": "Internal Seminar",
}
LEAD_STATUSES = (
    "Not Contacted",
    "Attempted to Contact",
    "Contact in Future",
    "Contacted",
    "Pre-Qualified",
    "Not Qualified",
    "Junk Lead",
    "Lost Lead",
)
LIFECYCLE_STAGES = (
    "Subscriber",
    "Lead",
    "Marketing Qualified Lead",
    "Sales Qualified Lead",
    "Opportunity",
    "Customer",
)
SEED_LIFECYCLE = dict(
    zip(("subscriber", "lead", "mql", "sql", "opportunity", "customer"), LIFECYCLE_STAGES, strict=True)
)
SEED_LEAD_STATUS = {
    "subscriber": "Not Contacted",
    "lead": "Attempted to Contact",
    "mql": "Contacted",
    "sql": "Pre-Qualified",
    "opportunity": "Pre-Qualified",
    "customer": "Pre-Qualified",
}


@dataclass(frozen=True)
class Stage:
    """One stage of the standard Deals pipeline, with Zoho's forecast metadata."""

    name: str
    probability: int
    forecast_type: str  # "Open", "Closed Won" or "Closed Lost", as the Stage picklist reports it
    forecast_category: str  # "Pipeline", "Closed" or "Omitted"


STAGES = (
    Stage("Qualification", 10, "Open", "Pipeline"),
    Stage("Needs Analysis", 20, "Open", "Pipeline"),
    Stage("Value Proposition", 40, "Open", "Pipeline"),
    Stage("Identify Decision Makers", 60, "Open", "Pipeline"),
    Stage("Proposal/Price Quote", 75, "Open", "Pipeline"),
    Stage("Negotiation/Review", 90, "Open", "Pipeline"),
    Stage("Closed Won", 100, "Closed Won", "Closed"),
    Stage("Closed Lost", 0, "Closed Lost", "Omitted"),
    Stage("Closed Lost to Competition", 0, "Closed Lost", "Omitted"),
)
SEED_STAGES = {
    "discovery": "Qualification",
    "qualified": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
CURRENCIES = ("USD", "EUR", "GBP", "INR")


@dataclass(frozen=True)
class FieldDef:
    """One field of an emulated module."""

    api_name: str
    label: str
    data_type: str  # Zoho's data_type: text, email, phone, picklist, lookup, ownerlookup, currency, date...
    json_type: str = "string"
    read_only: bool = False
    mandatory: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    lookup_module: str | None = None
    custom: bool = False


@dataclass(frozen=True)
class ModuleDef:
    """One emulated module: its fields, the field named in deletion lists, and its default duplicate check."""

    api_name: str
    fields: tuple[FieldDef, ...]
    display_field: str
    duplicate_check: tuple[str, ...]
    has_modified_time: bool = True

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (case-sensitive, as Zoho's API names are)."""
        return next((f for f in self.fields if f.api_name == name), None)

    @property
    def mandatory(self) -> tuple[str, ...]:
        """Fields a create must carry."""
        return tuple(f.api_name for f in self.fields if f.mandatory)

    @property
    def unique(self) -> tuple[str, ...]:
        """Fields whose values may appear on one record only."""
        return tuple(f.api_name for f in self.fields if f.unique)


def _system_fields(*, with_modified_time: bool = True) -> tuple[FieldDef, ...]:
    fields = [
        FieldDef("Owner", "Record Owner", "ownerlookup", "jsonobject"),
        FieldDef("Created_By", "Created By", "ownerlookup", "jsonobject", read_only=True),
        FieldDef("Created_Time", "Created Time", "datetime", read_only=True),
        FieldDef("Modified_By", "Modified By", "ownerlookup", "jsonobject", read_only=True),
    ]
    if with_modified_time:
        fields.append(FieldDef("Modified_Time", "Modified Time", "datetime", read_only=True))
    # closeloop's own fields are not here: closeloop creates them (POST /settings/fields, see custom_field)
    return tuple(fields)


def _person_fields() -> tuple[FieldDef, ...]:
    return (
        FieldDef("First_Name", "First Name", "text"),
        FieldDef("Last_Name", "Last Name", "text", mandatory=True),
        FieldDef("Full_Name", "Full Name", "text", read_only=True),
        FieldDef("Email", "Email", "email"),
        FieldDef("Phone", "Phone", "phone"),
        FieldDef("Title", "Title", "text"),
        FieldDef("Lead_Source", "Lead Source", "picklist", picklist=LEAD_SOURCES),
        FieldDef("Lifecycle_Stage", "Lifecycle Stage", "picklist", picklist=LIFECYCLE_STAGES, custom=True),
    )


LEADS = ModuleDef(
    "Leads",
    (
        *_person_fields(),
        FieldDef("Company", "Company", "text"),
        FieldDef("Lead_Status", "Lead Status", "picklist", picklist=LEAD_STATUSES),
        *_system_fields(),
    ),
    display_field="Full_Name",
    duplicate_check=("Email",),
)
CONTACTS = ModuleDef(
    "Contacts",
    (
        *_person_fields(),
        FieldDef("Account_Name", "Account Name", "lookup", "jsonobject", lookup_module="Accounts"),
        *_system_fields(),
    ),
    display_field="Full_Name",
    duplicate_check=("Email",),
)
DEALS = ModuleDef(
    "Deals",
    (
        FieldDef("Deal_Name", "Deal Name", "text", mandatory=True),
        FieldDef(
            "Stage",
            "Stage",
            "picklist",
            mandatory=True,
            picklist=tuple(s.name for s in STAGES),
            restricted=True,
        ),
        FieldDef("Amount", "Amount", "currency", "double"),
        FieldDef("Closing_Date", "Closing Date", "date"),
        FieldDef("Probability", "Probability (%)", "integer", "integer"),
        FieldDef("Lead_Source", "Lead Source", "picklist", picklist=LEAD_SOURCES),
        FieldDef("Contact_Name", "Contact Name", "lookup", "jsonobject", lookup_module="Contacts"),
        FieldDef("Account_Name", "Account Name", "lookup", "jsonobject", lookup_module="Accounts"),
        FieldDef("Currency", "Currency", "picklist", picklist=CURRENCIES),
        *_system_fields(),
    ),
    display_field="Deal_Name",
    duplicate_check=("Deal_Name",),
)
# A custom module whose layout lacks Modified_Time (airbyte#53218): readers must notice before querying.
REFERRALS = ModuleDef(
    "Partner_Referrals",
    (
        FieldDef("Name", "Referral Name", "text", mandatory=True, custom=True),
        FieldDef("Email", "Email", "email", custom=True),
        *_system_fields(with_modified_time=False),
    ),
    display_field="Name",
    duplicate_check=("Name",),
    has_modified_time=False,
)
TASK_STATUSES = ("Not Started", "Deferred", "In Progress", "Completed", "Waiting for input")
CLOSED_TASK_STATUS = "Completed"


def _who() -> FieldDef:
    # Who_Id names a contact; a lead's activities name it through What_Id with $se_module, not emulated here.
    return FieldDef("Who_Id", "Contact Name", "lookup", "jsonobject", lookup_module="Contacts")


CALLS = ModuleDef(
    "Calls",
    (
        FieldDef("Subject", "Subject", "text", mandatory=True),
        FieldDef("Call_Type", "Call Type", "picklist", picklist=("Outbound", "Inbound", "Missed"), mandatory=True),
        FieldDef("Call_Start_Time", "Call Start Time", "datetime", mandatory=True),
        FieldDef("Call_Duration", "Call Duration", "text"),
        _who(),
        *_system_fields(),
    ),
    display_field="Subject",
    duplicate_check=(),
)
TASKS = ModuleDef(
    "Tasks",
    (
        FieldDef("Subject", "Subject", "text", mandatory=True),
        FieldDef("Status", "Status", "picklist", picklist=TASK_STATUSES),
        FieldDef("Due_Date", "Due Date", "date"),
        FieldDef("Closed_Time", "Closed Time", "datetime", read_only=True),
        _who(),
        *_system_fields(),
    ),
    display_field="Subject",
    duplicate_check=(),
)
EVENTS = ModuleDef(
    "Events",
    (
        FieldDef("Event_Title", "Title", "text", mandatory=True),
        FieldDef("Start_DateTime", "From", "datetime", mandatory=True),
        FieldDef("End_DateTime", "To", "datetime", mandatory=True),
        _who(),
        *_system_fields(),
    ),
    display_field="Event_Title",
    duplicate_check=(),
)
CAMPAIGN_TYPES = ("Conference", "Webinar", "Trade Show", "Public Relations", "Partners", "Referral Program",
                  "Advertisement", "Banner Ads", "Direct mail", "Email", "Telemarketing", "Others")  # fmt: skip
CAMPAIGN_STATUSES = ("Planning", "Active", "Inactive", "Complete")
MEMBER_STATUSES = ("Planned", "Invited", "Sent", "Received", "Opened", "Responded", "Bounced", "Opted Out")
"""The member statuses of a campaign's related Leads and Contacts in a new org."""
CAMPAIGNS = ModuleDef(
    "Campaigns",
    (
        FieldDef("Campaign_Name", "Campaign Name", "text", mandatory=True),
        FieldDef("Type", "Type", "picklist", picklist=CAMPAIGN_TYPES),
        FieldDef("Status", "Status", "picklist", picklist=CAMPAIGN_STATUSES),
        FieldDef("Start_Date", "Start Date", "date"),
        FieldDef("End_Date", "End Date", "date"),
        *_system_fields(),
    ),
    display_field="Campaign_Name",
    duplicate_check=(),
)
MODULES = {m.api_name: m for m in (LEADS, CONTACTS, DEALS, REFERRALS, CALLS, TASKS, EVENTS, CAMPAIGNS)}
MODULE_IDS = {
    "Calls": "4876876000000002183",
    "Tasks": "4876876000000002185",
    "Events": "4876876000000002187",
    "Leads": "4876876000000002175",
    "Contacts": "4876876000000002179",
    "Deals": "4876876000000002181",
    "Partner_Referrals": "4876876000000310001",
    "Campaigns": "4876876000000002189",
}
LAYOUT_ID = "4876876000000091055"
PIPELINE_ID = "4876876000000091023"


def _picklist_value(value: str, index: int, stage: Stage | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "display_value": value,
        "sequence_number": index + 1,
        "reference_value": value,
        "colour_code": None,
        "actual_value": value,
        "id": f"48768760000000{index + 1:05d}",
        "type": "used",
        "show_value": True,
    }
    if stage is not None:
        entry["probability"] = stage.probability
        entry["forecast_type"] = stage.forecast_type
        entry["forecast_category"] = {"name": stage.forecast_category, "id": _category_id(stage)}
    return entry


def _category_id(stage: Stage) -> str:
    return {"Pipeline": "4876876000000001001", "Closed": "4876876000000001002"}.get(
        stage.forecast_category, "4876876000000001003"
    )


CUSTOM_TYPES = {"text": "string", "integer": "integer", "currency": "double", "double": "double",
                "date": "string", "datetime": "string", "boolean": "boolean"}  # fmt: skip
"""Data types a custom field may be created with, and the JSON type its values take."""


def custom_field(module: ModuleDef, item: object) -> FieldDef | tuple[str, str, dict[str, Any]]:
    """The field one ``POST /settings/fields`` entry creates, or Zoho's (code, message, details) refusal.

    Zoho derives a custom field's API name from its label: spaces become underscores.
    """
    if not isinstance(item, dict) or not item.get("field_label") or not item.get("data_type"):
        return "MANDATORY_NOT_FOUND", "required field not found", {"api_name": "field_label"}
    label, data_type = str(item["field_label"]), str(item["data_type"])
    if data_type not in CUSTOM_TYPES:
        return "INVALID_DATA", "invalid data", {"api_name": "data_type"}
    api_name = re.sub(r"[^A-Za-z0-9_]", "", label.strip().replace(" ", "_"))
    if not api_name or module.field(api_name) is not None or any(f.label == label for f in module.fields):
        return "DUPLICATE_DATA", "duplicate data", {"api_name": "field_label"}  # (unconfirmed) Zoho's code
    unique = isinstance(item.get("unique"), dict)
    return FieldDef(api_name, label, data_type, CUSTOM_TYPES[data_type], unique=unique, custom=True)


def field_metadata(module: ModuleDef, index: int, definition: FieldDef) -> dict[str, Any]:
    """One entry of ``GET /settings/fields``: every key Zoho's v8 field schema declares."""
    stages = {s.name: s for s in STAGES} if definition.api_name == "Stage" else {}
    lookup: dict[str, Any] | None = None
    if definition.lookup_module:
        lookup = {
            "display_label": definition.label,
            "api_name": definition.api_name,
            "module": {"api_name": definition.lookup_module, "id": MODULE_IDS.get(definition.lookup_module)},
            "id": None,
            "query_details": {},
            "revalidate_filter_during_edit": False,
            "show_fields": [],
        }
    return {
        "associated_module": None,
        "data_type": definition.data_type,
        "operation_type": {
            "web_update": not definition.read_only,
            "api_create": not definition.read_only,
            "web_create": not definition.read_only,
            "api_update": not definition.read_only,
        },
        "system_mandatory": definition.mandatory,
        "webhook": True,
        "sequence_number": index + 1,
        "default_value": "-None-" if definition.data_type == "picklist" else "",
        "blueprint_supported": False,
        "virtual_field": False,
        "field_read_only": definition.read_only,
        "customizable_properties": [],
        "read_only": definition.read_only,
        "custom_field": definition.custom,
        "businesscard_supported": False,
        "filterable": True,
        "visible": True,
        "available_in_user_layout": True,
        "display_field": definition.api_name == module.display_field,
        "pick_list_values_sorted_lexically": False,
        "sortable": True,
        "layout_associations": [{"api_name": "Standard", "name": "Standard", "id": LAYOUT_ID}],
        "separator": False,
        "searchable": True,
        "enable_colour_code": False,
        "mass_update": not definition.read_only,
        "json_type": definition.json_type,
        "created_source": "custom" if definition.custom else "default",
        "type": "used",
        "display_label": definition.label,
        "column_name": definition.api_name.upper(),
        "api_name": definition.api_name,
        "display_type": -1,
        "ui_type": 1,
        "colour_code_enabled_by_system": False,
        "length": 255,
        "decimal_place": 2 if definition.data_type == "currency" else None,
        "quick_sequence_number": str(index + 1),
        "email_parser": {"fields_update_supported": False, "record_operations_supported": False},
        "rollup_summary": None,
        "refer_from_field": {"id": None, "api_name": None},
        "created_time": None,
        "modified_time": None,
        "show_type": 7,
        "category": 0,
        "id": f"{MODULE_IDS[module.api_name][:-4]}{index + 5000:04d}",
        "multi_module_lookup": None,
        "sharing_properties": None,
        "currency": {"rounding_option": "normal", "precision": 2} if definition.json_type == "double" else None,
        "file_upolad_optionlist": [],
        "lookup": lookup,
        "profiles": [{"name": "Administrator", "id": "4876876000000026011", "permission_type": "read_write"}],
        "view_type": {"view": True, "edit": not definition.read_only, "quick_create": False, "create": True},
        "unique": {"casesensitive": "false"} if definition.unique else None,
        "sub_module": None,
        "subform": None,
        "external": {"show": False, "type": None, "allow_multiple_config": False},
        "formula": None,
        "private": {"restricted": False, "type": None, "export": True},
        "convert_mapping": {"Contacts": None, "Deals": None, "Accounts": None},
        "multiselectlookup": None,
        "multiuserlookup": {
            "display_label": None,
            "linking_module": None,
            "connected_module": None,
            "lookup_apiname": None,
            "api_name": None,
            "connectedfield_apiname": None,
            "connectedlookup_apiname": None,
            "id": None,
            "record_access": None,
        },
        "autonumber": {"starting_number_length": 0, "prefix": None, "suffix": None, "start_number": None},
        "auto_number": None,
        "pick_list_values": [
            _picklist_value(value, i, stages.get(value)) for i, value in enumerate(definition.picklist)
        ],
        "crypt": {"mode": None, "status": None},
        "tooltip": {"name": "", "value": ""},
        "history_tracking": {"module": {}, "duration_configured_field": None},
        "association_details": {"related_field": None, "lookup_field": None},
        "allowed_modules": [],
        "additional_column": None,
        "field_label": definition.label,
        "common.picklist": None,
        "hipaa_compliance_enabled": False,
        "hipaa_compliance": {"restricted_in_export": False, "restricted": False},
        "_update_existing_records": False,
        "number_separator": False,
        "textarea": {"type": "small"},
        "static_field": False,
    }


def pipeline_metadata() -> dict[str, Any]:
    """``GET /settings/pipeline``: the standard Deals pipeline with each stage's forecast type."""
    maps = [
        {
            "display_value": stage.name,
            # Zoho's schema caps sequence_number at 10 for pipeline maps.
            "sequence_number": min(i + 1, 10),
            "forecast_category": {"name": stage.forecast_category, "id": _category_id(stage)},
            "actual_value": stage.name,
            "id": f"48768760000000{i + 1:05d}",
            "colour_code": "#FFFFFF",
            "forecast_type": stage.forecast_type,
        }
        for i, stage in enumerate(STAGES)
    ]
    return {
        "pipeline": [
            {
                "display_value": "Standard",
                "default": True,
                "maps": maps,
                "actual_value": "Standard",
                "id": PIPELINE_ID,
                "child_available": False,
            }
        ]
    }
