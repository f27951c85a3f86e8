"""The Salesforce connector plugin: Lead and Contact (people), Opportunity (deals), and its sandbox."""

from __future__ import annotations

from closeloop.connector import ConnectorPlugin

from .adapter import SalesforceConnector
from .sandbox import create_sandbox
from .settings import SalesforceSettings

plugin = ConnectorPlugin(
    name="salesforce",
    settings_model=SalesforceSettings,
    create=SalesforceConnector,
    objects={"Lead": "contact", "Contact": "contact", "Opportunity": "deal"},
    sandbox=create_sandbox,
    description="Salesforce REST API: SOQL queryAll change reads, sObject Collections upserts, JWT bearer auth.",
)

__all__ = ["SalesforceConnector", "SalesforceSettings", "create_sandbox", "plugin"]
