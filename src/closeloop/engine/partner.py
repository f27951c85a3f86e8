"""Partner ids: each side of a link carries the other side's native id in a field closeloop owns.

A mapping names that field per system (``partner_id``). closeloop writes it on every create and link, and reads
it back, so that a state store rebuilt from nothing re-links records through the vendors' own data: a record
whose partner id names a record already linked joins that record's golden record, and a record named by the
partner id of a linked record joins it too (whichever of the two is read first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from closeloop.config.models import EntityMapping
from closeloop.model import NativeRecord
from closeloop.store.rows import Link


def partner_key(system: str) -> str:
    """The golden-record key holding the native id in ``system`` that a linked record names as its partner.

    Keys starting with "~" never collide with match keys (canonical names may not start with "~").
    """
    return f"~id:{system}"


def carried(mapping: EntityMapping, system: str, record: NativeRecord) -> str | None:
    """The partner id a native record carries ("" when blank), as its link keeps it; None when unmapped."""
    field = mapping.partner_field(system)
    if field is None:
        return None
    value = record.fields.get(field)
    return str(value).strip() if value not in (None, "") else ""


def claimed(mapping: EntityMapping, system: str, record: NativeRecord) -> str | None:
    """The other system's id a native record names as its partner, if it names one."""
    return carried(mapping, system, record) or None


def partner_of(links: Iterable[Link], mapping: EntityMapping, other: str) -> str | None:
    """The native id of a golden record's live record in ``other``: the partner id owed to this side."""
    objects = mapping.objects(other)
    return next(
        (link.native_id for link in links if link.system == other and link.object in objects and not link.deleted),
        None,
    )


def claims(links: Iterable[Link], others: Mapping[str, str]) -> dict[str, str]:
    """The partner keys of a golden record: per system, the native id its linked records name there.

    ``others`` maps each system to the one across the connection.
    """
    found: dict[str, str] = {}
    for link in links:
        value = link.partner_id
        if value and not link.deleted and link.system in others:
            found[partner_key(others[link.system])] = value
    return found
