"""Owners mapped across systems by email: each system's user directory, read once per cycle when needed.

A field of type ``owner`` names the salesperson who owns a record. Systems name owners differently: HubSpot by
an owner id, Salesforce and Zoho by a user id, Marketo by the owner's email itself. The canonical value is the
owner's email (lower case), so an owner maps to whoever has the same email on the other side. A system's
directory (id <-> email) is read at most once per cycle, only when one of the connection's mappings maps an
owner field in that system, and only when the cycle has owner values to map there (news read, writes due).
An email without a user on the other side is a problem that names the email: the record's owner is not written
(the write goes to quarantine), never blanked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from closeloop.connector import OwnerDirectory
from closeloop.engine.context import CycleContext
from closeloop.engine.normalize import Canonical, NormalizeError
from closeloop.model import FieldType, JSONValue, Owner


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

    @classmethod
    def of(cls, system: str, owners: Sequence[Owner]) -> Directory:
        """The directory of ``system`` from its listed users."""
        by_id = {o.id: o.email.strip().lower() for o in owners if o.email and o.email.strip()}
        by_email: dict[str, str] = {}
        for owner in sorted(owners, key=lambda o: (o.active, o.id)):  # active users last: they win
            if owner.id in by_id:
                by_email[by_id[owner.id]] = owner.id
        active = {by_id[o.id] for o in owners if o.active and o.id in by_id}
        return cls(system, by_id, by_email, frozenset(set(by_email) - active))

    @classmethod
    def of_emails(cls, system: str) -> Directory:
        """A system whose owner fields hold the owner's email (nothing to read)."""
        return cls(system, emails=True)

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


def maps_owners(ctx: CycleContext, system: str) -> bool:
    """True when some mapping of the connection maps an owner field in ``system``."""
    return any(
        f.type is FieldType.OWNER and system in f.native
        for mapping in ctx.connection.mappings
        for f in mapping.fields.values()
    )


async def ensure_owners(ctx: CycleContext, system: str) -> bool:
    """Read the user directory of ``system`` unless this cycle has it, or no mapping maps an owner field there.

    Called only where owner values are about to be mapped (a page with news, writes due): a quiet cycle reads
    no users, a busy one reads each directory once. True when it read (or set up) the directory just now.
    """
    if system in ctx.owners or not maps_owners(ctx, system):
        return False
    connector = ctx.connectors[system]
    if isinstance(connector, OwnerDirectory):
        ctx.owners[system] = Directory.of(system, await connector.owners())
        ctx.count("owner_directories", system)
    else:
        ctx.owners[system] = Directory.of_emails(system)
    return True
