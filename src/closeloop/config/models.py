"""The engine's view of the configuration: frozen models with parsed policies, durations and filters."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import ConfigDict, Field, SecretStr

from closeloop.config.feedback import Feedback
from closeloop.config.policies import Filter, Frozen, Policy, Prefer, TwoWay
from closeloop.config.sla import SlaConfig
from closeloop.config.yamlsrc import Source
from closeloop.connector import ConnectorPlugin, Registry, SystemSettings
from closeloop.model import FieldType
from closeloop.state_url import password_of

GOLDEN_ID = "golden_id"
"""Upsert value meaning closeloop's own id of the golden record."""


class Entity(enum.StrEnum):
    """The canonical entities a mapping file can describe."""

    CONTACT = "contact"
    DEAL = "deal"


class OnDelete(enum.StrEnum):
    """What a deletion in one system does to the linked records elsewhere."""

    IGNORE = "ignore"
    UNLINK = "unlink"
    PROPAGATE = "propagate"


class Upsert(Frozen):
    """Creates upsert on native field ``key``, filled from canonical field ``value`` (or golden_id)."""

    key: str
    value: str


class SystemObjects(Frozen):
    """The native objects of one system that map to an entity."""

    system: str
    objects: tuple[str, ...]
    create_as: str
    upsert: Upsert | None = None
    partner_id: str | None = None
    """The native field (on every object of the system) that holds the linked record's id in the other system."""


class FieldMapping(Frozen):
    """One canonical field: its native field per system and object, its policy and its value maps."""

    name: str
    type: FieldType = FieldType.STRING
    native: Mapping[str, Mapping[str, str]] = Field(default_factory=dict)
    """system -> native object -> native field."""
    policy: Policy = Field(default_factory=TwoWay)
    prefer: Prefer | None = None
    values: Mapping[str, Mapping[str, str]] = Field(default_factory=dict)
    """system -> native value -> canonical value (picklists)."""
    transform: str | None = None

    @property
    def systems(self) -> tuple[str, ...]:
        """The systems that map this field."""
        return tuple(self.native)

    def native_field(self, system: str, obj: str) -> str | None:
        """The native field of ``obj`` in ``system``, or None when that object does not map this field."""
        return self.native.get(system, {}).get(obj)

    def to_canonical(self, system: str, value: object) -> object:
        """The canonical value of a native value (values without a map entry pass unchanged)."""
        table = self.values.get(system)
        if table is None or not isinstance(value, str):
            return value
        return table.get(value, value)

    def to_native(self, system: str, value: object) -> object:
        """The native value of a canonical value; when several native values map to it, the first listed."""
        table = self.values.get(system)
        if table is None or not isinstance(value, str):
            return value
        return next((native for native, canonical in table.items() if canonical == value), value)


class CreateRule(Frozen):
    """Records of ``source`` that pass ``filter`` may be created in ``target``."""

    source: str
    target: str
    filter: Filter = Field(default_factory=Filter)


_SPECS: dict[tuple[int, str, str], tuple[EntityMapping, tuple[tuple[str, FieldMapping, str], ...]]] = {}
"""EntityMapping.specs, worked out once per (mapping, system, object); the mapping is held so its id stays its own."""


class EntityMapping(Frozen):
    """One mapping file: how the native objects of each system map to a canonical entity."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    path: Path
    entity: Entity
    systems: Mapping[str, SystemObjects]
    match: tuple[str, ...] = ()
    fields: Mapping[str, FieldMapping] = Field(default_factory=dict)
    create: tuple[CreateRule, ...] = ()
    on_delete: OnDelete = OnDelete.IGNORE
    source: Source | None = Field(default=None, exclude=True, repr=False)
    """The file as loaded: problems found later (against the vendors' describe) name its lines and columns."""

    def objects(self, system: str) -> tuple[str, ...]:
        """The native objects of ``system`` in this mapping (empty when it has none)."""
        found = self.systems.get(system)
        return found.objects if found else ()

    def partner_field(self, system: str) -> str | None:
        """The native field of ``system`` that holds the other system's id of a record, if the mapping names one."""
        found = self.systems.get(system)
        return found.partner_id if found else None

    def native_field(self, system: str, obj: str, canonical: str) -> str | None:
        """The native field of ``obj`` in ``system`` that holds canonical field ``canonical``."""
        field = self.fields.get(canonical)
        return field.native_field(system, obj) if field else None

    def fields_for(self, system: str, obj: str) -> dict[str, str]:
        """Canonical field -> native field, for every field ``obj`` of ``system`` maps, in file order."""
        return {name: native for name, _, native in self.specs(system, obj)}

    def specs(self, system: str, obj: str) -> tuple[tuple[str, FieldMapping, str], ...]:
        """(canonical name, field mapping, native field) of every field ``obj`` of ``system`` maps, in file order.

        Worked out once per object: the engine asks for every record it maps or writes.
        """
        key = (id(self), system, obj)
        known = _SPECS.get(key)
        if known is None or known[0] is not self:
            found = ((name, field, field.native_field(system, obj)) for name, field in self.fields.items())
            known = (self, tuple((name, field, native) for name, field, native in found if native is not None))
            _SPECS[key] = known
        return known[1]

    def canonical_field(self, system: str, obj: str, native: str) -> str | None:
        """The canonical field that native field ``native`` of ``obj`` in ``system`` maps to."""
        return next((name for name, field in self.fields.items() if field.native_field(system, obj) == native), None)

    def create_rule(self, source: str, target: str) -> CreateRule | None:
        """The rule allowing creates from ``source`` into ``target``; None means never create."""
        return next((rule for rule in self.create if (rule.source, rule.target) == (source, target)), None)

    def may_create(self, source: str, target: str, record: Mapping[str, object]) -> bool:
        """True when a record of ``source`` with these canonical values may be created in ``target``."""
        rule = self.create_rule(source, target)
        return rule is not None and rule.filter.matches(record)


class Schedule(Frozen):
    """When a connection syncs: every ``every``, or on ``cron`` (UTC), plus up to ``jitter``."""

    every: timedelta | None = None
    cron: str | None = None
    jitter: timedelta = timedelta()


class Connection(Frozen):
    """Two systems kept in sync through entity mappings, contacts before deals."""

    name: str
    systems: tuple[str, str]
    mappings: tuple[EntityMapping, ...]
    schedule: Schedule = Field(default_factory=lambda: Schedule(every=timedelta(seconds=60)))
    lookback: timedelta = timedelta(minutes=10)
    marketing_system: str | None = None
    write_attempts: int = 8
    """Attempts at one queued write before its record goes to quarantine with the last error."""

    def other(self, system: str) -> str:
        """The system on the other side of ``system``."""
        first, second = self.systems
        if system not in self.systems:
            raise KeyError(f"system {system!r} is not in connection {self.name!r} ({first}, {second})")
        return second if system == first else first

    def mapping(self, entity: Entity | str) -> EntityMapping | None:
        """The mapping of ``entity`` in this connection, if any."""
        return next((m for m in self.mappings if m.entity == entity), None)


class SystemConfig(Frozen):
    """One configured system: its connector plugin name and its validated settings."""

    name: str
    connector: str
    settings: SystemSettings


class StateConfig(Frozen):
    """Where the state store lives: a SQLite file, or a PostgreSQL database when ``url`` is set."""

    path: Path = Path("./state/closeloop.db")
    url: SecretStr | None = None
    """A ``postgresql://`` URL; a secret, since it may hold the password."""

    def resolve(self, state_dir: Path | None) -> Path:
        """The state file, inside ``state_dir`` when one is given (e.g. a container volume)."""
        return state_dir / self.path.name if state_dir is not None else self.path

    def target(self, state_dir: Path | None, env_url: SecretStr | None = None) -> str | Path:
        """What to open: ``env_url`` (CLOSELOOP_STATE_URL) over the file's ``url`` over the SQLite file."""
        url = env_url or self.url
        return url.get_secret_value() if url is not None else self.resolve(state_dir)


class LoopConfig(Frozen):
    """Closed-loop settings: base currency, conversion rates, won stages, attribution half-life."""

    base_currency: str = "USD"
    rates: Mapping[str, Decimal] = Field(default_factory=dict)
    """1 unit of the currency = rate units of the base currency."""
    won_stages: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)
    time_decay_half_life_days: float = 7.0
    feedback: Feedback | None = None
    """Sales feedback on lead quality (``loop.feedback``), when configured."""
    sla: SlaConfig | None = None
    """The MQL follow-up SLA, when ``loop.sla`` is configured."""
    clv_horizon_days: int | None = None
    """Customer lifetime value counts the won deals closed within this many days of the first win (None: all)."""

    def to_base(self, amount: Decimal, currency: str | None) -> Decimal:
        """``amount`` in the base currency; KeyError (naming the known ones) for a currency without a rate."""
        if not currency or currency == self.base_currency:
            return amount
        if currency not in self.rates:
            known = ", ".join([self.base_currency, *sorted(self.rates)])
            raise KeyError(f"no rate for currency {currency!r}; known: {known}")
        return amount * self.rates[currency]


class LoadedConfig(Frozen):
    """A validated configuration with every mapping loaded: what the engine runs on."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    path: Path
    state: StateConfig = Field(default_factory=StateConfig)
    systems: Mapping[str, SystemConfig]
    connections: tuple[Connection, ...]
    loop: LoopConfig = Field(default_factory=LoopConfig)
    registry: Registry = Field(exclude=True, repr=False)

    def connection(self, name: str) -> Connection:
        """The connection called ``name``; KeyError lists the configured ones."""
        found = next((c for c in self.connections if c.name == name), None)
        if found is None:
            raise KeyError(f"unknown connection {name!r}; configured: {', '.join(c.name for c in self.connections)}")
        return found

    def plugin(self, system: str) -> ConnectorPlugin:
        """The connector plugin of a configured system."""
        return self.registry.get(self.systems[system].connector)

    def secrets(self) -> list[str]:
        """Every secret value in the systems' settings and the state store's URL, for log redaction."""
        found = [secret for system in self.systems.values() for secret in system.settings.secrets()]
        if self.state.url is not None:
            password = password_of(self.state.url.get_secret_value())
            found += [password] if password else []
        return found
