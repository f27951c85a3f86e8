"""The setup step: closeloop's own fields exist in every system before a cycle reads or writes them.

closeloop owns three kinds of vendor fields, all named in the mappings: partner ids (the other system's id of a
record), upsert keys filled with closeloop's golden id, and rollups computed from the revenue ledger. A cycle
checks them against each object's describe and creates the missing ones through the connector; once they exist
the check costs nothing beyond the describe the cycle makes anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace

from closeloop.config.models import GOLDEN_ID, Connection, EntityMapping
from closeloop.config.policies import FromLoop
from closeloop.connector import Connector, FieldCreator
from closeloop.engine.context import CycleContext
from closeloop.model import FieldInfo, FieldType, ObjectSchema, OwnedField

log = logging.getLogger(__name__)


class SetupError(Exception):
    """closeloop's own fields are missing in a system and cannot be created there."""


def owned_fields(connection: Connection) -> dict[tuple[str, str], list[OwnedField]]:
    """(system, native object) -> the fields closeloop owns there, from every mapping of the connection."""
    found: dict[tuple[str, str], dict[str, OwnedField]] = {}
    for mapping in connection.mappings:
        for system, obj, field in _owned(mapping):
            found.setdefault((system, obj), {}).setdefault(field.name, field)
    return {where: list(fields.values()) for where, fields in found.items()}


def _owned(mapping: EntityMapping) -> Iterator[tuple[str, str, OwnedField]]:
    entity = mapping.entity.value
    for system, objects in mapping.systems.items():
        for obj in objects.objects:
            if objects.partner_id:
                yield system, obj, OwnedField(objects.partner_id, FieldType.STRING, f"closeloop partner {entity} id")
            if objects.upsert is not None and objects.upsert.value == GOLDEN_ID:
                yield system, obj, OwnedField(objects.upsert.key, FieldType.STRING, "closeloop id", unique=True)
    for name, field in mapping.fields.items():
        if isinstance(field.policy, FromLoop):
            for system, natives in field.native.items():
                for obj, native in natives.items():
                    label = f"closeloop {name.replace('_', ' ')}"
                    yield system, obj, OwnedField(native, field.type, label)


async def ensure_owned_fields(ctx: CycleContext) -> list[tuple[str, str]]:
    """Create the owned fields that are missing (idempotent); return the (system, object) pairs that gained any."""
    created: list[tuple[str, str]] = []
    for (system, obj), fields in owned_fields(ctx.connection).items():
        connector = ctx.connectors[system]
        schema = await connector.describe(obj)
        missing = [field for field in fields if field.name not in schema.fields]
        if not missing:
            continue
        names = ", ".join(field.name for field in missing)
        if not isinstance(connector, FieldCreator):
            raise SetupError(
                f"{system} {obj} lacks closeloop's fields {names} and its connector cannot create them; "
                f"create them in {system} (text fields; see the mapping's partner_id, upsert and from: loop fields)"
            )
        await connector.create_fields(obj, missing)
        log.info("created closeloop's fields in %s %s: %s", system, obj, names)
        ctx.count("fields_created", system, len(missing))
        created.append((system, obj))
    return created


def after_setup(
    connection: Connection, connectors: Mapping[str, Connector], schemas: Mapping[tuple[str, str], ObjectSchema]
) -> dict[tuple[str, str], ObjectSchema]:
    """The schemas as a run sees them once setup is done: closeloop's own missing fields added where the connector
    can create them (a connector that cannot leaves them missing, for the field check to report)."""
    seen = dict(schemas)
    for (system, obj), owned in owned_fields(connection).items():
        schema = seen.get((system, obj))
        if schema is None or not isinstance(connectors[system], FieldCreator):
            continue
        created = {f.name: FieldInfo(f.name, f.type, label=f.label) for f in owned if f.name not in schema.fields}
        if created:
            seen[(system, obj)] = replace(schema, fields={**schema.fields, **created})
    return seen
