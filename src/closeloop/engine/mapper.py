"""Mapping between a system's native fields and canonical fields, in both directions, per entity mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from closeloop.config.models import EntityMapping, FieldMapping
from closeloop.engine.normalize import Canonical, NormalizeError, to_canonical, to_native
from closeloop.engine.owners import Directory, OwnerProblem
from closeloop.model import FieldType, JSONValue, ObjectSchema

Owners = Mapping[str, Directory]
"""system -> its user directory, for owner fields (``CycleContext.owners``)."""


@dataclass(frozen=True)
class MappingProblem:
    """A value that could not be mapped, kept for the quarantine reason."""

    field: str
    native_field: str
    message: str

    def __str__(self) -> str:
        return f"{self.native_field} → {self.field}: {self.message}"


def to_canonical_fields(
    mapping: EntityMapping, system: str, obj: str, native: Mapping[str, JSONValue], owners: Owners | None = None
) -> tuple[dict[str, Canonical], list[MappingProblem]]:
    """The canonical values of a native record; fields the record does not carry are left out.

    Owner fields need ``owners``, the directory of ``system`` among them: their canonical value is an email.
    """
    values: dict[str, Canonical] = {}
    problems: list[MappingProblem] = []
    for name, spec, native_name in mapping.specs(system, obj):
        if native_name not in native:
            continue
        try:
            if spec.type is FieldType.OWNER:
                values[name] = _directory(owners, system).to_canonical(native[native_name])
                continue
            raw = (
                spec.to_canonical(system, native[native_name])
                if spec.type is FieldType.PICKLIST
                else native[native_name]
            )
            values[name] = _transformed(spec, to_canonical(spec.type, raw))
        except NormalizeError as exc:
            problems.append(MappingProblem(name, native_name, str(exc)))
    return values, problems


def _directory(owners: Owners | None, system: str) -> Directory:
    found = owners.get(system) if owners is not None else None
    if found is None:
        raise OwnerProblem(f"the users of {system} are not at hand (their directory was not read)")
    return found


def _transformed(spec: FieldMapping, value: Canonical) -> Canonical:
    if spec.transform is None or value is None:
        return value
    from closeloop.engine.transforms import TRANSFORMS

    return TRANSFORMS[spec.transform](value)


@dataclass(frozen=True)
class NativeWrite:
    """Native fields to write, and the canonical values they stand for (the snapshot after success)."""

    fields: dict[str, JSONValue]
    canonical: dict[str, Canonical]


def to_native_fields(
    mapping: EntityMapping,
    system: str,
    obj: str,
    values: Mapping[str, Canonical],
    schema: ObjectSchema | None,
    owners: Owners | None = None,
) -> tuple[NativeWrite, list[MappingProblem]]:
    """Native fields for canonical values; read-only targets are skipped, restricted picklists checked, owners'
    emails turned into the target's user ids (an email without a user there is a problem naming it)."""
    native: dict[str, JSONValue] = {}
    written: dict[str, Canonical] = {}
    problems: list[MappingProblem] = []
    for name, value in values.items():
        spec = mapping.fields[name]
        target = spec.native_field(system, obj)
        if target is None:
            continue
        info = schema.fields.get(target) if schema else None
        if info is not None and info.read_only:
            continue
        if spec.type is FieldType.OWNER:
            try:
                native[target] = _directory(owners, system).to_native(value)
            except NormalizeError as exc:
                problems.append(MappingProblem(name, target, str(exc)))
                continue
            written[name] = value
            continue
        out = spec.to_native(system, value) if spec.type is FieldType.PICKLIST else value
        if info is not None and info.restricted and info.picklist and out is not None and out not in info.picklist:
            allowed = ", ".join(info.picklist)
            problems.append(MappingProblem(name, target, f"{out!r} is not allowed by {system}; allowed: {allowed}"))
            continue
        native[target] = to_native(spec.type, out if isinstance(out, str | bool) or out is None else str(out))
        written[name] = value
    return NativeWrite(native, written), problems
