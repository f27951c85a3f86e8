"""Acme CRM for closeloop: the plugin the ``closeloop.connectors`` entry point names."""

from __future__ import annotations

from closeloop.connector import ConnectorContext, ConnectorPlugin

from .adapter import AcmeConnector
from .settings import AcmeSettings


def _create(context: ConnectorContext) -> AcmeConnector:
    return AcmeConnector(context)


def _sandbox(**knobs: int) -> object:
    from .sandbox import create_sandbox  # the emulator loads only when asked for

    return create_sandbox(**knobs)


plugin = ConnectorPlugin(
    name="acme",
    settings_model=AcmeSettings,
    create=_create,
    objects={"people": "contact"},
    sandbox=_sandbox,
    description="Acme CRM (template)",
)
