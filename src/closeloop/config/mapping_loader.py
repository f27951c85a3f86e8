"""Loading one mapping file into an ``EntityMapping``, with every problem it holds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from closeloop.config.documents import FIELD_KEYS, ConditionDoc, FieldDoc, MappingDoc, MappingSystemDoc
from closeloop.config.models import (
    GOLDEN_ID,
    CreateRule,
    Entity,
    EntityMapping,
    FieldMapping,
    OnDelete,
    SystemObjects,
    Upsert,
)
from closeloop.config.policies import (
    Condition,
    Filter,
    FromLoop,
    OneWay,
    Policy,
    TwoWay,
    parse_direction,
    parse_from,
    parse_policy,
    parse_prefer,
)
from closeloop.config.problems import Problems, one_of, suggest, unknown
from closeloop.config.structure import check_mapping, sections
from closeloop.config.yamlsrc import Loc, Source, load_source
from closeloop.model import FieldType

T = TypeVar("T")
Op = Literal["in", "equals", "not_blank"]


@dataclass(frozen=True)
class LoadedMapping:
    """A mapping file's model and its source, kept for checks that depend on the connection using it."""

    mapping: EntityMapping
    source: Source


def load_mapping(path: Path, problems: Problems) -> LoadedMapping | None:
    """Load and check one mapping file; None when its structure is too broken to build a model."""
    source = load_source(path, problems)
    if source is None:
        return None
    if not check_mapping(source, (), source.data, "a mapping file", problems):
        return None
    doc = sections(MappingDoc, source.data, (), source, problems, per_entry=("systems", "fields"))
    if doc is None:
        return None
    reader = _Reader(source, problems, list(source.data.get("systems") or {}))
    return LoadedMapping(reader.mapping(path, doc), source)


@dataclass
class _Reader:
    source: Source
    problems: Problems
    system_names: list[str]

    def fail(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.source.problem(self.problems, loc, message, key=key)

    def mapping(self, path: Path, doc: MappingDoc) -> EntityMapping:
        systems = {name: self.system(name, entry) for name, entry in doc.systems.items()}
        fields = {name: self.field(name, entry, systems) for name, entry in doc.fields.items()}
        canonical = list(self.source.data.get("fields") or {})
        for index, name in enumerate(doc.match):
            if name not in canonical:
                self.fail(("match", index), unknown("canonical field", name, canonical))
        for name, system in systems.items():
            upsert = system.upsert
            if upsert and upsert.value not in (*canonical, GOLDEN_ID):
                self.fail(
                    ("systems", name, "upsert", "value"),
                    unknown("upsert value", upsert.value, [*canonical, GOLDEN_ID]),
                )
        for name, system in systems.items():
            self.check_partner(name, system, fields)
        create = [rule for key, raw in doc.create.items() if (rule := self.create(key, raw, fields)) is not None]
        return EntityMapping(
            path=path,
            entity=Entity(doc.entity),
            systems=systems,
            match=tuple(doc.match),
            fields=fields,
            create=tuple(create),
            on_delete=OnDelete(doc.on_delete),
            source=self.source,
        )

    def system(self, name: str, doc: MappingSystemDoc) -> SystemObjects:
        create_as = doc.create_as or doc.objects[0]
        if create_as not in doc.objects:
            self.fail(
                ("systems", name, "create_as"),
                unknown("object", create_as, doc.objects, f" in create_as of {name!r}"),
            )
        upsert = Upsert(key=doc.upsert.key, value=doc.upsert.value) if doc.upsert else None
        return SystemObjects(
            system=name, objects=tuple(doc.objects), create_as=create_as, upsert=upsert, partner_id=doc.partner_id
        )

    def check_partner(self, name: str, system: SystemObjects, fields: Mapping[str, FieldMapping]) -> None:
        """The partner-id field is closeloop's own: no canonical field and no upsert key may use it too."""
        partner = system.partner_id
        if partner is None:
            return
        taken = [f.name for f in fields.values() if partner in f.native.get(name, {}).values()]
        if system.upsert is not None and system.upsert.key == partner:
            taken.append("the upsert key")
        if taken:
            self.fail(
                ("systems", name, "partner_id"),
                f"partner_id {partner!r} of {name!r} is already used by {one_of(taken)}; "
                "give closeloop a field of its own for the other system's id",
            )

    def field(self, name: str, doc: FieldDoc, systems: Mapping[str, SystemObjects]) -> FieldMapping:
        loc: Loc = ("fields", name)
        if name.startswith("~"):
            # the match keys closeloop indexes beside the canonical ones start with "~" (partner ids: "~id:<system>")
            self.fail(loc, f"field {name!r}: canonical field names may not start with '~'", key=True)
        native = self.natives(loc, doc.model_extra or {}, systems)
        if not doc.model_extra:
            self.fail(
                loc,
                f"field {name!r} maps no system; give its native field for at least one of {one_of(self.system_names)}",
                key=True,
            )
        policy = self.policy(loc, doc, native)
        prefer = None
        if doc.prefer is not None:
            prefer = self.parse((*loc, "prefer"), lambda: parse_prefer(doc.prefer or "", list(native)))
            if prefer is not None and isinstance(policy, OneWay | FromLoop):
                self.fail(
                    (*loc, "prefer"),
                    f"prefer only applies to two-way and write-once fields; {name!r} is {policy.kind}",
                    key=True,
                )
        values = self.values(loc, doc, native)
        return FieldMapping(
            name=name,
            type=doc.type,
            native=native,
            policy=policy or TwoWay(),
            prefer=prefer,
            values=values,
            transform=doc.transform,
        )

    def natives(
        self, loc: Loc, extra: Mapping[str, Any], systems: Mapping[str, SystemObjects]
    ) -> dict[str, dict[str, str]]:
        native: dict[str, dict[str, str]] = {}
        for system, value in extra.items():
            if system not in self.system_names:
                valid = [*FIELD_KEYS, *self.system_names]
                self.fail(
                    (*loc, system),
                    f"unknown key {system!r} in field {loc[-1]!r}; valid: {one_of(FIELD_KEYS)}"
                    f", or a system of this mapping: {one_of(self.system_names)}{suggest(system, valid)}",
                    key=True,
                )
            elif system in systems:
                native[system] = self.per_object((*loc, system), value, systems[system].objects)
        return native

    def per_object(self, loc: Loc, value: str | dict[str, str], objects: Sequence[str]) -> dict[str, str]:
        if isinstance(value, str):
            return dict.fromkeys(objects, value)
        for obj in value:
            if obj not in objects:
                self.fail((*loc, obj), unknown("object", obj, objects, f" for system {loc[-1]!r}"), key=True)
        return {obj: value[obj] for obj in objects if obj in value}

    def policy(self, loc: Loc, doc: FieldDoc, native: Mapping[str, object]) -> Policy | None:
        if doc.policy is not None and doc.from_ is not None:
            self.fail((*loc, "from"), "a field has either 'policy' or 'from', not both", key=True)
            return None
        if doc.from_ is not None:
            return self.parse((*loc, "from"), lambda: parse_from(doc.from_ or ""))
        if doc.policy is None:
            return TwoWay()
        policy = self.parse((*loc, "policy"), lambda: parse_policy(doc.policy or "", self.system_names))
        if isinstance(policy, OneWay):
            for end in (policy.source, policy.target):
                if end not in native:
                    self.fail(
                        (*loc, "policy"),
                        f"policy {doc.policy!r} needs a native field in {end!r}; "
                        f"field {loc[-1]!r} maps only {one_of(native)}",
                    )
        return policy

    def values(self, loc: Loc, doc: FieldDoc, native: Mapping[str, object]) -> dict[str, dict[str, str]]:
        if doc.values is None:
            return {}
        if doc.type is not FieldType.PICKLIST:
            self.fail(
                (*loc, "values"),
                f"value maps are only allowed on picklist fields; field {loc[-1]!r} has "
                f"type {doc.type.value!r} (set type: picklist, or remove values)",
                key=True,
            )
            return {}
        for system in doc.values:
            if system not in native:
                self.fail(
                    (*loc, "values", system),
                    unknown("system", system, list(native), f" in the value maps of field {loc[-1]!r}"),
                    key=True,
                )
        return {system: dict(table) for system, table in doc.values.items() if system in native}

    def create(self, key: str, raw: Any, fields: Mapping[str, FieldMapping]) -> CreateRule | None:
        loc: Loc = ("create", key)
        direction = self.parse(loc, lambda: parse_direction(key, self.system_names), key=True)
        if direction is None:
            return None
        conditions = (
            [] if raw == "all" else [self.condition((*loc, name), name, cond, fields) for name, cond in raw.items()]
        )
        if any(c is None for c in conditions):
            return None
        kept = tuple(c for c in conditions if c is not None)
        return CreateRule(source=direction[0], target=direction[1], filter=Filter(conditions=kept))

    def condition(self, loc: Loc, name: str, doc: ConditionDoc, fields: Mapping[str, FieldMapping]) -> Condition | None:
        canonical = list(self.source.data.get("fields") or {})
        if name not in canonical:
            self.fail(loc, unknown("canonical field", name, canonical, " in create filter"), key=True)
            return None
        tests = {
            op: value
            for op, value in (("in", doc.in_), ("equals", doc.equals), ("not_blank", doc.not_blank))
            if value is not None
        }
        if len(tests) != 1:
            self.fail(loc, f"a filter on {name!r} needs exactly one of 'in', 'equals' or 'not_blank'", key=True)
            return None
        op, value = next(iter(tests.items()))
        values = tuple(value) if isinstance(value, list) else (value,)
        if name in fields and op != "not_blank":
            self.check_values((*loc, op), fields[name], values)
        return Condition(field=name, op=cast(Op, op), values=values)

    def check_values(self, loc: Loc, field: FieldMapping, values: Sequence[object]) -> None:
        known = sorted({canonical for table in field.values.values() for canonical in table.values()})
        for index, value in enumerate(values):
            if known and str(value) not in known:
                self.fail(
                    (*loc, index) if loc[-1] == "in" else loc,
                    f"{value!r} is not a value of picklist {field.name!r}; valid: {one_of(known)}"
                    f"{suggest(str(value), known)}",
                )

    def parse(self, loc: Loc, parser: Callable[[], T], *, key: bool = False) -> T | None:
        try:
            return parser()
        except ValueError as exc:
            self.fail(loc, str(exc), key=key)
            return None
