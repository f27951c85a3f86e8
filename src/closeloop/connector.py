"""The Connector protocol, the plugin record a connector package exports, and the registry that finds them.

A connector knows one vendor's API and nothing of sync policy. Packages register a :class:`ConnectorPlugin`
under the entry point group ``closeloop.connectors``; the core never imports a connector by name.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from closeloop.model import (
    ActivityPage,
    Association,
    Cursor,
    Limits,
    NativeRecord,
    ObjectSchema,
    OwnedField,
    Owner,
    Page,
    TouchPage,
    Touchpoint,
    WriteRequest,
    WriteResult,
)

ENTRY_POINT_GROUP = "closeloop.connectors"

log = logging.getLogger(__name__)


@runtime_checkable
class Connector(Protocol):
    """What every connector offers, per native object (``contacts``, ``Lead``, ``Opportunity``...)."""

    system: str
    """The system's name in the configuration (several systems may use one connector)."""

    async def describe(self, obj: str) -> ObjectSchema:
        """Fields (type, read-only, picklist values) and, for deal objects, stage metadata."""
        ...

    def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """Pages of records changed after ``since`` in (modified_at, id) order, deletions and merges included.

        A connector may also hand back older versions (e.g. a periodic sweep of deleted records): the
        engine skips every version it has already applied.
        """
        ...

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """The records with these ids that exist (in batches of the vendor's maximum)."""
        ...

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """The records whose native field ``key`` equals one of ``values`` (e.g. email matching)."""
        ...

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Write a batch; one result per request, in request order, per-record errors included."""
        ...

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Links from these records (deals) to their contacts, as ``Association(deal_id, contact_id, role)``."""
        ...

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Create links from records of ``obj`` (deals) to contacts; results in input order."""
        ...

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """Marketing touchpoints of these records (empty where the vendor has none)."""
        ...

    def limits(self, obj: str) -> Limits:
        """The vendor's limits for this object's endpoints."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client."""
        ...


FieldTimes = dict[str, dict[str, datetime]]
"""native id -> native field -> when that field last changed."""


@runtime_checkable
class FieldHistory(Protocol):
    """A connector whose vendor keeps per-field change times (property or field history), read on demand."""

    async def field_times(self, obj: str, ids: Sequence[str], fields: Sequence[str]) -> FieldTimes:
        """When each of ``fields`` of these records last changed; those the vendor keeps no history of are left
        out."""
        ...


@runtime_checkable
class OwnerDirectory(Protocol):
    """A connector whose records name their owner by a user id: it lists the users, so owners map by email.

    Connectors whose owner fields hold the email itself (Marketo's ``leadOwnerEmail``) do not offer this.
    """

    async def owners(self) -> list[Owner]:
        """Every user who can own a record, with their email (inactive users too, flagged)."""
        ...


@runtime_checkable
class FieldCreator(Protocol):
    """A connector that can create closeloop's own fields through the vendor's metadata API (optional)."""

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        """Create these fields on ``obj``; the next ``describe(obj)`` lists them."""
        ...


@runtime_checkable
class TouchStream(Protocol):
    """A connector whose touches change apart from their people (campaign memberships): it streams them too."""

    def touch_changes(self, since: Cursor | None) -> AsyncIterator[TouchPage]:
        """Pages of the touches whose source records changed after ``since``, in (modified_at, id) order."""
        ...


@runtime_checkable
class ActivityStream(Protocol):
    """A CRM whose sales activities (calls, emails, meetings, tasks) closeloop reads for the follow-up SLA."""

    def activity_streams(self) -> tuple[str, ...]:
        """The vendor's activity objects, each read as its own stream with its own cursor (``Task``, ``Event``)."""
        ...

    def activity_changes(self, stream: str, since: Cursor | None) -> AsyncIterator[ActivityPage]:
        """Pages of the activities of ``stream`` changed after ``since``, deletions included."""
        ...


@runtime_checkable
class UnnamedMerges(Protocol):
    """A connector whose vendor deletes a merged-away record like any other and never names the one it merged into.

    For its contacts, the engine tells a merge from a plain deletion by what it last saw
    (``closeloop.engine.survivors``).
    """

    def merges_unnamed(self, obj: str) -> bool:
        """True when a deletion of ``obj`` may be a merge that the vendor reports as a plain deletion."""
        ...


BodyFormat = Literal["json", "xml"]
"""The body formats a webhook sender may be declared to post."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a verifier may look at: method, the full URI as the sender called it, headers (lower-case), body."""

    method: str
    uri: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Verdict:
    """Whether a webhook is authentic, and why not (for the log, never for the caller)."""

    ok: bool
    reason: str = ""


Verifier = Callable[[WebhookRequest, SecretStr, datetime], Verdict]
"""Checks one webhook against the secret at a time; the generic ones are in :mod:`closeloop.webhooks`."""


@dataclass(frozen=True)
class WebhookSpec:
    """How a connector's webhooks are verified, and the body its sender needs as acknowledgement."""

    verify: Verifier
    ack: tuple[str, str] | None = None
    """(media type, body) of the reply; None: a small JSON reply."""
    body: BodyFormat | None = None
    """The format the sender always posts; any other body is refused with 400 before verification."""


class SystemSettings(BaseModel):
    """Settings every system entry accepts; a connector's own settings model extends this."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, description="Override the vendor's API base URL (sandboxes).")
    auth_url: str | None = Field(default=None, description="Override the vendor's auth host, where it has one.")
    daily_budget: int | None = Field(default=None, ge=1, description="Admin cap on API calls per day.")
    budget_reserve: float = Field(default=0.1, ge=0, lt=1, description="Share of the daily budget kept free.")
    requests_per_window: int | None = Field(default=None, ge=1, description="Override the rate limit.")
    window_seconds: float | None = Field(default=None, gt=0, description="Override the rate window.")
    max_concurrency: int | None = Field(default=None, ge=1, description="Override the concurrency cap.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request deadline.")
    page_size: int | None = Field(default=None, ge=1, description="Override the read page size.")
    backoff_base_seconds: float = Field(default=0.5, gt=0, description="First retry wait (doubles, jittered).")
    backoff_max_seconds: float = Field(default=30.0, gt=0, description="Longest single retry wait.")
    max_attempts: int = Field(default=6, ge=1, description="Attempts per request, the first included.")

    def secrets(self) -> list[str]:
        """Every secret value in these settings, for log redaction."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        return found


@dataclass(frozen=True)
class ConnectorContext:
    """What the core hands a connector factory."""

    system: str
    settings: SystemSettings
    transport: httpx.AsyncBaseTransport | None = None
    """In-process transport (``httpx.ASGITransport`` over a sandbox) for tests and benchmarks."""
    clock: Callable[[], datetime] | None = None
    on_response: Callable[[str, httpx.Response], None] | None = None
    """Observer of every response (system, response), used for metrics and API-call counts."""


@dataclass(frozen=True)
class ConnectorPlugin:
    """The record a connector package exports under the ``closeloop.connectors`` entry point group."""

    name: str
    settings_model: type[SystemSettings]
    create: Callable[[ConnectorContext], Connector]
    objects: Mapping[str, str] = field(default_factory=dict)
    """Native objects and their role: ``{"contacts": "contact", "deals": "deal"}``."""
    sandbox: Callable[..., Any] | None = None
    """Factory of the vendor's emulator: ``sandbox(seed=..., **knobs)`` returns a SandboxApp. Use
    :func:`sandbox_from` so the emulator (and the ``closeloop[sandbox]`` extra it needs) loads only when called."""
    webhook: WebhookSpec | None = None
    """How the vendor's webhooks to ``/webhooks/<name>`` are verified, when it sends any."""
    description: str = ""


def sandbox_from(module: str, name: str = "create_sandbox") -> Callable[..., Any]:
    """A sandbox factory that imports ``module`` when first called, never when the plugin loads.

    The daemon loads every plugin; their emulators and the emulators' dependencies (Faker, sortedcontainers: the
    ``closeloop[sandbox]`` extra) must stay out of its process. Without the extra, calling the factory raises the
    ``ModuleNotFoundError`` naming the missing package.
    """

    def create(**knobs: Any) -> Any:
        factory: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return factory(**knobs)

    create.__qualname__ = create.__name__ = f"sandbox_from({module!r})"
    return create


class PluginError(Exception):
    """A plugin that could not be loaded or does not fit the protocol."""


def check_plugin(obj: object, entry_name: str) -> ConnectorPlugin:
    """Check a loaded entry point against the plugin contract, so mistakes surface at start-up."""
    if not isinstance(obj, ConnectorPlugin):
        raise PluginError(f"entry point {entry_name!r} is {type(obj).__name__}, not a ConnectorPlugin")
    if obj.name != entry_name:
        raise PluginError(f"entry point {entry_name!r} exports a plugin named {obj.name!r}")
    if not (isinstance(obj.settings_model, type) and issubclass(obj.settings_model, SystemSettings)):
        raise PluginError(f"plugin {entry_name!r}: settings_model must extend closeloop SystemSettings")
    if not callable(obj.create):
        raise PluginError(f"plugin {entry_name!r}: create is not callable")
    bad_roles = {role for role in obj.objects.values() if role not in ("contact", "deal")}
    if bad_roles:
        raise PluginError(f"plugin {entry_name!r}: unknown object roles {sorted(bad_roles)}")
    return obj


@dataclass
class Registry:
    """The connectors installed in this environment, found through entry points."""

    plugins: dict[str, ConnectorPlugin] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """Load every entry point of ``group``; a broken plugin is reported and skipped, never fatal."""
        registry = cls()
        for entry in sorted(entry_points(group=group), key=lambda e: e.name):
            registry._load(entry)
        return registry

    def _load(self, entry: EntryPoint) -> None:
        try:
            self.plugins[entry.name] = check_plugin(entry.load(), entry.name)
        except Exception as exc:  # a third-party plugin may fail in any way; report it and go on
            self.broken[entry.name] = f"{type(exc).__name__}: {exc}"
            log.warning("connector plugin %r skipped: %s", entry.name, self.broken[entry.name])

    @property
    def names(self) -> list[str]:
        """Installed connector names, sorted."""
        return sorted(self.plugins)

    def get(self, name: str) -> ConnectorPlugin:
        """The plugin called ``name``, or an error listing the installed ones."""
        try:
            return self.plugins[name]
        except KeyError:
            installed = ", ".join(self.names) or "none"
            hint = f" ({name} failed to load: {self.broken[name]})" if name in self.broken else ""
            raise PluginError(f"unknown connector {name!r}{hint}; installed: {installed}") from None

    def create(self, name: str, context: ConnectorContext) -> Connector:
        """Create a connector and check that it satisfies the protocol."""
        connector = self.get(name).create(context)
        if not isinstance(connector, Connector):
            raise PluginError(f"connector {name!r} does not implement the Connector protocol")
        return connector


_default: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, discovered once on first use."""
    global _default
    if _default is None:
        _default = Registry.discover()
    return _default
