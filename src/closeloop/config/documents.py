"""Pydantic models of the two YAML files exactly as admins write them.

They check structure (keys and scalar types) and generate the JSON Schema editors use. Meaning (policies,
durations, systems, fields) is parsed afterwards into the engine's models in ``closeloop.config.models``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from closeloop.config.sla import SlaDoc
from closeloop.model import FieldType

Duration = Annotated[
    str | int,
    Field(
        description="A number and a unit s, m, h or d (30s, 10m, 1h, 1d, 1h30m); a bare number is seconds.",
        json_schema_extra={"pattern": r"^\s*(\d+\s*[smhd]\s*)+$"},
    ),
]
Scalar = str | int | float | bool
NativeField = Annotated[
    str | dict[str, str],
    Field(description="The native field name, or {NativeObject: field} when the objects of a system differ."),
]


class Doc(BaseModel):
    """Base of every document model: unknown keys are errors, numbers are accepted where text is expected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)


class StateDoc(Doc):
    """Where the state store lives: a SQLite file (the default) or a PostgreSQL database."""

    path: str = Field(
        default="./state/closeloop.db", description="SQLite file of the state store, relative to this file."
    )
    url: str | None = Field(
        default=None,
        description="PostgreSQL state store, postgresql://user@host:5432/database?sslmode=verify-full; the password "
        "as ${ENV} or from PGPASSWORD/.pgpass. CLOSELOOP_STATE_URL overrides it. Excludes path.",
    )


class SystemDoc(Doc):
    """One system: an installed connector plugin and its settings."""

    connector: str = Field(description="Name of an installed connector plugin.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Validated by the connector's settings model; secrets as ${ENV}."
    )


class ScheduleDoc(Doc):
    """When a connection syncs: ``every`` a duration or on a five-field ``cron`` expression."""

    every: Duration | None = None
    cron: str | None = Field(default=None, description="Five-field cron expression, in UTC.")
    jitter: Duration | None = None


class ConnectionDoc(Doc):
    """Two systems kept in sync through a list of mapping files."""

    name: str
    systems: list[str] = Field(min_length=2, max_length=2, description="Exactly two system names.")
    mappings: list[str] = Field(min_length=1, description="Mapping files, relative to the config file.")
    schedule: ScheduleDoc = Field(default_factory=lambda: ScheduleDoc(every="60s"))
    lookback: Duration = "10m"
    marketing_system: str | None = Field(default=None, description="Where loop rollups are written back.")
    write_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Attempts at one queued write, the first included, before its record goes to quarantine.",
    )


class FeedbackDoc(Doc):
    """Sales feedback (``loop.feedback``): which lead status values mean accepted, rejected and recycled."""

    status: str = Field(default="lead_status", description="Canonical contact field holding the lead status.")
    reason: str = Field(
        default="rejection_reason", description="Canonical contact field holding a rejected lead's reason."
    )
    accepted: list[str] = Field(default_factory=list, description="Status values meaning sales accepted the lead.")
    rejected: list[str] = Field(default_factory=list, description="Status values meaning sales rejected the lead.")
    recycled: list[str] = Field(
        default_factory=list, description="Status values meaning sales sent the lead back to marketing."
    )


class LoopDoc(Doc):
    """Closed-loop settings: currencies, won stages, attribution."""

    base_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    rates: dict[str, str] = Field(
        default_factory=dict, description="1 unit of the currency = rate units of the base currency."
    )
    won_stages: dict[str, list[str]] = Field(default_factory=dict, description="Won stages per system.")
    time_decay_half_life_days: float = Field(default=7, gt=0)
    feedback: FeedbackDoc | None = Field(default=None, description="Sales feedback: lead statuses -> verdicts.")
    sla: SlaDoc | None = Field(default=None, description="The MQL follow-up SLA the report holds sales to.")
    clv_horizon_days: int | None = Field(
        default=None,
        ge=1,
        description="Customer lifetime value counts won deals closed within this many days of a "
        "customer's first win (default: all of them).",
    )


class ConfigDoc(Doc):
    """The main configuration file (closeloop.yaml)."""

    state: StateDoc = Field(default_factory=StateDoc)
    systems: dict[str, SystemDoc]
    connections: list[ConnectionDoc] = Field(min_length=1)
    loop: LoopDoc = Field(default_factory=LoopDoc)


class UpsertDoc(Doc):
    """The native field used as upsert key and the canonical field (or ``golden_id``) that fills it."""

    key: str
    value: str


class MappingSystemDoc(Doc):
    """The native objects of one system that map to the entity."""

    objects: list[str] = Field(min_length=1)
    create_as: str | None = Field(default=None, description="Object that receives creates (default: first).")
    upsert: UpsertDoc | None = None
    partner_id: str | None = Field(
        default=None,
        description="A field of this system's objects, owned by closeloop, that holds the other system's native id: "
        "written on create and link, read to re-link records when the state store is lost.",
    )


class ConditionDoc(Doc):
    """A test on one canonical field: ``in``, ``equals`` or ``not_blank``."""

    in_: list[Scalar] | None = Field(default=None, alias="in")
    equals: Scalar | None = None
    not_blank: bool | None = None


class FieldDoc(BaseModel):
    """One canonical field; keys other than these name a system of the mapping and give its native field."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)
    __pydantic_extra__: dict[str, NativeField] = Field(init=False)

    type: FieldType = FieldType.STRING
    policy: str | None = Field(default=None, description="two-way (default), '<a> -> <b>', write-once or earliest.")
    prefer: str | None = Field(default=None, description="'<system>' or '<system> unless blank'.")
    from_: str | None = Field(default=None, alias="from", description="loop.<rollup>: computed by closeloop.")
    values: dict[str, dict[str, str]] | None = Field(
        default=None, description="Per system: native value -> canonical value (picklists only)."
    )
    transform: str | None = Field(default=None, description="Name of a registered transform.")


Filter = Literal["all"] | dict[str, ConditionDoc]


class MappingDoc(Doc):
    """A mapping file: how the native objects of each system map to one canonical entity."""

    entity: Literal["contact", "deal"]
    systems: dict[str, MappingSystemDoc]
    match: list[str] = Field(default_factory=list, description="Canonical fields to match unlinked records.")
    fields: dict[str, FieldDoc]
    create: dict[str, Filter] = Field(
        default_factory=dict, description="'<a> -> <b>': all, or a filter on canonical values."
    )
    on_delete: Literal["ignore", "unlink", "propagate"] = "ignore"


FIELD_KEYS = ("type", "policy", "prefer", "from", "values", "transform")
"""The keys of a field entry that are not system names."""
