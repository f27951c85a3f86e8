"""``load_config``: the main configuration file, its systems and connections, and every mapping they use."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import SecretStr

from closeloop.config.documents import ConfigDoc, ConnectionDoc, LoopDoc, ScheduleDoc, StateDoc, SystemDoc
from closeloop.config.env import interpolate
from closeloop.config.feedback import Feedback, feedback_of
from closeloop.config.mapping_loader import LoadedMapping, load_mapping
from closeloop.config.models import (
    Connection,
    Entity,
    EntityMapping,
    LoadedConfig,
    LoopConfig,
    Schedule,
    StateConfig,
    SystemConfig,
)
from closeloop.config.policies import check_cron, check_every, parse_duration
from closeloop.config.problems import ConfigError, ConfigProblem, Problems, one_of, suggest, unknown
from closeloop.config.sla import parse_sla
from closeloop.config.structure import check_mapping, sections, validate
from closeloop.config.wiring import check_in_connection
from closeloop.config.yamlsrc import Loc, Source, load_source
from closeloop.connector import ConnectorPlugin, PluginError, Registry
from closeloop.connector import registry as default_registry
from closeloop.state_url import is_postgres_url

_CURRENCY = re.compile(r"[A-Z]{3}")


def load_config(path: Path, registry: Registry | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load ``path`` and every mapping it names; raise ``ConfigError`` carrying all problems found."""
    config, problems = check_config(path, registry, environ)
    if config is None:
        raise ConfigError(problems)
    return config


def check_config(
    path: Path, registry: Registry | None = None, environ: Mapping[str, str] | None = None
) -> tuple[LoadedConfig | None, list[ConfigProblem]]:
    """Load ``path`` collecting every problem in every file; the config is None when there is any."""
    problems = Problems()
    source = load_source(path, problems)
    config = None
    if source is not None:
        interpolate(source, os.environ if environ is None else environ, problems)
        if check_mapping(source, (), source.data, "the configuration file", problems):
            loader = _Loader(source, problems, registry or default_registry())
            config = loader.load()
    found = problems.sorted()
    return (config if not found else None), found


@dataclass
class _Loader:
    source: Source
    problems: Problems
    registry: Registry
    mappings: dict[Path, LoadedMapping | None] = field(default_factory=dict)

    def fail(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.source.problem(self.problems, loc, message, key=key)

    def load(self) -> LoadedConfig | None:
        data = self.source.data
        doc = sections(ConfigDoc, data, (), self.source, self.problems, per_entry=("systems",), skip=("connections",))
        systems = {name: s for name, raw in (doc.systems if doc else {}).items() if (s := self.system(name, raw))}
        connections = self.connections(data.get("connections"))
        loop = self.loop(doc.loop) if doc else None
        if loop is not None and loop.feedback is not None:
            self.check_feedback(loop.feedback, connections)
        state = self.state(doc.state) if doc else None
        if doc is None or self.problems or loop is None or state is None:
            return None
        return LoadedConfig(
            path=self.source.path,
            state=state,
            systems=systems,
            connections=tuple(connections),
            loop=loop,
            registry=self.registry,
        )

    def state(self, doc: StateDoc) -> StateConfig | None:
        # Relative to the config file, as mapping paths are: a command run from another folder finds the same store.
        path = self.source.path.parent / Path(doc.path).expanduser()
        if doc.url is None:
            return StateConfig(path=path)
        if "path" in doc.model_fields_set:
            self.fail(("state", "url"), "state.url and state.path name two different stores; give one of them")
            return None
        scheme = doc.url.split("://", 1)[0] if "://" in doc.url else ""
        if not is_postgres_url(doc.url):
            # The URL itself is never echoed: it may hold a password.
            found = f"scheme {scheme!r}" if scheme else "no scheme"
            self.fail(
                ("state", "url"),
                f"state.url must be a PostgreSQL URL, postgresql://user@host:5432/database (found {found}); "
                "a SQLite file goes in state.path",
            )
            return None
        return StateConfig(path=path, url=SecretStr(doc.url))

    def system(self, name: str, doc: SystemDoc) -> SystemConfig | None:
        try:
            plugin = self.registry.get(doc.connector)
        except PluginError:
            broken = self.registry.broken.get(doc.connector)
            hint = f" (it is installed but failed to load: {broken})" if broken else ""
            installed = f"installed: {one_of(self.registry.names)}" if self.registry.names else "none is installed"
            self.fail(
                ("systems", name, "connector"),
                f"unknown connector {doc.connector!r}{hint}; {installed}{suggest(doc.connector, self.registry.names)}",
            )
            return None
        loc: Loc = ("systems", name, "settings")
        try:
            settings = validate(plugin.settings_model, doc.settings, loc, self.source, self.problems)
        except Exception as exc:  # a third-party settings model may fail in any way; report it, never crash
            self.fail(
                loc,
                f"connector {doc.connector!r} could not check its settings: {type(exc).__name__}",
                key=True,
            )
            return None
        return SystemConfig(name=name, connector=doc.connector, settings=settings) if settings else None

    def connections(self, raw: object) -> list[Connection]:
        if raw is None:
            self.fail((), "missing required key 'connections' (a list of connections)")
            return []
        if not isinstance(raw, list) or not raw:
            self.fail(("connections",), "connections must be a non-empty list of connections")
            return []
        found: list[Connection] = []
        for index, item in enumerate(raw):
            doc = validate(ConnectionDoc, item, ("connections", index), self.source, self.problems)
            connection = self.connection(index, doc) if doc else None
            if connection and any(c.name == connection.name for c in found):
                self.fail(("connections", index, "name"), f"duplicate connection name {connection.name!r}")
            if connection:
                found.append(connection)
        return found

    def connection(self, index: int, doc: ConnectionDoc) -> Connection | None:
        loc: Loc = ("connections", index)
        configured = list(self.source.data.get("systems") or {})
        for position, system in enumerate(doc.systems):
            if system not in configured:
                self.fail((*loc, "systems", position), unknown("system", system, configured))
        if doc.systems[0] == doc.systems[1]:
            self.fail((*loc, "systems"), "a connection joins two different systems")
        if doc.marketing_system is not None and doc.marketing_system not in doc.systems:
            self.fail((*loc, "marketing_system"), unknown("system", doc.marketing_system, doc.systems))
        schedule = self.schedule((*loc, "schedule"), doc.schedule)
        lookback = self.duration((*loc, "lookback"), doc.lookback)
        mappings = self.connection_mappings(loc, doc)
        if schedule is None or lookback is None or mappings is None:
            return None
        return Connection(
            name=doc.name,
            systems=(doc.systems[0], doc.systems[1]),
            mappings=mappings,
            schedule=schedule,
            lookback=lookback,
            marketing_system=doc.marketing_system,
            write_attempts=doc.write_attempts,
        )

    def schedule(self, loc: Loc, doc: ScheduleDoc) -> Schedule | None:
        if (doc.every is None) == (doc.cron is None):
            self.fail(
                loc,
                "a schedule needs exactly one of 'every' (e.g. 60s) or 'cron' (e.g. '*/5 * * * *')",
                key=True,
            )
            return None
        every = self.every((*loc, "every"), doc.every) if doc.every is not None else None
        jitter = self.duration((*loc, "jitter"), doc.jitter) if doc.jitter is not None else None
        cron = None
        if doc.cron is not None:
            try:
                cron = check_cron(doc.cron)
            except ValueError as exc:
                self.fail((*loc, "cron"), str(exc))
        if (doc.every is not None and every is None) or (doc.cron is not None and cron is None):
            return None
        return Schedule(every=every, cron=cron, jitter=jitter or Schedule().jitter)

    def every(self, loc: Loc, value: str | int) -> timedelta | None:
        try:
            return check_every(parse_duration(value))
        except ValueError as exc:
            self.fail(loc, str(exc))
            return None

    def duration(self, loc: Loc, value: str | int) -> timedelta | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(loc, str(exc))
            return None

    def connection_mappings(self, loc: Loc, doc: ConnectionDoc) -> tuple[EntityMapping, ...] | None:
        loaded: list[EntityMapping] = []
        complete = True
        for index, name in enumerate(doc.mappings):
            found = self.mapping((*loc, "mappings", index), name)
            if found is None:
                complete = False
                continue
            plugins = {system: self.plugin_of(system) for system in doc.systems}
            check_in_connection(found, doc.name, doc.systems, plugins, self.problems)
            if any(m.entity == found.mapping.entity for m in loaded):
                self.fail(
                    (*loc, "mappings", index),
                    f"a second {found.mapping.entity.value} mapping; a connection has one mapping per entity",
                )
            elif loaded and found.mapping.entity is Entity.CONTACT:
                self.fail(
                    (*loc, "mappings", index),
                    "list the contact mapping before the deal mapping (contacts sync first, so deals can link to them)",
                )
            loaded.append(found.mapping)
        return tuple(loaded) if complete else None

    def mapping(self, loc: Loc, name: str) -> LoadedMapping | None:
        path = (self.source.path.parent / name).resolve()
        if not path.is_file():
            folder = path.parent
            there = sorted(p.name for p in folder.glob("*.y*ml")) if folder.is_dir() else []
            listing = f"; files there: {', '.join(there)}" if there else ""
            self.fail(
                loc,
                f"mapping file {name!r} not found (paths are relative to {self.source.path.name}; "
                f"looked for {path}){listing}",
            )
            return None
        if path not in self.mappings:
            self.mappings[path] = load_mapping(path, self.problems)
        return self.mappings[path]

    def plugin_of(self, system: str) -> ConnectorPlugin | None:
        raw = (self.source.data.get("systems") or {}).get(system)
        connector = raw.get("connector") if isinstance(raw, dict) else None
        return self.registry.plugins.get(connector) if isinstance(connector, str) else None

    def check_feedback(self, feedback: Feedback, connections: Sequence[Connection]) -> None:
        """The feedback's status and reason fields are canonical fields of a contacts mapping."""
        known = sorted({name for c in connections if (m := c.mapping(Entity.CONTACT)) is not None for name in m.fields})
        for key in ("status", "reason"):
            name = getattr(feedback, key)
            if known and name not in known:
                self.fail(("loop", "feedback", key), unknown("contact field", name, known))

    def loop(self, doc: LoopDoc) -> LoopConfig | None:
        rates: dict[str, Decimal] = {}
        for currency, text in doc.rates.items():
            loc: Loc = ("loop", "rates", currency)
            if not _CURRENCY.fullmatch(currency):
                self.fail(loc, f"bad currency code {currency!r}; use an ISO 4217 code such as 'EUR'", key=True)
            try:
                rates[currency] = Decimal(text)
            except InvalidOperation:
                rates[currency] = Decimal(0)
            if not rates[currency].is_finite() or rates[currency] <= 0:
                self.fail(loc, f'bad rate {text!r} for {currency}; use a positive decimal such as "1.08"')
        configured = list(self.source.data.get("systems") or {})
        for system in doc.won_stages:
            if system not in configured:
                self.fail(("loop", "won_stages", system), unknown("system", system, configured), key=True)
        won = {system: tuple(stages) for system, stages in doc.won_stages.items()}
        feedback = None
        if doc.feedback is not None:
            feedback, problems = feedback_of(doc.feedback)
            for problem in problems:
                self.fail(("loop", "feedback"), problem)
        sla = None
        if doc.sla is not None:
            try:
                sla = parse_sla(doc.sla)
            except ValueError as exc:
                self.fail(("loop", "sla"), str(exc))
        return LoopConfig(
            base_currency=doc.base_currency,
            rates=rates,
            won_stages=won,
            time_decay_half_life_days=doc.time_decay_half_life_days,
            feedback=feedback,
            sla=sla,
            clv_horizon_days=doc.clv_horizon_days,
        )
