"""What ``closeloop validate --online`` checks after the offline checks: every mapped field against the vendors.

Connectors are built from the configuration (secrets from the environment) and asked to describe each mapped
object once; the problems are those a run would refuse to start with, as ``file:line:col: message`` lines.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from closeloop.config.models import LoadedConfig
from closeloop.config.problems import ConfigProblem
from closeloop.connector import Connector, ConnectorContext
from closeloop.engine.fieldcheck import check_connection
from closeloop.engine.setup import after_setup
from closeloop.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from closeloop.http.errors import BudgetExhausted, TransientError
from closeloop.http.redact import redact
from closeloop.model import ObjectSchema


class DescribeFailed(Exception):
    """A system could not describe one of its mapped objects; carries the exit code it means."""

    def __init__(self, system: str, obj: str, exc: Exception) -> None:
        unreachable = isinstance(exc, TransientError | BudgetExhausted)
        self.exit_code = EXIT_UNREACHABLE if unreachable else EXIT_USAGE
        what = "cannot reach" if unreachable else "could not describe"
        super().__init__(redact(f"system {system!r} {what} {obj!r}: {type(exc).__name__}: {exc}"))


async def online_problems(
    config: LoadedConfig, transports: Mapping[str, httpx.AsyncBaseTransport]
) -> list[ConfigProblem]:
    """Describe every mapped object of every connection once and check its mapped fields."""
    connectors: dict[str, Connector] = {}
    schemas: dict[tuple[str, str], ObjectSchema] = {}
    found: set[ConfigProblem] = set()
    try:
        for connection in config.connections:
            for mapping in connection.mappings:
                for system in connection.systems:
                    if system not in connectors:
                        context = ConnectorContext(system, config.systems[system].settings, transports.get(system))
                        connectors[system] = config.registry.create(config.systems[system].connector, context)
                    for obj in mapping.objects(system):
                        if (system, obj) not in schemas:
                            schemas[(system, obj)] = await _describe(connectors[system], system, obj)
            found.update(check_connection(connection, after_setup(connection, connectors, schemas)))
    finally:
        for connector in connectors.values():
            await connector.aclose()
    return sorted(found)


async def _describe(connector: Connector, system: str, obj: str) -> ObjectSchema:
    try:
        return await connector.describe(obj)
    except Exception as exc:  # any connector failure is the admin's to read, never a traceback
        raise DescribeFailed(system, obj, exc) from exc
