"""HubSpot CRM connector (contacts, deals) and its sandbox."""

from closeloop.connector import ConnectorPlugin

from .adapter import HubSpotConnector, create
from .sandbox import create_sandbox
from .settings import HubSpotSettings

plugin = ConnectorPlugin(
    name="hubspot",
    settings_model=HubSpotSettings,
    create=create,
    objects={"contacts": "contact", "deals": "deal"},
    sandbox=create_sandbox,
    description="HubSpot CRM: contacts and deals through the CRM v3 API, v4 associations, OAuth or private app.",
)

__all__ = ["HubSpotConnector", "HubSpotSettings", "plugin"]
