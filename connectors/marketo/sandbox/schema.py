"""The lead fields and activity types of the emulated Marketo instance, as its describe endpoints say."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LeadField:
    """One lead field: REST name, Marketo data type, display name, and whether the API may write it."""

    id: int
    name: str
    data_type: str
    display_name: str
    read_only: bool = False
    length: int | None = None

    def describe(self) -> dict[str, Any]:
        """The field as ``/rest/v1/leads/describe.json`` lists it."""
        item: dict[str, Any] = {
            "id": self.id,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "rest": {"name": self.name, "readOnly": self.read_only},
            "soap": {"name": self.display_name.replace(" ", ""), "readOnly": self.read_only},
        }
        if self.length is not None:
            item["length"] = self.length
        return item

    def describe2(self) -> dict[str, Any]:
        """The field as ``/rest/v1/leads/describe2.json`` lists it."""
        item: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "updateable": not self.read_only,
            "crmManaged": False,
        }
        if self.length is not None:
            item["length"] = self.length
        return item


_FIELDS = (
    LeadField(1, "id", "integer", "Id", read_only=True),
    LeadField(2, "email", "email", "Email Address", length=255),
    LeadField(3, "firstName", "string", "First Name", length=255),
    LeadField(4, "lastName", "string", "Last Name", length=255),
    LeadField(5, "phone", "phone", "Phone Number", length=255),
    LeadField(6, "company", "string", "Company Name", length=255),
    LeadField(7, "title", "string", "Job Title", length=255),
    LeadField(8, "leadSource", "string", "Person Source", length=255),
    LeadField(9, "originalSourceType", "string", "Original Source Type", read_only=True, length=255),
    LeadField(10, "originalSourceInfo", "string", "Original Source Info", read_only=True, length=255),
    LeadField(11, "acquisitionProgramId", "integer", "Acquisition Program Id"),
    LeadField(12, "leadStatus", "string", "Lead Status", length=255),
    LeadField(13, "lifecycleStage", "string", "Lifecycle Stage", length=255),
    LeadField(14, "utmSource", "string", "UTM Source", length=255),
    LeadField(15, "utmMedium", "string", "UTM Medium", length=255),
    LeadField(16, "utmCampaign", "string", "UTM Campaign", length=255),
    LeadField(17, "createdAt", "datetime", "Created At", read_only=True),
    LeadField(18, "updatedAt", "datetime", "Updated At", read_only=True),
    # The lead owner, by email: an instance without a CRM sync keeps these as plain fields.
    LeadField(19, "leadOwnerEmail", "email", "Lead Owner Email Address", length=255),
    LeadField(20, "leadOwnerFirstName", "string", "Lead Owner First Name", length=255),
    LeadField(21, "leadOwnerLastName", "string", "Lead Owner Last Name", length=255),
)
LEAD_FIELDS: dict[str, LeadField] = {f.name: f for f in _FIELDS}
"""The standard fields of a new instance; custom ones (closeloop's among them) are created through
``POST /rest/v1/leads/schema/fields.json`` into each sandbox's own copy."""
CUSTOM_TYPES = ("boolean", "currency", "date", "datetime", "email", "float", "integer", "percent", "phone", "score",
                "string", "url")  # fmt: skip
"""The data types Create Lead Fields accepts."""
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def custom_field(item: object, known: dict[str, LeadField]) -> LeadField | tuple[int, str]:
    """The lead field one Create Lead Fields input makes, or the reason (code, message) it is skipped."""
    if not isinstance(item, dict) or not all(item.get(k) for k in ("name", "displayName", "dataType")):
        return 1003, "name, displayName and dataType are required"
    name, data_type = str(item["name"]), str(item["dataType"])
    if not _API_NAME.match(name):
        return 1003, f"Invalid field name '{name}'"
    if data_type not in CUSTOM_TYPES:
        return 1003, f"Invalid dataType '{data_type}'"
    if name in known or any(f.display_name == item["displayName"] for f in known.values()):
        return 1003, f"Field '{name}' already exists"  # (unconfirmed) the code Marketo gives a duplicate
    length = 255 if data_type in ("string", "email", "phone", "url") else None
    return LeadField(max(f.id for f in known.values()) + 1, name, data_type, str(item["displayName"]), length=length)


DEFAULT_LEAD_FIELDS = ("id", "updatedAt", "lastName", "email", "createdAt", "firstName")
"""What ``GET /rest/v1/leads.json`` returns when ``fields`` is not given."""
SEARCHABLE = (("email",), ("id",), ("cookies",))

# Marketo's standard activity type ids (GET /rest/v1/activities/types.json on any instance).
VISIT_WEBPAGE = 1
FILL_OUT_FORM = 2
NEW_LEAD = 12
CHANGE_DATA_VALUE = 13
MERGE_LEADS = 32
DELETE_LEAD = 37
CHANGE_STATUS_IN_PROGRESSION = 104


def _attr(name: str, data_type: str) -> dict[str, str]:
    return {"name": name, "dataType": data_type}


ACTIVITY_TYPES: tuple[dict[str, Any], ...] = (
    {
        "id": VISIT_WEBPAGE,
        "name": "Visit Webpage",
        "description": "User visits a web page",
        "primaryAttribute": _attr("Webpage ID", "integer"),
        "attributes": [
            _attr("Client IP Address", "string"),
            _attr("Query Parameters", "string"),
            _attr("Referrer URL", "string"),
            _attr("Webpage URL", "string"),
        ],
    },
    {
        "id": FILL_OUT_FORM,
        "name": "Fill Out Form",
        "description": "User fills out and submits form on web page",
        "primaryAttribute": _attr("Webform ID", "integer"),
        "attributes": [
            _attr("Client IP Address", "string"),
            _attr("Form Fields", "text"),
            _attr("Query Parameters", "string"),
            _attr("Referrer URL", "string"),
            _attr("Webpage ID", "integer"),
        ],
    },
    {
        "id": NEW_LEAD,
        "name": "New Lead",
        "description": "New person/record is added to the lead database",
        "primaryAttribute": _attr("Lead ID", "integer"),
        "attributes": [_attr("Source Type", "string"), _attr("Form Name", "string")],
    },
    {
        "id": CHANGE_DATA_VALUE,
        "name": "Change Data Value",
        "description": "Changed attribute value for a person",
        "primaryAttribute": _attr("Attribute Name", "integer"),
        "attributes": [
            _attr("New Value", "string"),
            _attr("Old Value", "string"),
            _attr("Reason", "string"),
            _attr("Source", "string"),
        ],
    },
    {
        "id": MERGE_LEADS,
        "name": "Merge Leads",
        "description": "Merge two or more people into one",
        "primaryAttribute": _attr("Lead ID", "integer"),
        "attributes": [
            _attr("Merge ids", "text"),
            _attr("Merge Source", "string"),
            _attr("Merged in Sales", "boolean"),
            _attr("Master Updated", "boolean"),
        ],
    },
    {
        "id": DELETE_LEAD,
        "name": "Delete Lead",
        "description": "Delete a person from the lead database",
        "primaryAttribute": _attr("Lead ID", "integer"),
        "attributes": [_attr("Remove from CRM", "boolean")],
    },
    {
        "id": CHANGE_STATUS_IN_PROGRESSION,
        "name": "Change Status in Progression",
        "description": "Change a program member's status",
        "primaryAttribute": _attr("Program ID", "integer"),
        "attributes": [
            _attr("Acquired By", "boolean"),
            _attr("New Status", "string"),
            _attr("Old Status", "string"),
            _attr("Program Member ID", "integer"),
            _attr("Reason", "string"),
            _attr("Success", "boolean"),
        ],
    },
)
