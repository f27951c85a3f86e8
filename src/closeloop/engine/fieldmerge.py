"""The three-way field merge: a system's value against the golden record and that system's last snapshot.

A system *changed* a field when its value differs from what closeloop last saw from it or wrote to it (its
snapshot). The golden value is the last synced value. Both changed since the snapshot → a conflict, settled by
the field's policy. After closeloop writes a value, the system echoes it back with a new modified time but the
same value: the snapshot equals it, nothing happens. That is the echo guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from closeloop.config.models import FieldMapping
from closeloop.config.policies import LOOP, Earliest, FromLoop, OneWay, WriteOnce
from closeloop.engine.normalize import Canonical


class _Missing:
    """The marker of a snapshot value never seen (a first link)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class FieldState(NamedTuple):
    """A golden field: its value, the system that set it, and that system's modified time then.

    A named tuple, not a dataclass: a page builds one per field of every record it reads, and tuples are made in
    half the time.
    """

    value: Canonical
    by: str | None = None
    at: datetime | None = None


class Incoming(NamedTuple):
    """A system's current value of a field, with what closeloop last saw from that system.

    ``modified_at`` is when the system changed this field, where the vendor tells (a property history);
    otherwise the record's modified time, the latest the field can have changed.
    """

    system: str
    value: Canonical
    snapshot: Canonical | _Missing
    modified_at: datetime


def blank(value: object) -> bool:
    """None or an empty string."""
    return value is None or value == ""


def merge_field(field: FieldMapping, golden: FieldState | None, incoming: Incoming) -> FieldState | None:
    """The new golden state of one field after ``incoming``, or None when the golden value stands."""
    policy = field.policy
    current = golden.value if golden else None
    if isinstance(policy, FromLoop) or incoming.value == current:
        return None
    if isinstance(policy, OneWay) and incoming.system != policy.source:
        return None
    taken = FieldState(incoming.value, incoming.system, incoming.modified_at)
    if isinstance(policy, Earliest):
        return taken if not blank(incoming.value) and (blank(current) or _earlier(incoming.value, current)) else None
    if isinstance(policy, WriteOnce):
        return taken if blank(current) and not blank(incoming.value) else None
    if incoming.snapshot is not MISSING and incoming.value == incoming.snapshot:
        return None  # this system did not change; it is only behind (a write to it is owed)
    if golden is None or blank(current):
        return taken
    first_link = incoming.snapshot is MISSING
    if first_link and blank(incoming.value):
        return None  # a record seen for the first time never blanks a known value
    conflict = first_link or current != incoming.snapshot
    if not conflict or isinstance(policy, OneWay):
        return taken
    return taken if _incoming_wins(field, golden, incoming) else None


def settled_by_time(field: FieldMapping, golden: FieldState | None, incoming: Incoming) -> bool:
    """True when merging ``incoming`` is a conflict that the later change settles (both sides changed the field).

    These are the fields whose change times are worth asking a vendor for: ``merge_field`` compares
    ``incoming.modified_at`` with ``golden.at`` for them, and for nothing else.
    """
    policy = field.policy
    if field.prefer is not None or isinstance(policy, FromLoop | OneWay | Earliest | WriteOnce) or golden is None:
        return False
    current, snapshot = golden.value, incoming.snapshot
    if incoming.value == current or blank(current) or (snapshot is not MISSING and incoming.value == snapshot):
        return False
    if snapshot is MISSING:
        return not blank(incoming.value)
    return current != snapshot


def _earlier(value: Canonical, than: Canonical) -> bool:
    """True when ``value`` is an earlier time than ``than``; canonical times are ISO 8601 UTC text, so text order."""
    return str(value) < str(than)


def _incoming_wins(field: FieldMapping, golden: FieldState, incoming: Incoming) -> bool:
    """Settle a conflict: the preferred system wins (unless its value is blank), else the later change."""
    prefer = field.prefer
    if prefer is not None:
        preferred_value = incoming.value if incoming.system == prefer.system else golden.value
        if prefer.unless_blank and blank(preferred_value):
            return incoming.system != prefer.system
        return incoming.system == prefer.system
    if golden.at is None:
        return True
    # A tie in time goes to the incoming change: it is the one closeloop has seen last.
    return incoming.modified_at >= golden.at


def owed_values(
    field: FieldMapping, target: str, golden: FieldState | None, snapshot: Canonical | _Missing
) -> tuple[bool, Canonical]:
    """Whether ``target`` is owed this field's golden value, and the value."""
    if golden is None or (snapshot is not MISSING and snapshot == golden.value):
        return False, None  # the common case, settled before any policy is looked at: the target has the value
    source = golden.by or ""
    policy = field.policy
    if isinstance(policy, Earliest):
        return False, None  # a server-set time: every system keeps its own
    if isinstance(policy, FromLoop):
        allowed = source == LOOP
    elif isinstance(policy, OneWay):
        allowed = policy.flows(source, target) or (golden.by is None and policy.target == target)
    elif isinstance(policy, WriteOnce):
        allowed = True  # kept forever: it fills a blank anywhere, the setter's own included
    else:
        allowed = source != target or snapshot is MISSING
    if not allowed:
        return False, None
    if isinstance(policy, WriteOnce) and not blank(snapshot if snapshot is not MISSING else None):
        return False, None  # write-once only fills blanks elsewhere
    if blank(golden.value) and snapshot is MISSING:
        return False, None
    return True, golden.value


def changed_fields(
    fields: Mapping[str, FieldMapping], golden: Mapping[str, FieldState], incoming: Mapping[str, Incoming]
) -> dict[str, FieldState]:
    """Merge every incoming field; return the golden fields that change."""
    changes: dict[str, FieldState] = {}
    for name, value in incoming.items():
        merged = merge_field(fields[name], golden.get(name), value)
        if merged is not None:
            changes[name] = merged
    return changes


def first_fields(
    fields: Mapping[str, FieldMapping],
    system: str,
    values: Mapping[str, Canonical],
    modified_at: datetime,
    times: Mapping[str, datetime],
) -> dict[str, FieldState]:
    """The fields of a brand-new golden record made from one native record: the bulk path of a first sync.

    Exactly what :func:`changed_fields` gives over an empty golden record and a first link (no snapshot), without
    an ``Incoming`` per field: a value is taken unless it is None, the policy takes nothing from ``system``
    (from the loop, one-way from the other side), or it is blank where only a value counts (earliest, write-once).
    """
    taken: dict[str, FieldState] = {}
    for name, value in values.items():
        if value is None:
            continue
        policy = fields[name].policy
        if isinstance(policy, FromLoop) or (isinstance(policy, OneWay) and system != policy.source):
            continue
        if value == "" and isinstance(policy, Earliest | WriteOnce):
            continue
        taken[name] = FieldState(value, system, times.get(name, modified_at))
    return taken
