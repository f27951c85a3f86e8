"""The interface the engine, the loop and the CLI use, one Protocol per concern, so another backend (PostgreSQL)
can replace SQLite: ``StateStore`` is all of them. A caller that needs one concern may type against it alone.

Only what closeloop's own code calls is here: helpers of one implementation (how it writes a delta's match keys,
releases quarantine entries by key, marks runs interrupted when it opens) stay inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal, Protocol

from closeloop.model import Cursor, JSONValue, SalesActivity
from closeloop.store.activity_tables import ActivityRow
from closeloop.store.rows import (
    DealContact,
    Fields,
    Golden,
    KeptSource,
    LedgerEntry,
    Link,
    OutboxEntry,
    OutboxItem,
    PageDelta,
    PendingAssociation,
    Provenance,
    QuarantineEntry,
    QuarantineStatus,
    Run,
    RunStatus,
    TouchpointRow,
)


class Transactional(Protocol):
    """Atomic blocks and the store's lifetime."""

    def transaction(self) -> AbstractContextManager[None]:
        """Everything written inside the block commits together or not at all; nested blocks join it."""
        ...

    def integrity_check(self) -> str:
        """'ok', or the problems found."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class GoldenRecords(Protocol):
    """Golden records and their match keys."""

    def new_golden_id(self) -> str:
        """A fresh golden record id."""
        ...

    def get_golden(self, golden_id: str) -> Golden | None:
        """One golden record, or None."""
        ...

    def get_goldens(self, golden_ids: Sequence[str]) -> dict[str, Golden]:
        """Many golden records by id, in one query."""
        ...

    def put_goldens(self, goldens: Sequence[tuple[str, str, Fields, Provenance]]) -> None:
        """Create or replace many golden records' fields, given as (id, entity, fields, provenance)."""
        ...

    def goldens(self, entity: str, after_id: str = "", limit: int = 500) -> list[Golden]:
        """Up to ``limit`` live golden records of ``entity`` with ids after ``after_id``, in id order."""
        ...

    def find_goldens_by_keys(self, entity: str, key: str, values: Sequence[str]) -> dict[str, list[str]]:
        """Live golden records by each value of one match key, oldest first; unmatched values left out."""
        ...


class Links(Protocol):
    """Links between native records and golden records."""

    def get_link(self, system: str, object: str, native_id: str) -> Link | None:
        """The link of one native record, or None."""
        ...

    def find_links(self, system: str, object: str, native_ids: Sequence[str]) -> dict[str, Link]:
        """The links of many native records, by native id, in one query."""
        ...

    def links_of(self, golden_id: str) -> list[Link]:
        """Every link of a golden record."""
        ...

    def links_of_many(
        self, golden_ids: Sequence[str], known: Mapping[tuple[str, str, str], Link | None] | None = None
    ) -> dict[str, list[Link]]:
        """Every link of many golden records, by golden id, in one query; ``known`` links (by system, object,
        native id) are handed back as they are instead of being decoded again."""
        ...

    def put_links(self, links: Sequence[Link]) -> None:
        """Create or replace many links exactly as given."""
        ...

    def put_link(
        self,
        system: str,
        object: str,
        native_id: str,
        golden_id: str,
        entity: str,
        *,
        last_modified_at: datetime | None = None,
        snapshot: Fields | None = None,
    ) -> Link:
        """Create or update a link; None keeps the stored last_modified_at / snapshot."""
        ...

    def delete_link(self, system: str, object: str, native_id: str) -> bool:
        """Remove one link."""
        ...


class PageDeltas(Protocol):
    """A page's changes, written set-based."""

    def apply_delta(self, delta: PageDelta) -> None:
        """Write what a page (or a settled batch of writes) changed, set-based, in the caller's transaction."""
        ...


class Cursors(Protocol):
    """How far each change stream has been applied."""

    def get_cursor(self, connection: str, system: str, object: str) -> Cursor | None:
        """The stored cursor of one object of one system, or None."""
        ...

    def set_cursor(self, connection: str, system: str, object: str, cursor: Cursor) -> None:
        """Store a cursor."""
        ...


class Outbox(Protocol):
    """Writes owed to the systems."""

    def enqueue(self, items: Iterable[OutboxItem]) -> list[int]:
        """Queue writes; return their ids."""
        ...

    def due_outbox(
        self,
        connection: str,
        system: str,
        object: str,
        limit: int,
        now: datetime | None = None,
        *,
        after_id: int = 0,
    ) -> list[OutboxEntry]:
        """Queued writes due at ``now`` with ids above ``after_id``, oldest first."""
        ...

    def outbox_done(self, ids: Sequence[int]) -> int:
        """Remove delivered or quarantined writes."""
        ...

    def outbox_retry_later(self, id: int, next_attempt_at: datetime, error: str) -> None:
        """Count a failed attempt and hold the write back."""
        ...

    def outbox_depth(self, connection: str | None = None) -> int:
        """How many writes are queued."""
        ...


class Quarantine(Protocol):
    """Records parked for an operator."""

    def quarantine(
        self,
        connection: str,
        system: str,
        object: str,
        entity: str,
        *,
        code: str,
        reason: str,
        native_id: str | None = None,
        golden_id: str | None = None,
        payload: Mapping[str, JSONValue] | None = None,
        modified_at: datetime | None = None,
    ) -> QuarantineEntry:
        """Quarantine a record (``modified_at``: the version quarantined), or bump its live entry."""
        ...

    def list_quarantine(
        self,
        status: QuarantineStatus | Iterable[QuarantineStatus] | None = None,
        *,
        connection: str | None = None,
    ) -> list[QuarantineEntry]:
        """Quarantine entries by status."""
        ...

    def mark_retry(self, id: int | Literal["all"]) -> int:
        """Ask for a retry of one entry or every open one."""
        ...

    def resolve_quarantine(
        self,
        connection: str,
        system: str,
        object: str,
        *,
        native_id: str | None = None,
        golden_id: str | None = None,
    ) -> int:
        """Close the live entry of a record that has since synced."""
        ...

    def quarantined_keys(self, connection: str, system: str, object: str) -> set[str]:
        """Record keys (``n:<native id>``, ``g:<golden id>``) of one object's live quarantine entries."""
        ...

    def quarantined_versions(
        self, connection: str, system: str, object: str, native_ids: Sequence[str]
    ) -> dict[str, datetime]:
        """Native id -> the modified time of the version its open or ignored entry quarantined (where it keeps one)."""
        ...

    def ignore_quarantine(self, id: int) -> bool:
        """Ignore one entry."""
        ...


class Runs(Protocol):
    """The history of sync runs."""

    def start_run(self, connection: str, *, replica: str | None = None) -> int:
        """Record the start of a run (by ``replica``, when several share the store); return its id."""
        ...

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        counts: Mapping[str, int],
        api_calls: Mapping[str, int],
        error: str | None = None,
        failure: str | None = None,
    ) -> None:
        """Record how a run ended."""
        ...

    def recent_runs(self, limit: int = 20, *, connection: str | None = None) -> list[Run]:
        """The latest runs, newest first."""
        ...

    def last_run(self, connection: str, status: RunStatus | None = None) -> Run | None:
        """The latest run of a connection (with a given status)."""
        ...

    def interrupt_running_runs(self, connection: str | None = None) -> int:
        """Mark runs left 'running' by a dead process as 'interrupted' (of one connection, or all)."""
        ...


class Ledger(Protocol):
    """The append-only revenue ledger."""

    def append_ledger(self, entry: LedgerEntry) -> LedgerEntry:
        """Append a revenue-ledger entry."""
        ...

    def ledger_for_deals(self, deal_golden_ids: Sequence[str]) -> dict[str, list[LedgerEntry]]:
        """The ledger entries of each of many deals, by deal."""
        ...

    def ledger_for_contacts(self, contact_golden_ids: Sequence[str]) -> dict[str, list[LedgerEntry]]:
        """The ledger entries crediting each of many contacts, by contact."""
        ...

    def ledger_entries(self, since: datetime | None = None) -> list[LedgerEntry]:
        """Ledger entries of deals closed at or after ``since``."""
        ...


class Touches(Protocol):
    """Touchpoints and the rollups written back from them."""

    def add_touchpoints(self, touchpoints: Iterable[TouchpointRow]) -> int:
        """Record new touchpoints, skipping duplicates."""
        ...

    def put_activities(self, system: str, activities: Iterable[SalesActivity]) -> int:
        """Record sales activities (deleted or undone ones removed); how many rows changed."""
        ...

    def activities_of(self, contact_golden_ids: Sequence[str]) -> dict[str, list[ActivityRow]]:
        """The sales activities of many contacts, through their people's links, by contact in time order."""
        ...

    def first_seen(self, system: str, proposed: Mapping[str, datetime]) -> dict[str, datetime]:
        """When each source key (of a touch whose vendor keeps no time) was first seen; unseen keys take and keep
        the proposed time."""
        ...

    def touchpoints_of(self, contact_golden_ids: Sequence[str]) -> dict[str, list[TouchpointRow]]:
        """The touchpoints of many contacts, by contact, each in time order."""
        ...

    def move_touchpoints(self, from_golden: str, to_golden: str) -> int:
        """Credit one contact's touchpoints to another; return how many."""
        ...

    def put_rollups(self, values_by_contact: Mapping[str, Fields]) -> None:
        """Store many contacts' rollup values."""
        ...


class OriginalSources(Protocol):
    """The original source kept for each contact."""

    def original_sources(self, contact_golden_ids: Sequence[str]) -> dict[str, KeptSource]:
        """The kept original sources of the contacts that have one, by contact."""
        ...

    def put_original_sources(self, sources: Iterable[KeptSource]) -> int:
        """Create or replace the kept original sources of many contacts; return how many."""
        ...


class Associations(Protocol):
    """Deal-contact associations, stored and pending."""

    def replace_deal_contacts(self, contacts_by_deal: Mapping[str, Iterable[str]]) -> None:
        """Make each deal's contacts exactly the ones given."""
        ...

    def contacts_of_deals(self, deal_golden_ids: Sequence[str]) -> dict[str, list[DealContact]]:
        """The contacts credited on each of many deals, by deal."""
        ...

    def deal_contacts(self, deal_golden_id: str) -> list[DealContact]:
        """The contacts of a deal."""
        ...

    def deals_of_contact(self, contact_golden_id: str) -> list[DealContact]:
        """The deals of a contact."""
        ...

    def pending_of_system(self, connection: str, system: str) -> list[PendingAssociation]:
        """Pending links of one connection waiting for contacts in ``system``."""
        ...

    def replace_pending_associations(
        self, system: str, deal_golden_ids: Sequence[str], pending: Iterable[PendingAssociation]
    ) -> None:
        """Forget the deals' pending links in ``system``, then remember ``pending``."""
        ...


class StateStore(
    Transactional,
    GoldenRecords,
    Links,
    PageDeltas,
    Cursors,
    Outbox,
    Quarantine,
    Runs,
    Ledger,
    Touches,
    OriginalSources,
    Associations,
    Protocol,
):
    """What closeloop needs from its state store; ``closeloop.store.Store`` is the SQLite implementation."""
