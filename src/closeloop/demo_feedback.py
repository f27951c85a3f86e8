"""The demo's sales feedback step: sales closes a lead as rejected, with a reason, owned by a salesperson; one
cycle later its marketing contact shows the reason and the same salesperson as owner (mapped by email).

Everything goes through the vendors' APIs and the shipped mappings: the lead status and reason fields are those
``loop.feedback`` names, the owner field is the mapping's field of type ``owner``.
"""

from __future__ import annotations

from rich.console import Console

from closeloop.config.feedback import Verdict
from closeloop.config.models import Entity, EntityMapping
from closeloop.connector import OwnerDirectory
from closeloop.engine.runtime import Engine
from closeloop.model import FieldType, ObjectSchema, WriteOp, WriteRequest

EMAIL = "rejected.lead@example.com"


def _owner_field(mapping: EntityMapping) -> str | None:
    return next((name for name, spec in mapping.fields.items() if spec.type is FieldType.OWNER), None)


def _rejected_status(schema: ObjectSchema, native: str, engine: Engine) -> str | None:
    feedback = engine.config.loop.feedback
    info = schema.fields.get(native)
    values = info.picklist if info is not None and info.picklist else ()
    return next((v for v in values if feedback is not None and feedback.verdict(v) is Verdict.REJECTED), None)


async def _salesperson(engine: Engine, crm: str, marketing: str) -> tuple[str, str] | None:
    """(CRM user id, email) of an active salesperson who is also an owner in the marketing system."""
    crm_users, marketing_users = engine.connector(crm), engine.connector(marketing)
    if not isinstance(crm_users, OwnerDirectory) or not isinstance(marketing_users, OwnerDirectory):
        return None
    there = {o.email.lower() for o in await marketing_users.owners() if o.active}
    found = [o for o in await crm_users.owners() if o.active and o.email.lower() in there]
    chosen = found[1] if len(found) > 1 else (found[0] if found else None)  # the first is the integration user
    return (chosen.id, chosen.email) if chosen else None


async def reject_a_lead(engine: Engine, crm: str, marketing: str, connection: str, console: Console) -> str | None:
    """Create a lead in the CRM through its API, already closed as rejected with a reason and owned by a
    salesperson; return its native id (None when the configuration has no feedback or no such fields)."""
    feedback = engine.config.loop.feedback
    mapping = engine.config.connection(connection).mapping(Entity.CONTACT)
    if feedback is None or mapping is None:
        return None
    connector = engine.connector(crm)
    for obj in mapping.objects(crm):
        status, reason = (mapping.native_field(crm, obj, name) for name in (feedback.status, feedback.reason))
        if status is None or reason is None:
            continue
        schema = await connector.describe(obj)
        rejected = _rejected_status(schema, status, engine)
        reasons = schema.fields[reason].picklist if reason in schema.fields else None
        if rejected is None:
            continue
        because = reasons[min(1, len(reasons) - 1)] if reasons else "Not a fit"  # a picklist's second value
        fields: dict[str, object] = {status: rejected, reason: because}
        for name, value in (("email", EMAIL), ("last_name", "Rejected"), ("company", "Demo Corp")):
            native = mapping.native_field(crm, obj, name)
            if native:
                fields[native] = value
        owner, salesperson = _owner_field(mapping), await _salesperson(engine, crm, marketing)
        native_owner = mapping.native_field(crm, obj, owner) if owner else None
        if native_owner and salesperson:
            fields[native_owner] = salesperson[0]
        (result,) = await connector.write(obj, [WriteRequest("reject", WriteOp.CREATE, fields)])
        if result.ok:
            who = f", owned by {salesperson[1]}" if salesperson else ""
            console.print(f"sales closed {crm} {obj} {EMAIL} as {rejected!r} ({fields[reason]}){who}")
            return result.native_id
    return None


async def show_feedback_in_marketing(engine: Engine, marketing: str, connection: str, console: Console) -> None:
    """The rejected lead's marketing contact: its rejection reason and its owner's email, read through the API."""
    feedback = engine.config.loop.feedback
    mapping = engine.config.connection(connection).mapping(Entity.CONTACT)
    if feedback is None or mapping is None:
        return
    connector = engine.connector(marketing)
    for obj in mapping.objects(marketing):
        email = mapping.native_field(marketing, obj, "email")
        found = await connector.search(obj, email, [EMAIL]) if email else []
        if not found:
            continue
        record = found[0]
        reason = mapping.native_field(marketing, obj, feedback.reason)
        owner = _owner_field(mapping)
        native_owner = mapping.native_field(marketing, obj, owner) if owner else None
        owners = await connector.owners() if isinstance(connector, OwnerDirectory) else []
        owner_id = record.fields.get(native_owner) if native_owner else None
        owner_email = next((o.email for o in owners if o.id == owner_id), owner_id)
        console.print(
            f"  {marketing} contact {EMAIL}: {reason} = [bold green]{record.fields.get(reason or '')}[/bold green], "
            f"{native_owner} = {owner_id} ([bold green]{owner_email}[/bold green])"
        )
