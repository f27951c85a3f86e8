"""Owners mapped across systems by email: each system's user directory, read once per cycle when needed.

A field of type ``owner`` names the salesperson who owns a record. Systems name owners differently: HubSpot by
an owner id, Salesforce and Zoho by a user id, Marketo by the owner's email itself. The canonical value is the
owner's email (lower case), so an owner maps to whoever has the same email on the other side. A system's
directory (id <-> email) is kept from cycle to cycle and read again when it is older than ``MAX_AGE`` or does
not know an id or email the cycle meets: at most once per cycle, only when one of the connection's mappings maps
an owner field in that system, and only when the cycle has owner values to map there (news read, writes due).
An email without a user on the other side is a problem that names the email: the record's owner is not written
(the write goes to quarantine), never blanked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from closeloop.config.models import EntityMapping
from closeloop.connector import OwnerDirectory
from closeloop.engine.context import CycleContext
from closeloop.engine.normalize import Canonical, NormalizeError
from closeloop.model import FieldType, JSONValue, NativeRecord, Owner

NEVER = datetime.min.replace(tzinfo=UTC)
"""The read time of a directory never read: stale at once."""


class OwnerProblem(NormalizeError):
    """An owner that cannot be mapped: an unknown user id, or an email without a user in the target system."""


@dataclass(frozen=True)
class Directory:
    """One system's users by id and by email; ``emails`` when the system's owner fields hold emails already."""

    system: str
    by_id: Mapping[str, str] = field(default_factory=dict)
    """native user id -> email (lower case)."""
    by_email: Mapping[str, str] = field(default_factory=dict)
    """email (lower case) -> native user id, the active user where several share an email."""
    inactive: frozenset[str] = frozenset()
    """Emails whose only users are inactive (a CRM refuses them as owners)."""
    emails: bool = False
    read_at: datetime = NEVER

    @classmethod
    def of(cls, system: str, owners: Sequence[Owner], *, read_at: datetime | None = None) -> Directory:
        """The directory of ``system`` from its listed users."""
        by_id = {o.id: o.email.strip().lower() for o in owners if o.email and o.email.strip()}
        by_email: dict[str, str] = {}
        for owner in sorted(owners, key=lambda o: (o.active, o.id)):  # active users last: they win
            if owner.id in by_id:
                by_email[by_id[owner.id]] = owner.id
        active = {by_id[o.id] for o in owners if o.active and o.id in by_id}
        return cls(system, by_id, by_email, frozenset(set(by_email) - active), read_at=read_at or NEVER)

    @classmethod
    def of_emails(cls, system: str, *, read_at: datetime | None = None) -> Directory:
        """A system whose owner fields hold the owner's email (nothing to read)."""
        return cls(system, emails=True, read_at=read_at or datetime.max.replace(tzinfo=UTC))

    def to_canonical(self, value: JSONValue) -> Canonical:
        """The owner's email for a native owner value (an id, a lookup ``{id, email}`` or an email)."""
        if value is None or value == "":
            return None
        if self.emails:
            text = str(value).strip().lower()
            return text or None
        native = str(value.get("id", "")) if isinstance(value, dict) else str(value).strip()
        email = self.by_id.get(native)
        if email is None and isinstance(value, dict) and isinstance(value.get("email"), str):
            email = value["email"].strip().lower() or None  # a lookup that names its email (Zoho)
        if email is None:
            raise OwnerProblem(f"owner {native} is not among {self.system}'s users (or has no email)")
        return email

    def to_native(self, email: Canonical) -> JSONValue:
        """The native owner value for an owner's email; OwnerProblem naming the email when it has no user."""
        if email is None or self.emails:
            return email
        text = str(email).strip().lower()
        native = self.by_email.get(text)
        if native is None:
            raise OwnerProblem(f"no {self.system} user has the email {text}: the owner is not assigned")
        if text in self.inactive:
            raise OwnerProblem(f"the {self.system} user with the email {text} is inactive: the owner is not assigned")
        return native


MAX_AGE = timedelta(minutes=15)
"""A directory older than this is read again before it maps anything (users come and go, rarely)."""


def maps_owners(ctx: CycleContext, system: str) -> bool:
    """True when some mapping of the connection maps an owner field in ``system``."""
    return any(
        f.type is FieldType.OWNER and system in f.native
        for mapping in ctx.connection.mappings
        for f in mapping.fields.values()
    )


async def ensure_owners(ctx: CycleContext, system: str, *, refresh: bool = False) -> bool:
    """Have ``system``'s user directory at hand; True when it was read (or set up) just now.

    Directories outlive a cycle (``ctx.owners`` is the engine's): one is read when missing, older than
    ``MAX_AGE``, or on ``refresh`` (a user id or email it does not know) unless this cycle read it already. Called
    only where owner values are about to be mapped (news read, writes due): a quiet cycle reads no users, a busy
    one at most one directory per system.
    """
    if not maps_owners(ctx, system):
        return False
    known = ctx.owners.get(system)
    fresh = known is not None and ctx.clock() - known.read_at < MAX_AGE
    if (fresh and not refresh) or system in ctx.owners_read:
        return False
    connector = ctx.connectors[system]
    if isinstance(connector, OwnerDirectory):
        ctx.owners[system] = Directory.of(system, await connector.owners(), read_at=ctx.clock())
        ctx.count("owner_directories", system)
    else:
        ctx.owners[system] = Directory.of_emails(system, read_at=ctx.clock())
    ctx.owners_read.add(system)
    return True


def _owner_specs(mapping: EntityMapping, system: str, obj: str) -> list[str]:
    return [native for _, spec, native in mapping.specs(system, obj) if spec.type is FieldType.OWNER]


def unknown_ids(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, records: Sequence[NativeRecord]
) -> bool:
    """True when a live record names an owner the directory of ``system`` at hand does not know."""
    directory, natives = ctx.owners.get(system), _owner_specs(mapping, system, obj)
    if directory is None or not natives:
        return False
    for record in records:
        for native in natives:
            try:
                directory.to_canonical(record.fields.get(native))
            except OwnerProblem:
                return True
    return False


def unknown_emails(directory: Directory | None, emails: Iterable[object]) -> bool:
    """True when an owner's email has no user in the directory at hand (it may have joined since it was read)."""
    if directory is None or directory.emails:
        return False
    return any(isinstance(e, str) and e and e.strip().lower() not in directory.by_email for e in emails)
