"""Checks of a mapping against a connection that uses it: its systems and the connectors' native objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from closeloop.config.mapping_loader import LoadedMapping
from closeloop.config.problems import Problems, one_of, suggest
from closeloop.connector import ConnectorPlugin


def check_in_connection(
    loaded: LoadedMapping,
    connection: str,
    systems: Sequence[str],
    plugins: Mapping[str, ConnectorPlugin | None],
    problems: Problems,
) -> None:
    """Every system of the mapping belongs to the connection, and every object is one its connector offers."""
    mapping, source = loaded.mapping, loaded.source
    where = f"connection {connection!r} (its systems: {', '.join(repr(s) for s in systems)})"
    for name in mapping.systems:
        if name not in systems:
            source.problem(
                problems,
                ("systems", name),
                f"system {name!r} is not in {where}{suggest(name, systems)}",
                key=True,
            )
    # A mapping may leave one system out (deals read from the CRM only, for a marketing tool without deals),
    # but it must name at least one system of the connection.
    if not any(name in (source.data.get("systems") or {}) for name in systems):
        source.problem(problems, ("systems",), f"no entry for any system of {where}", key=True)
    for field in mapping.fields.values():
        for name in field.native:
            if name not in systems:
                source.problem(
                    problems,
                    ("fields", field.name, name),
                    f"field {field.name!r} is mapped to system {name!r}, which is not in {where}",
                    key=True,
                )
    _check_objects(loaded, plugins, problems)


def _check_objects(loaded: LoadedMapping, plugins: Mapping[str, ConnectorPlugin | None], problems: Problems) -> None:
    """Each native object is one the system's connector offers for this entity (when it declares its objects)."""
    mapping, source = loaded.mapping, loaded.source
    for name, entry in mapping.systems.items():
        plugin = plugins.get(name)
        if plugin is None or not plugin.objects:
            continue
        offered = [obj for obj, role in plugin.objects.items() if role == mapping.entity.value]
        for index, obj in enumerate(entry.objects):
            if obj not in offered:
                source.problem(
                    problems,
                    ("systems", name, "objects", index),
                    f"connector {plugin.name!r} has no {mapping.entity.value} object {obj!r}; "
                    f"valid: {one_of(offered)}{suggest(obj, offered)}",
                )
