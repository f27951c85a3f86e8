"""The Salesforce sandbox: an emulated org behind the REST API subset closeloop uses, and its seeding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from closeloop.sandbox import Deal, Person, Row, Seeder

from .app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SalesforceSandbox

SOURCE_LABELS = {
    "organic_search": "Organic Search",
    "paid_search": "Paid Search",
    "paid_social": "Paid Social",
    "email": "Email",
    "referral": "Referral",
    "direct": "Direct",
    "events": "Event",
}
LIFECYCLE_LABELS = {
    "subscriber": "Subscriber",
    "lead": "Lead",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}
STAGE_NAMES = {
    "discovery": "Prospecting",
    "qualified": "Qualification",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
JWT_CONSUMER_KEY = "closeloop-sandbox-consumer"
JWT_USERNAME = "integration@closeloop.sandbox"

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "JWT_CONSUMER_KEY",
    "JWT_USERNAME",
    "SalesforceSandbox",
    "create_sandbox",
    "sandbox_jwt_key",
]


@lru_cache(maxsize=1)
def sandbox_jwt_key() -> tuple[bytes, bytes]:
    """A process-wide RSA key pair (private PEM, public PEM) the default JWT client of every sandbox trusts."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def person_fields(person: Person, *, lead: bool) -> dict[str, object]:
    """A seeded person as Lead or Contact fields."""
    fields: dict[str, object] = {
        "FirstName": person.first_name,
        "LastName": person.last_name,
        "Email": person.email,
        "Phone": person.phone,
        "Title": person.title[:128],
        "LeadSource": SOURCE_LABELS[person.source],
        "Status__c": LIFECYCLE_LABELS[person.lifecycle],
        "UTM_Source__c": person.utm_source or None,
        "UTM_Medium__c": person.utm_medium or None,
        "UTM_Campaign__c": person.utm_campaign or None,
        "LastModifiedDate": person.created_at,
    }
    if lead:
        fields["Company"] = person.company
        fields["Status"] = "Open - Not Contacted"
        fields["IsConverted"] = False
    else:
        fields["Account_Name__c"] = person.company
    return fields


def _seed_deal(sandbox: SalesforceSandbox, deal: Deal, contacts: list[Row]) -> None:
    credited = [contacts[i] for i in deal.people if i < len(contacts)]
    created = max((c.created_at for c in credited), default=deal.close_date) + timedelta(hours=1)
    created = min(created, deal.close_date)
    stage = STAGE_NAMES[deal.stage]
    fields: dict[str, object] = {
        "Name": deal.name,
        "Amount": float(deal.amount),
        "StageName": stage,
        "CloseDate": deal.close_date.date().isoformat(),
        "CurrencyIsoCode": deal.currency,
        "LeadSource": credited[0].fields["LeadSource"] if credited else None,
        "LastModifiedDate": created,
    }
    opportunities = sandbox.org.objects["Opportunity"]
    sandbox.org._derive(opportunities, fields, fields)  # IsWon/IsClosed/Probability from the stage
    opportunity = sandbox.table("Opportunity").insert(fields, at=created + timedelta(seconds=deal.index % 60))
    for rank, contact in enumerate(credited):
        sandbox.table("OpportunityContactRole").insert(
            {
                "OpportunityId": opportunity.id,
                "ContactId": contact.id,
                "Role": "Decision Maker" if rank == 0 else "Influencer",
                "IsPrimary": rank == 0,
                "LastModifiedDate": created,
            },
            at=created,
        )


def create_sandbox(
    seed: int = 0,
    people: int = 0,
    deals: int = 0,
    offset: int = 0,
    clock: Callable[[], datetime] | None = None,
    *,
    leads: int = 0,
) -> SalesforceSandbox:
    """A seeded org: ``people`` Contacts (seed indexes offset...), ``leads`` Leads after them, ``deals``
    Opportunities with OpportunityContactRoles on those contacts."""
    sandbox = SalesforceSandbox(seed=seed, clock=clock)
    private, public = sandbox_jwt_key()
    sandbox.register_jwt_client(JWT_CONSUMER_KEY, public, JWT_USERNAME)
    sandbox.jwt_login = (JWT_CONSUMER_KEY, JWT_USERNAME, private)
    seeder = Seeder(seed)
    # The contact rows, for the deals to credit (their creation time and source are the person's).
    contacts = [
        sandbox.table("Contact").insert(person_fields(person, lead=False), at=person.created_at)
        for person in seeder.people(people, offset=offset)
    ]
    for person in seeder.people(leads, offset=offset + people):
        sandbox.table("Lead").insert(person_fields(person, lead=True), at=person.created_at)
    for deal in seeder.deals(deals, people):
        _seed_deal(sandbox, deal, contacts)
    return sandbox
