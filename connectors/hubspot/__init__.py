"""HubSpot CRM connector (contacts, deals) and its sandbox."""

from functools import partial

from closeloop.connector import ConnectorPlugin, sandbox_from
from closeloop.webhooks import WebhookSpec, hmac_signature

from .adapter import HubSpotConnector, create
from .settings import HubSpotSettings

plugin = ConnectorPlugin(
    name="hubspot",
    settings_model=HubSpotSettings,
    create=create,
    objects={"contacts": "contact", "deals": "deal"},
    sandbox=sandbox_from(f"{__name__}.sandbox"),  # loaded only when asked for: closeloop[sandbox]
    # Signature v3: HMAC-SHA256 over method + URI + body + timestamp, refused when older than 5 minutes.
    webhook=WebhookSpec(
        partial(
            hmac_signature, signature_header="x-hubspot-signature-v3", timestamp_header="x-hubspot-request-timestamp"
        ),
        body="json",  # a JSON array of events
    ),
    description="HubSpot CRM: contacts and deals through the CRM v3 API, v4 associations, OAuth or private app.",
)

__all__ = ["HubSpotConnector", "HubSpotSettings", "plugin"]
