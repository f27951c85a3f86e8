"""Parsed field policies, preferences, create filters, durations and cron expressions.

Each ``parse_*`` function raises ``ValueError`` with a message that names what would be valid; the loader
turns it into a problem at the YAML node.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Literal, NoReturn

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field

from closeloop.config.problems import one_of, unknown

LOOP = "loop"
"""The source name of values computed by closeloop itself (rollups)."""

Scalar = str | int | float | bool


class Frozen(BaseModel):
    """Base of the engine's configuration models: immutable, unknown attributes refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Rollup(enum.StrEnum):
    """Values closeloop computes per contact: from the revenue ledger, and the SLA breach time."""

    CLOSED_WON_REVENUE = "closed_won_revenue"
    CLOSED_WON_DEALS = "closed_won_deals"
    FIRST_CLOSED_WON_AT = "first_closed_won_at"
    LAST_CLOSED_WON_AT = "last_closed_won_at"
    CUSTOMER_SINCE = "customer_since"
    SLA_BREACHED_AT = "sla_breached_at"
    """When the contact's MQL follow-up SLA ran out without follow-up (from ``loop.sla``, not the ledger)."""


class TwoWay(Frozen):
    """Changes flow both ways; the later change wins, ties go to ``prefer``."""

    kind: Literal["two-way"] = "two-way"

    def flows(self, source: str, target: str) -> bool:
        """True when a change in ``source`` may be written to ``target``."""
        return source != LOOP


class OneWay(Frozen):
    """Changes flow from ``source`` to ``target`` only."""

    kind: Literal["one-way"] = "one-way"
    source: str
    target: str

    def flows(self, source: str, target: str) -> bool:
        """True when a change in ``source`` may be written to ``target``."""
        return (source, target) == (self.source, self.target)


class WriteOnce(Frozen):
    """The first non-empty value is kept forever and only fills blanks elsewhere."""

    kind: Literal["write-once"] = "write-once"

    def flows(self, source: str, target: str) -> bool:
        """True when a value from ``source`` may fill a blank in ``target``."""
        return source != LOOP


class Earliest(Frozen):
    """A server-set time (a creation date): the earliest value any system tells is kept; nothing is written.

    Each system sets its own creation time and refuses writes to it, so the copy closeloop creates in another
    system carries the time of that create; the earliest value is when the record really began.
    """

    kind: Literal["earliest"] = "earliest"

    def flows(self, source: str, target: str) -> bool:
        """Never: each system keeps its own value."""
        return False


class FromLoop(Frozen):
    """Computed by closeloop from the revenue ledger and written to the systems that map the field."""

    kind: Literal["from-loop"] = "from-loop"
    rollup: Rollup

    def flows(self, source: str, target: str) -> bool:
        """True only for the loop's own values."""
        return source == LOOP


Policy = Annotated[TwoWay | OneWay | WriteOnce | Earliest | FromLoop, Field(discriminator="kind")]


class Prefer(Frozen):
    """The system whose value wins ties (``unless_blank``: unless its value is blank)."""

    system: str
    unless_blank: bool = False


class Condition(Frozen):
    """One test on a canonical field of a record."""

    field: str
    op: Literal["in", "equals", "not_blank"]
    values: tuple[Scalar, ...] = ()

    def matches(self, record: Mapping[str, object]) -> bool:
        """True when the record's canonical value passes this test."""
        value = record.get(self.field)
        if self.op == "not_blank":
            return _blank(value) is not self.values[0]
        return any(_same(value, wanted) for wanted in self.values)


class Filter(Frozen):
    """Conditions that must all hold; no conditions means every record."""

    conditions: tuple[Condition, ...] = ()

    def matches(self, record: Mapping[str, object]) -> bool:
        """True when every condition holds for the record's canonical values."""
        return all(condition.matches(record) for condition in self.conditions)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(value: object, wanted: Scalar) -> bool:
    return value == wanted or (value is not None and str(value) == str(wanted))


_ONE_WAY = re.compile(r"^\s*([^\s>-][^\s>]*)\s*->\s*([^\s>]+)\s*$")


def parse_direction(text: str, systems: Sequence[str]) -> tuple[str, str]:
    """``'a -> b'`` with two different known systems."""
    found = _ONE_WAY.match(text)
    if not found:
        raise ValueError(f"bad direction {text!r}; valid: {one_of(_directions(systems))}")
    source, target = found.groups()
    for name in (source, target):
        if name not in systems:
            raise ValueError(unknown("system", name, systems, f" in {text!r}"))
    if source == target:
        raise ValueError(f"direction {text!r} goes from a system to itself; valid: {one_of(_directions(systems))}")
    return source, target


def parse_policy(text: str, systems: Sequence[str]) -> TwoWay | OneWay | WriteOnce | Earliest:
    """``two-way``, ``write-once``, ``earliest`` or ``<a> -> <b>`` over the mapping's systems."""
    if text.strip() == "two-way":
        return TwoWay()
    if text.strip() == "write-once":
        return WriteOnce()
    if text.strip() == "earliest":
        return Earliest()
    if "->" in text:
        source, target = parse_direction(text, systems)
        return OneWay(source=source, target=target)
    return _raise(unknown("policy", text, ["two-way", "write-once", "earliest", *_directions(systems)]))


def parse_prefer(text: str, systems: Sequence[str]) -> Prefer:
    """``<system>`` or ``<system> unless blank``."""
    words = text.split()
    unless_blank = words[1:] == ["unless", "blank"]
    if not words or (len(words) > 1 and not unless_blank):
        raise ValueError(
            f"bad prefer {text!r}; use '<system>' or '<system> unless blank' with a system of "
            f"this mapping: {one_of(systems)}"
        )
    if words[0] not in systems:
        raise ValueError(unknown("system", words[0], systems, " in prefer"))
    return Prefer(system=words[0], unless_blank=unless_blank)


def parse_from(text: str) -> FromLoop:
    """``loop.<rollup>``."""
    valid = [f"{LOOP}.{rollup.value}" for rollup in Rollup]
    name = text.strip().removeprefix(f"{LOOP}.")
    if text.strip().startswith(f"{LOOP}.") and name in {rollup.value for rollup in Rollup}:
        return FromLoop(rollup=Rollup(name))
    return _raise(unknown("rollup", text, valid))


_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str | int) -> timedelta:
    """``30s``, ``10m``, ``1h``, ``1d`` or combinations (``1h30m``); a bare number is seconds."""
    if isinstance(value, int) or value.strip().isdigit():
        return _span(value, seconds=int(value))
    parts = list(_DURATION.finditer(value))
    if not parts or "".join(p.group(0) for p in parts) != value:
        raise ValueError(f"bad duration {value!r}; use a number and a unit s, m, h or d: 30s, 10m, 1h, 1d, 1h30m")
    total = timedelta()
    for part in parts:
        total += _span(value, **{_UNITS[part.group(2)]: int(part.group(1))})
    return total


def _span(value: str | int, **amount: int) -> timedelta:
    if any(number < 0 for number in amount.values()):
        raise ValueError(f"bad duration {value!r}; a duration is not negative")
    try:
        return timedelta(**amount)
    except OverflowError:
        raise ValueError(f"bad duration {value!r}; it is too long to be a duration") from None


EVERY_RANGE = (timedelta(seconds=5), timedelta(days=31))
"""How often a connection may run: a cycle takes seconds and vendors' rate limits are per second to per day;
runs further apart than a month belong to ``cron``."""


def check_every(every: timedelta) -> timedelta:
    """``every`` when it lies within ``EVERY_RANGE``; else a ValueError naming the range."""
    low, high = EVERY_RANGE
    if low <= every <= high:
        return every
    return _raise(
        f"every: {_spoken(every)} is out of range; a schedule runs every {_spoken(low)} to {_spoken(high)} "
        "(use cron for rarer runs)"
    )


def _spoken(span: timedelta) -> str:
    """A duration as written in the config (``5s``, ``31d``, ``1d2h``)."""
    rest, words = int(span.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            words.append(f"{amount}{unit}")
    return "".join(words) or "0s"


def check_cron(expression: str) -> str:
    """A five-field cron expression (minute hour day month weekday), evaluated in UTC."""
    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"bad cron expression {expression!r}: {exc}; use five fields "
            "'minute hour day month weekday', e.g. '*/5 * * * *'"
        ) from None
    return expression.strip()


def _directions(systems: Sequence[str]) -> list[str]:
    return [f"{a} -> {b}" for a in systems for b in systems if a != b]


def _raise(message: str) -> NoReturn:
    raise ValueError(message)
