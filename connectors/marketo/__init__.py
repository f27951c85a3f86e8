"""Marketo Engage: leads synced as contacts, closed-won revenue written back to lead custom fields."""

from closeloop.connector import ConnectorPlugin, sandbox_from
from closeloop.webhooks import WebhookSpec, header_token

from .adapter import create
from .settings import MarketoSettings

plugin = ConnectorPlugin(
    name="marketo",
    settings_model=MarketoSettings,
    create=create,
    # Opportunities are read-only under Marketo's native CRM sync; revenue reaches leads through custom fields.
    objects={"leads": "contact"},
    sandbox=sandbox_from(f"{__name__}.sandbox"),  # loaded only when asked for: closeloop[sandbox]
    # Smart Campaign webhooks are unsigned: a shared secret goes in a custom header.
    webhook=WebhookSpec(header_token),
    description="Marketo Engage REST API: leads, activities, program membership; revenue on lead fields.",
)

__all__ = ["plugin"]
