"""The facts of Account Engagement API v5 prospects and visitor activities that the adapter and sandbox share.

v5 has no describe endpoint for prospects: the standard fields and which of them a create or update may carry
are published in the reference (Salesforce's Postman collection), and custom fields are listed by
``GET /objects/custom-fields``.
"""

from __future__ import annotations

from closeloop.model import FieldType

S, E, P, N, B, T, R = (
    FieldType.STRING,
    FieldType.EMAIL,
    FieldType.PHONE,
    FieldType.NUMBER,
    FieldType.BOOLEAN,
    FieldType.DATETIME,
    FieldType.REFERENCE,
)
STANDARD: dict[str, FieldType] = {
    "id": FieldType.ID, "email": E, "firstName": S, "lastName": S, "salutation": S, "company": S, "jobTitle": S,
    "department": S, "phone": P, "fax": P, "website": S, "addressOne": S, "addressTwo": S, "city": S, "state": S,
    "zip": S, "country": S, "territory": S, "industry": S, "employees": S, "annualRevenue": S,
    "yearsInBusiness": S, "source": S, "comments": S, "notes": S, "score": N, "grade": S, "campaignId": R,
    "prospectAccountId": R, "assignedToId": R, "userId": R, "profileId": R, "lifecycleStageId": R,
    "salesforceId": S, "salesforceLeadId": S, "salesforceContactId": S, "salesforceAccountId": S,
    "salesforceOwnerId": S, "salesforceCampaignId": S, "salesforceUrl": S, "salesforceLastSync": T,
    "optedOut": B, "isDoNotEmail": B, "isDoNotCall": B, "isReviewed": B, "isStarred": B, "isDeleted": B,
    "isEmailHardBounced": B, "emailBouncedAt": T, "emailBouncedReason": S, "doNotSell": B, "createdAt": T,
    "updatedAt": T, "createdById": R, "updatedById": R, "lastActivityAt": T, "firstActivityAt": T,
    "firstAssignedAt": T, "convertedAt": T, "recentInteraction": S, "firstReferrerQuery": S,
    "firstReferrerType": S, "firstReferrerUrl": S, "campaignParameter": S, "mediumParameter": S,
    "sourceParameter": S, "termParameter": S, "contentParameter": S,
}  # fmt: skip
"""Standard prospect fields (v5 camelCase names) and their types."""

WRITABLE = frozenset(
    {
        "addressOne", "addressTwo", "annualRevenue", "campaignId", "city", "comments", "company", "country",
        "salesforceOwnerId", "department", "email", "employees", "fax", "firstName", "industry", "isDoNotCall",
        "isDoNotEmail", "isReviewed", "isStarred", "jobTitle", "lastName", "notes", "optedOut", "phone",
        "prospectAccountId", "salesforceId", "salutation", "score", "source", "state", "territory", "userId",
        "website", "yearsInBusiness", "zip", "profileId",
    }
)  # fmt: skip
"""Standard fields a create, update or upsert body may carry; any other standard field is refused (code 180)."""

CUSTOM_TYPES: dict[str, FieldType] = {
    "Text": S, "Textarea": S, "Number": FieldType.DECIMAL, "Date": FieldType.DATE, "Checkbox": S,
    "Radio Button": FieldType.PICKLIST, "Dropdown": FieldType.PICKLIST, "Multi-Select": S, "Hidden": S,
    "CRM User": S,
}  # fmt: skip
"""Custom field types as ``GET /objects/custom-fields`` names them, and the canonical type each holds."""

CUSTOM_SUFFIX = "__c"
"""A custom field's ``apiFieldId`` (its name in prospect bodies and ``fields``) is its ``fieldId`` plus this."""

# Visitor activity ``type`` codes that become touchpoints (the rest — opens, sends, bounces... — are not touches).
CLICK, VIEW, FORM_SUCCESS = 1, 2, 4
ACTIVITY_FIELDS = (
    "id", "type", "typeName", "details", "prospectId", "campaignId", "campaign.name", "emailId", "listEmailId",
    "formId", "formHandlerId", "landingPageId", "visitorPageViewId", "createdAt",
)  # fmt: skip
"""What the adapter asks of each visitor activity (``campaign.name`` through v5's dot notation)."""
