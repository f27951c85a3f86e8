"""Account Engagement (Pardot): prospects synced as contacts, visitor activities as touchpoints, closed-won
revenue written back to prospect custom fields."""

from closeloop.connector import ConnectorPlugin, sandbox_from

from .adapter import create
from .settings import PardotSettings

plugin = ConnectorPlugin(
    name="pardot",
    settings_model=PardotSettings,
    create=create,
    # Opportunities belong to the Salesforce connector and are read-only in v5: revenue goes to prospect fields.
    objects={"prospects": "contact"},
    sandbox=sandbox_from(f"{__name__}.sandbox"),  # loaded only when asked for: closeloop[sandbox]
    description="Account Engagement API v5: prospects, visitor activities as touchpoints; revenue on custom fields.",
)

__all__ = ["plugin"]
