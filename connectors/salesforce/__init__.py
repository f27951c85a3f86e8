"""The Salesforce connector plugin: Lead and Contact (people), Opportunity (deals), and its sandbox."""

from __future__ import annotations

from closeloop.connector import ConnectorPlugin, sandbox_from
from closeloop.webhooks import WebhookSpec, url_or_header_token

from .adapter import SalesforceConnector
from .settings import SalesforceSettings

OUTBOUND_MESSAGE_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)

plugin = ConnectorPlugin(
    name="salesforce",
    settings_model=SalesforceSettings,
    create=SalesforceConnector,
    objects={"Lead": "contact", "Contact": "contact", "Opportunity": "deal"},
    sandbox=sandbox_from(f"{__name__}.sandbox"),  # loaded only when asked for: closeloop[sandbox]
    # Outbound messages carry no signature: a shared secret in the URL or a header, and a SOAP acknowledgement,
    # or Salesforce re-sends the message for 24 hours.
    webhook=WebhookSpec(url_or_header_token, ack=("text/xml", OUTBOUND_MESSAGE_ACK), body="xml"),
    description="Salesforce REST API: SOQL queryAll change reads, sObject Collections upserts, JWT bearer auth.",
)

__all__ = ["SalesforceConnector", "SalesforceSettings", "plugin"]
