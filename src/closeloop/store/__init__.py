"""The state store: golden records, links, cursors, outbox, quarantine, runs and the closed-loop tables.

Open one with ``Store.open(path)``; type against ``StateStore`` so another backend can stand in later.
"""

from closeloop.store.api import StateStore
from closeloop.store.db import MEMORY, StoreError
from closeloop.store.migrations import MIGRATIONS, Migrations, SchemaTooNewError, migration
from closeloop.store.queue_tables import record_key
from closeloop.store.rows import (
    DealContact,
    Fields,
    FieldValue,
    Golden,
    LedgerEntry,
    LedgerKind,
    Link,
    OutboxEntry,
    OutboxItem,
    PendingAssociation,
    QuarantineEntry,
    QuarantineStatus,
    Rollup,
    Run,
    RunStatus,
    TouchpointRow,
)
from closeloop.store.sqlite import Store

__all__ = [
    "MEMORY",
    "MIGRATIONS",
    "DealContact",
    "FieldValue",
    "Fields",
    "Golden",
    "LedgerEntry",
    "LedgerKind",
    "Link",
    "Migrations",
    "OutboxEntry",
    "OutboxItem",
    "PendingAssociation",
    "QuarantineEntry",
    "QuarantineStatus",
    "Rollup",
    "Run",
    "RunStatus",
    "SchemaTooNewError",
    "StateStore",
    "Store",
    "StoreError",
    "TouchpointRow",
    "migration",
    "record_key",
]
