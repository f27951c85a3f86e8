"""The state store: golden records, links, cursors, outbox, quarantine, runs and the closed-loop tables.

Open one with ``open_state_store(target)``: a ``postgresql://`` URL opens ``PostgresStore``, anything else the SQLite
``Store`` at that path. Type against ``StateStore``; both back-ends run the same table code.
"""

from closeloop.store.api import StateStore
from closeloop.store.db import MEMORY, StoreError
from closeloop.store.migrations import MIGRATIONS, Migrations, SchemaTooNewError, migration
from closeloop.store.opening import AnyStore, open_state_store
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
    "AnyStore",
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
    "open_state_store",
    "record_key",
]
