"""The sObjects the Salesforce sandbox knows: fields as describe reports them, ids, values and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, cached_property
from typing import Any

from closeloop.sandbox import Row

# The 18-character, case-safe form of a Salesforce id: 15 characters plus 3 checksum characters.
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id_suffix(id15: str) -> str:
    """The three checksum characters Salesforce appends to a 15-character id."""
    out = ""
    for chunk in range(3):
        bits = 0
        for pos, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << pos
        out += _SUFFIX[bits]
    return out


def make_id(prefix: str, number: int) -> str:
    """An 18-character id with the object's key prefix."""
    id15 = f"{prefix}{number:012d}"
    if len(prefix) == 3 and 0 <= number < 10**12:
        return id15 + _prefix_suffix(prefix)  # digits add no capitals: the checksum is the prefix's
    return id15 + id_suffix(id15)


@cache
def _prefix_suffix(prefix: str) -> str:
    return id_suffix(f"{prefix}{0:012d}")


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not id-shaped."""
    if not value.isalnum() or len(value) not in (15, 18):
        return None
    return value if len(value) == 18 else value + id_suffix(value)


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime: milliseconds and an offset without a colon."""
    if moment.year >= 1000:  # isoformat's first 23 characters, twice as fast as strftime
        return moment.isoformat(timespec="milliseconds")[:23] + "+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def to_millis(moment: datetime) -> datetime:
    """Salesforce keeps datetimes to the millisecond."""
    if not moment.microsecond % 1000:
        return moment
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class SfField:
    """One field of an sObject as describe reports it."""

    name: str
    type: str
    label: str = ""
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    length: int = 0
    reference_to: tuple[str, ...] = ()
    default: Any = None

    @property
    def required(self) -> bool:
        """Required on create: not nillable, createable and without a default."""
        return not self.nillable and self.createable and self.default is None and self.type != "boolean"

    def describe(self) -> dict[str, Any]:
        """This field in the sObject Describe JSON shape."""
        return {
            "name": self.name,
            "label": self.label or self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "custom": self.name.endswith("__c"),
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "unique": self.unique,
            "externalId": self.external_id,
            "idLookup": self.id_lookup or self.type == "id",
            "calculated": False,
            "defaultedOnCreate": self.default is not None or self.type == "boolean",
            "defaultValue": self.default,
            "filterable": True,
            "sortable": self.type != "textarea",
            "caseSensitive": False,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": v == self.default, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "referenceTo": list(self.reference_to),
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "anyType": "xsd:anyType",
}
DATETIME_TYPES = frozenset({"datetime"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
TEXT_TYPES = frozenset({"string", "email", "phone", "picklist", "textarea", "url"})
ID_TYPES = frozenset({"id", "reference"})

LEAD_SOURCES = (
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
    "Organic Search",
    "Paid Search",
    "Paid Social",
    "Email",
    "Referral",
    "Direct",
    "Event",
)
LIFECYCLE = ("Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer")
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
    "Recycled",  # added by the org's admin: sales hands a lead back to marketing's nurture
)
DISQUALIFIED_REASONS = ("No budget", "Not a fit", "Competitor", "Student or job seeker", "Bad contact data")
"""The org's custom Disqualified Reason picklist on Lead (values sales picks when closing a lead unconverted)."""
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
ROLES = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
)
# A new org's campaign types and the member statuses of a new campaign ("Responded" counts as a response).
CAMPAIGN_TYPES = (
    "Advertisement",
    "Banner Ads",
    "Conference",
    "Direct Mail",
    "Email",
    "Partners",
    "Public Relations",
    "Referral Program",
    "Telemarketing",
    "Trade Show",
    "Webinar",
    "Other",
)
MEMBER_STATUSES = ("Sent", "Responded")
RESPONDED_STATUSES = frozenset({"Responded"})
# A new org's task statuses (Completed is the closed one), task types and subtypes, and activity types.
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUSES = frozenset({"Completed"})
ACTIVITY_TYPES = ("Call", "Email", "Meeting", "Other")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
# (ApiName, DefaultProbability, IsClosed, IsWon, ForecastCategoryName): a new org's default sales process, whose
# stages a mapping may name; the seed uses six of them.
STAGES = (
    ("Prospecting", 10.0, False, False, "Pipeline"),
    ("Qualification", 10.0, False, False, "Pipeline"),
    ("Needs Analysis", 20.0, False, False, "Pipeline"),
    ("Value Proposition", 50.0, False, False, "Pipeline"),
    ("Id. Decision Makers", 60.0, False, False, "Pipeline"),
    ("Perception Analysis", 70.0, False, False, "Pipeline"),
    ("Proposal/Price Quote", 75.0, False, False, "Pipeline"),
    ("Negotiation/Review", 90.0, False, False, "Pipeline"),
    ("Closed Won", 100.0, True, True, "Closed"),
    ("Closed Lost", 0.0, True, False, "Omitted"),
)


def _ro(name: str, kind: str, **extra: Any) -> SfField:
    return SfField(name, kind, createable=False, updateable=False, **extra)


def _system_fields(*, mergeable: bool, name: str) -> list[SfField]:
    fields = [
        _ro("Id", "id", nillable=False, length=18),
        _ro("IsDeleted", "boolean", nillable=False),
        _ro("CreatedDate", "datetime", nillable=False),
        _ro("LastModifiedDate", "datetime", nillable=False),
        _ro("SystemModstamp", "datetime", nillable=False),
    ]
    if mergeable:
        fields.insert(2, _ro("MasterRecordId", "reference", reference_to=(name,), length=18))
    return fields


def _utm_fields() -> list[SfField]:
    # The org's own UTM capture fields. closeloop's fields (its id, partner ids) are not here: closeloop creates
    # them through the Tooling API (see tooling.py).
    return [
        SfField("UTM_Source__c", "string", "UTM Source", length=255),
        SfField("UTM_Medium__c", "string", "UTM Medium", length=255),
        SfField("UTM_Campaign__c", "string", "UTM Campaign", length=255),
    ]


INTEGRATION_USER = make_id("005", 1)
"""The org's first user: the integration user, who owns what it creates unless told otherwise."""
USERS = (
    ("integration@sandbox.invalid", "Integration", "User"),
    ("sam.seller@example.com", "Sam", "Seller"),
    ("rita.rep@example.com", "Rita", "Rep"),
)
"""The org's users on creation (the integration user first, then two salespeople)."""


def _owner_field() -> SfField:
    return SfField(
        "OwnerId", "reference", "Owner ID", nillable=False, reference_to=("User",), default=INTEGRATION_USER, length=18
    )


def _person_fields() -> list[SfField]:
    return [
        SfField("FirstName", "string", "First Name", length=40),
        SfField("LastName", "string", "Last Name", nillable=False, length=80),
        SfField("Email", "email", id_lookup=True, length=80),
        SfField("Phone", "phone", length=40),
        SfField("Title", "string", length=128),
        SfField("LeadSource", "picklist", "Lead Source", picklist=LEAD_SOURCES, restricted=True, length=255),
        SfField("Status__c", "picklist", "Lifecycle Status", picklist=LIFECYCLE, restricted=True, length=255),
    ]


COMPUTED = frozenset({"Id", "IsDeleted", "MasterRecordId", "SystemModstamp", "CreatedDate", "LastModifiedDate"})
"""Fields whose value comes from the row itself, not from its stored fields (see :meth:`SObjectType.value`)."""


@dataclass
class SObjectType:
    """One sObject: its fields, key prefix and what the REST API allows on it."""

    name: str
    key_prefix: str
    fields: dict[str, SfField]
    createable: bool = True
    _by_lower: dict[str, SfField] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}

    def add_field(self, new: SfField) -> None:
        """A custom field created in this org."""
        self.fields[new.name] = new
        self._by_lower[new.name.lower()] = new
        self.__dict__.pop("required_fields", None)  # worked out again with the new field
        self.__dict__.pop("booleans", None)

    def lookup(self, name: str) -> SfField | None:
        """The field called ``name`` (field names are case-insensitive)."""
        return self._by_lower.get(name.lower())

    @cached_property
    def required_fields(self) -> tuple[str, ...]:
        """The fields a create must give a value (see :attr:`SfField.required`)."""
        return tuple(f.name for f in self.fields.values() if f.required)

    @property
    def id_lookups(self) -> tuple[str, ...]:
        """Fields usable as the key of an upsert (external ids and idLookup fields)."""
        return tuple(f.name for f in self.fields.values() if f.external_id or f.id_lookup)

    def value(self, row: Row, name: str) -> Any:
        """The typed value of a field of ``row`` (datetimes as aware datetimes, to the millisecond)."""
        if name == "Id":
            return row.id
        if name == "IsDeleted":
            return row.deleted
        if name == "MasterRecordId":
            return row.merged_into
        if name == "SystemModstamp":
            return to_millis(row.modified_at)
        if name == "CreatedDate":
            return to_millis(row.created_at)
        if name == "LastModifiedDate":
            stamp = row.fields.get("LastModifiedDate")
            return to_millis(stamp if isinstance(stamp, datetime) else row.created_at)
        value = row.fields.get(name)
        if value is None and self.fields[name].type == "boolean":
            return False
        return value

    def render(self, row: Row, names: list[str], version: str) -> dict[str, Any]:
        """A record as the REST API returns it: ``attributes`` first, then the fields asked for."""
        record: dict[str, Any] = {
            "attributes": {"type": self.name, "url": f"/services/data/{version}/sobjects/{self.name}/{row.id}"}
        }
        fields, booleans = row.fields, self.booleans
        for name in names:
            if name in COMPUTED:
                record[name] = json_value(self.value(row, name))
                continue
            # value() for a stored field, inlined: most are text and None, which JSON takes as they are.
            value = fields.get(name)
            if value is None:
                record[name] = False if name in booleans else None
            else:
                record[name] = value if type(value) is str else json_value(value)
        return record

    @cached_property
    def booleans(self) -> frozenset[str]:
        """The boolean fields (read as false when unset)."""
        return frozenset(f.name for f in self.fields.values() if f.type == "boolean")

    def describe(self, version: str) -> dict[str, Any]:
        """The sObject Describe JSON."""
        base = f"/services/data/{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.name,
            "labelPlural": f"{self.name}s",
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": self.createable,
            "updateable": self.createable,
            "deletable": self.createable,
            "queryable": True,
            "searchable": True,
            "mergeable": "MasterRecordId" in self.fields,
            "fields": [f.describe() for f in self.fields.values()],
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }


def json_value(value: Any) -> Any:
    """A stored value as Salesforce's JSON writes it."""
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


HISTORY_OBJECTS = {
    "Lead": ("LeadHistory", "017"),
    "Contact": ("ContactHistory", "017"),
    "Opportunity": ("OpportunityFieldHistory", "008"),
}
"""The field history sObject of each tracked object, and its key prefix."""

TRACKED = {
    "Lead": ("FirstName", "LastName", "Email", "Phone", "Title", "LeadSource", "Status__c", "Company", "Status"),
    "Contact": ("FirstName", "LastName", "Email", "Phone", "Title", "LeadSource", "Status__c", "Account_Name__c"),
    "Opportunity": ("Name", "Amount", "StageName", "CloseDate", "LeadSource"),
}
"""The fields whose history the emulated org tracks (Setup > Fields > Set History Tracking; at most 20 each)."""


def _history_fields(parent: str) -> list[SfField]:
    return [
        _ro("Id", "id", nillable=False, length=18),
        _ro("IsDeleted", "boolean", nillable=False),
        _ro(f"{parent}Id", "reference", reference_to=(parent,), nillable=False, length=18),
        _ro("Field", "picklist", picklist=("created", *TRACKED[parent]), nillable=False, length=255),
        _ro("OldValue", "anyType"),
        _ro("NewValue", "anyType"),
        _ro("CreatedDate", "datetime", nillable=False),
    ]


def build_objects() -> dict[str, SObjectType]:
    """The sObjects of the emulated org."""

    def sobject(name: str, prefix: str, fields: list[SfField], *, createable: bool = True) -> SObjectType:
        return SObjectType(name, prefix, {f.name: f for f in fields}, createable=createable)

    lead = [
        *_system_fields(mergeable=True, name="Lead"),
        *_person_fields(),
        SfField("Company", "string", nillable=False, length=255),
        SfField(
            "Status",
            "picklist",
            "Lead Status",
            nillable=False,
            picklist=LEAD_STATUSES,
            restricted=True,
            default=LEAD_STATUSES[0],
            length=255,
        ),
        SfField("Disqualified_Reason__c", "picklist", "Disqualified Reason", picklist=DISQUALIFIED_REASONS, length=255),
        _ro("IsConverted", "boolean", nillable=False),
        _ro("ConvertedContactId", "reference", reference_to=("Contact",), length=18),
        _ro("ConvertedDate", "date"),
        _owner_field(),
        *_utm_fields(),
    ]
    contact = [
        *_system_fields(mergeable=True, name="Contact"),
        *_person_fields(),
        SfField("Account_Name__c", "string", "Account Name", length=255),
        _owner_field(),
        *_utm_fields(),
    ]
    user = [
        *_system_fields(mergeable=False, name="User"),
        SfField("Username", "string", nillable=False, unique=True, id_lookup=True, length=80),
        SfField("Email", "email", nillable=False, length=128),
        SfField("FirstName", "string", "First Name", length=40),
        SfField("LastName", "string", "Last Name", nillable=False, length=80),
        SfField("IsActive", "boolean", "Active", nillable=False, default=True),
    ]
    opportunity = [
        *_system_fields(mergeable=False, name="Opportunity"),
        SfField("Name", "string", nillable=False, length=120),
        SfField("Amount", "currency"),
        SfField(
            "StageName",
            "picklist",
            "Stage",
            nillable=False,
            picklist=tuple(s[0] for s in STAGES),
            restricted=True,
            length=255,
        ),
        SfField("CloseDate", "date", "Close Date", nillable=False),
        SfField(
            "CurrencyIsoCode",
            "picklist",
            "Opportunity Currency",
            nillable=False,
            picklist=CURRENCIES,
            restricted=True,
            default="USD",
            length=3,
        ),
        SfField("LeadSource", "picklist", "Lead Source", picklist=LEAD_SOURCES, restricted=True, length=255),
        SfField("Probability", "percent", "Probability (%)"),
        _ro("IsClosed", "boolean", nillable=False),
        _ro("IsWon", "boolean", nillable=False),
        _ro("ForecastCategoryName", "picklist", picklist=("Pipeline", "Best Case", "Commit", "Closed", "Omitted")),
    ]
    role = [
        *_system_fields(mergeable=False, name="OpportunityContactRole"),
        SfField(
            "OpportunityId",
            "reference",
            "Opportunity ID",
            nillable=False,
            updateable=False,
            reference_to=("Opportunity",),
            length=18,
        ),
        SfField("ContactId", "reference", "Contact ID", nillable=False, reference_to=("Contact",), length=18),
        SfField("Role", "picklist", picklist=ROLES, length=40),
        SfField("IsPrimary", "boolean", "Primary", nillable=False),
    ]
    stage = [
        *_system_fields(mergeable=False, name="OpportunityStage"),
        _ro("MasterLabel", "string", length=255),
        _ro("ApiName", "string", length=255),
        _ro("IsActive", "boolean", nillable=False),
        _ro("IsClosed", "boolean", nillable=False),
        _ro("IsWon", "boolean", nillable=False),
        _ro("DefaultProbability", "percent"),
        _ro("ForecastCategoryName", "picklist", picklist=("Pipeline", "Best Case", "Commit", "Closed", "Omitted")),
        _ro("SortOrder", "int"),
    ]
    histories = {
        name: sobject(name, prefix, _history_fields(parent), createable=False)
        for parent, (name, prefix) in HISTORY_OBJECTS.items()
    }
    campaign = [
        *_system_fields(mergeable=False, name="Campaign"),
        SfField("Name", "string", nillable=False, length=80),
        SfField("Type", "picklist", picklist=CAMPAIGN_TYPES, length=255),
        SfField("Status", "picklist", picklist=("Planned", "In Progress", "Completed", "Aborted"), length=255),
        SfField("StartDate", "date", "Start Date"),
        SfField("IsActive", "boolean", "Active", nillable=False),
    ]
    member = [
        *_system_fields(mergeable=False, name="CampaignMember"),
        SfField(
            "CampaignId", "reference", "Campaign ID", nillable=False, updateable=False, reference_to=("Campaign",),
            length=18,
        ),
        SfField("ContactId", "reference", "Contact ID", updateable=False, reference_to=("Contact",), length=18),
        SfField("LeadId", "reference", "Lead ID", updateable=False, reference_to=("Lead",), length=18),
        SfField("Status", "picklist", picklist=MEMBER_STATUSES, default=MEMBER_STATUSES[0], length=40),
        _ro("HasResponded", "boolean", nillable=False),
        _ro("FirstRespondedDate", "date"),
    ]  # fmt: skip
    who = SfField("WhoId", "reference", "Name ID", reference_to=("Contact", "Lead"), length=18)
    task = [
        *_system_fields(mergeable=False, name="Task"),
        who,
        SfField("Subject", "string", length=255),
        SfField("Status", "picklist", nillable=False, picklist=TASK_STATUSES, default=TASK_STATUSES[0], length=40),
        SfField("Type", "picklist", picklist=ACTIVITY_TYPES, length=40),
        SfField("TaskSubtype", "picklist", "Task Subtype", picklist=TASK_SUBTYPES, updateable=False, length=40),
        SfField("ActivityDate", "date", "Due Date Only"),
        _ro("IsClosed", "boolean", nillable=False),
        _ro("CompletedDateTime", "datetime", label="Completed Date/Time"),
    ]
    event = [
        *_system_fields(mergeable=False, name="Event"),
        who,
        SfField("Subject", "string", length=255),
        SfField("Type", "picklist", picklist=ACTIVITY_TYPES, length=40),
        SfField("StartDateTime", "datetime", "Start Date Time"),
        SfField("EndDateTime", "datetime", "End Date Time"),
        SfField("DurationInMinutes", "int", "Duration"),
    ]
    return {
        **histories,
        "User": sobject("User", "005", user),
        "Task": sobject("Task", "00T", task),
        "Event": sobject("Event", "00U", event),
        "Campaign": sobject("Campaign", "701", campaign),
        "CampaignMember": sobject("CampaignMember", "00v", member),
        "Lead": sobject("Lead", "00Q", lead),
        "Contact": sobject("Contact", "003", contact),
        "Opportunity": sobject("Opportunity", "006", opportunity),
        "OpportunityContactRole": sobject("OpportunityContactRole", "00K", role),
        "OpportunityStage": sobject("OpportunityStage", "01J", stage, createable=False),
    }
