"""Zoho CRM: the connector plugin (Leads, Contacts, Deals) and its emulator."""

from __future__ import annotations

from closeloop.connector import ConnectorContext, ConnectorPlugin, sandbox_from
from closeloop.webhooks import WebhookSpec, body_token

from .adapter import ZohoConnector
from .settings import ZohoSettings


def _create(context: ConnectorContext) -> ZohoConnector:
    return ZohoConnector(context)


plugin = ConnectorPlugin(
    name="zoho",
    settings_model=ZohoSettings,
    create=_create,
    objects={"Leads": "contact", "Contacts": "contact", "Deals": "deal"},
    sandbox=sandbox_from(f"{__name__}.sandbox"),  # loaded only when asked for: closeloop[sandbox]
    # Notifications echo the channel's token in the JSON body (no HMAC).
    webhook=WebhookSpec(body_token, body="json"),
    description="Zoho CRM v8: Leads, Contacts and Deals through COQL, upsert and the deleted-records list.",
)

__all__ = ["ZohoConnector", "ZohoSettings", "plugin"]
