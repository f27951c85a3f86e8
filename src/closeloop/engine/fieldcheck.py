"""Every mapped field checked against the vendors' describe before a run reads or writes anything.

A native field that does not exist, that the mapping writes but the vendor keeps read-only, whose type cannot
hold the canonical type, or whose restricted picklist refuses a value the value map names, is one problem at the
mapping file's line and column. A run with any such problem refuses to start: syncing half a record silently is
worse than not syncing.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from closeloop.config.models import Connection, EntityMapping, FieldMapping
from closeloop.config.policies import Earliest, FromLoop, OneWay, WriteOnce
from closeloop.config.problems import ConfigError, ConfigProblem, Problems, one_of, suggest
from closeloop.config.yamlsrc import Loc
from closeloop.engine.context import CycleContext
from closeloop.engine.setup import after_setup
from closeloop.model import FieldInfo, FieldType, ObjectSchema

_TEXT = (FieldType.STRING, FieldType.EMAIL, FieldType.PHONE, FieldType.PICKLIST, FieldType.ID, FieldType.REFERENCE)
COMPATIBLE: Mapping[FieldType, tuple[FieldType, ...]] = {
    FieldType.STRING: _TEXT,
    FieldType.EMAIL: (FieldType.EMAIL, FieldType.STRING),
    FieldType.PHONE: (FieldType.PHONE, FieldType.STRING),
    FieldType.PICKLIST: (FieldType.PICKLIST, FieldType.STRING),
    FieldType.NUMBER: (FieldType.NUMBER, FieldType.DECIMAL),
    FieldType.DECIMAL: (FieldType.DECIMAL, FieldType.NUMBER),
    FieldType.BOOLEAN: (FieldType.BOOLEAN,),
    # a date is written as midnight where the vendor only has date-times; a date-time in a date field loses time
    FieldType.DATE: (FieldType.DATE, FieldType.DATETIME),
    FieldType.DATETIME: (FieldType.DATETIME,),
    FieldType.ID: (FieldType.ID, FieldType.REFERENCE, FieldType.STRING),
    FieldType.REFERENCE: (FieldType.REFERENCE, FieldType.ID, FieldType.STRING),
    # a user id (lookup, reference, HubSpot's owner enumeration) or the owner's email itself
    FieldType.OWNER: (FieldType.REFERENCE, FieldType.ID, FieldType.PICKLIST, FieldType.STRING, FieldType.EMAIL),
}
"""Canonical type -> the native types that can hold its values both ways."""

_LISTED = 20
"""Allowed picklist values named in one message; the rest are counted."""


class FieldCheckError(ConfigError):
    """Mapped fields that do not fit the vendors' describe; the run refused to start. Carries every problem."""


def check_connection(connection: Connection, schemas: Mapping[tuple[str, str], ObjectSchema]) -> list[ConfigProblem]:
    """Every problem of every mapped field of ``connection`` against the described ``schemas``, in file order."""
    problems = Problems()
    for mapping in connection.mappings:
        for system in connection.systems:
            for obj in mapping.objects(system):
                schema = schemas.get((system, obj))
                if schema is not None:
                    _ObjectCheck(mapping, system, obj, schema, problems).run()
    return problems.sorted()


def check_fields(ctx: CycleContext) -> None:
    """Raise ``FieldCheckError`` when a mapped field does not fit the described schemas of ``ctx``.

    The refused objects' schemas are forgotten, so the next run describes them again: an admin who creates the
    missing property at the vendor needs no restart.
    """
    problems = check_connection(ctx.connection, after_setup(ctx.connection, ctx.connectors, ctx.schemas))
    if not problems:
        return
    for mapping in ctx.connection.mappings:
        for system in ctx.connection.systems:
            for obj in mapping.objects(system):
                ctx.schemas.pop((system, obj), None)
    raise FieldCheckError(problems)


@dataclass
class _ObjectCheck:
    """The checks of one native object of one mapping."""

    mapping: EntityMapping
    system: str
    obj: str
    schema: ObjectSchema
    problems: Problems

    def run(self) -> None:
        for name, spec, native in self.mapping.specs(self.system, self.obj):
            self.field(name, spec, native)
        entry = self.mapping.systems.get(self.system)
        if entry is not None and entry.upsert is not None and entry.create_as == self.obj:
            self.upsert_key(entry.upsert.key)

    def field(self, name: str, spec: FieldMapping, native: str) -> None:
        loc = self.native_loc(name)
        info = self.schema.fields.get(native)
        if info is None:
            self.fail(loc, f"field {name!r}: {self.where} has no field {native!r}{self.close(native)}")
            return
        why = writes(spec, self.system)
        if info.read_only and why is not None:
            read_only = f"{native!r} of {self.where} is read-only"
            self.fail(loc, f"field {name!r}: {read_only}, but {why}; {fix(spec, self.system)}")
        elif info.type not in COMPATIBLE[spec.type]:
            valid = [t.value for t in FieldType if info.type in COMPATIBLE[t]]
            self.fail(
                loc,
                f"field {name!r} has type {spec.type.value!r}, but {native!r} of {self.where} is a "
                f"{info.type.value} field; types that fit it: {one_of(valid)}",
            )
        else:
            self.values(name, spec, native, info)

    def values(self, name: str, spec: FieldMapping, native: str, info: FieldInfo) -> None:
        table = spec.values.get(self.system)
        if not table or not info.picklist or not info.restricted:
            return  # an unrestricted picklist takes any value
        bad = [value for value in table if value not in info.picklist]
        if not bad:
            return
        allowed = list(info.picklist)
        listed = one_of(allowed[:_LISTED]) + (f" and {len(allowed) - _LISTED} more" if len(allowed) > _LISTED else "")
        self.fail(
            ("fields", name, "values", self.system, bad[0]),
            f"field {name!r}: the value map of {self.system!r} names {', '.join(map(repr, bad))}, which {native!r} of "
            f"{self.where} does not allow; allowed: {listed}{suggest(bad[0], allowed)}",
            key=True,
        )

    def upsert_key(self, key: str) -> None:
        loc: Loc = ("systems", self.system, "upsert", "key")
        info = self.schema.fields.get(key)
        if info is None:
            self.fail(loc, f"upsert key: {self.where} has no field {key!r}{self.close(key)}")
        elif info.read_only:
            self.fail(loc, f"upsert key: {key!r} of {self.where} is read-only; creates need a writable unique field")

    def native_loc(self, name: str) -> Loc:
        loc: Loc = ("fields", name, self.system)
        data = self.mapping.source.data if self.mapping.source is not None else None
        per_object = isinstance(_get(data, loc), dict)  # {Lead: Company}: point at this object's entry
        return (*loc, self.obj) if per_object else loc

    @property
    def where(self) -> str:
        return f"{self.system} {self.obj}"

    def close(self, word: str) -> str:
        names = difflib.get_close_matches(word, list(self.schema.fields), n=3, cutoff=0.6)
        if names:
            return f"; close names: {one_of(names)}"
        return f"; no close name among its {len(self.schema.fields)} fields"

    def fail(self, loc: Loc, message: str, *, key: bool = False) -> None:
        source = self.mapping.source
        if source is None:  # a mapping built in code has no file positions
            self.problems.add(self.mapping.path, 1, 1, message)
            return
        mark = source.key_at(loc) if key else source.at(loc)
        # one problem per place: a field both objects of a system map (Contact and Lead) is named once
        if not any((p.path, p.line, p.col) == (source.path, mark.line, mark.col) for p in self.problems.items):
            self.problems.add(source.path, mark.line, mark.col, message)


def writes(spec: FieldMapping, system: str) -> str | None:
    """Why the mapping writes ``spec`` to ``system``, or None when it only reads it there.

    A write-once field only fills blanks where it can: a read-only target (a vendor's calculated original
    source) is one it reads, never writes, and both ``plan`` and ``sync`` leave it out alike.
    """
    policy = spec.policy
    if isinstance(policy, Earliest):
        return None  # a server-set time: read from every system, never written
    if isinstance(policy, WriteOnce):
        return None
    if isinstance(policy, FromLoop):
        return f"'from: loop.{policy.rollup.value}' writes it"
    if isinstance(policy, OneWay):
        return f"policy '{policy.source} -> {policy.target}' writes it" if policy.target == system else None
    others = [name for name in spec.native if name != system]
    return f"policy 'two-way' writes it from {one_of(others)}" if others else None


def fix(spec: FieldMapping, system: str) -> str:
    """What would make a read-only target valid."""
    others = [name for name in spec.native if name != system]
    if isinstance(spec.policy, FromLoop) or not others:
        return "map a writable field"
    return f"read it only (policy: '{system} -> {others[0]}') or map a writable field"


def _get(data: object, loc: Sequence[str | int]) -> object:
    for part in loc:
        if not isinstance(data, dict):
            return None
        data = data.get(str(part))
    return data
