"""The emulated org's data rules, apart from HTTP: validation, saves, upserts, deletes, conversion, queries."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from closeloop.model import Cursor
from closeloop.sandbox import RecordTable, Row, SandboxClock

from . import soql
from .schema import (
    CLOSED_TASK_STATUSES,
    COMPUTED,
    HISTORY_OBJECTS,
    NUMBER_TYPES,
    RESPONDED_STATUSES,
    STAGES,
    TEXT_TYPES,
    TRACKED,
    USERS,
    SfField,
    SObjectType,
    build_objects,
    make_id,
    normalize_id,
    to_millis,
)
from .soap import RELATED, MergeRefused

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class SfError:
    """One Salesforce error: code, message and the fields it concerns."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def single(self) -> dict[str, Any]:
        """The shape of the sObject resources: ``{message, errorCode, fields}``."""
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def collection(self) -> dict[str, Any]:
        """The shape inside collection results: ``{statusCode, message, fields}``."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


class RecordRefused(Exception):
    """A save Salesforce would refuse, with its errors."""

    def __init__(self, errors: list[SfError], status: int = 400) -> None:
        super().__init__(errors[0].message)
        self.errors = errors
        self.status = status


class MultipleMatches(Exception):
    """An upsert key matched several records (HTTP 300)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


@dataclass
class SalesforceTable(RecordTable):
    """A record table that also indexes idLookup fields (Email), which are not unique."""

    lookups: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    """Stored reference fields (foreign keys, which Salesforce indexes): a query on one reads its index."""
    _lookup: dict[str, dict[str, str | set[str]]] = field(default_factory=dict)
    _indexed: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._indexed = (*self.lookups, *self.references)

    def insert(self, fields: Mapping[str, Any], *, row_id: str | None = None, at: datetime | None = None) -> Row:
        """Insert and index."""
        row = super().insert(fields, row_id=row_id, at=at)
        self._index_lookups(row)
        return row

    def update(self, row_id: str, fields: Mapping[str, Any], *, at: datetime | None = None) -> Row:
        """Update and index the new values (stale entries are filtered on lookup)."""
        row = super().update(row_id, fields, at=at)
        self._index_lookups(row)
        return row

    def merge(self, loser_id: str, winner_id: str, *, at: datetime | None = None) -> Row:
        """Merge; the winner may inherit values, so index it again."""
        winner = super().merge(loser_id, winner_id, at=at)
        self._index_lookups(winner)
        return winner

    def find_all(self, name: str, value: Any) -> list[Row]:
        """Live rows whose field ``name`` equals ``value`` (case-insensitive), in id order."""
        wanted = _key(value)
        rows: Iterable[Row] = self.rows.values()
        if name in self.lookups:
            held = self._lookup.setdefault(name, {}).get(wanted, ())
            rows = [self.rows[i] for i in sorted((held,) if isinstance(held, str) else held)]
        elif name in self.unique:
            # A unique value belongs to one live row at most, and the unique index knows which.
            found = self.find(name, value)
            rows = [found] if found is not None else []
        return [r for r in rows if not r.deleted and _key(r.fields.get(name)) == wanted and wanted is not None]

    def referring(self, name: str, values: Iterable[Any]) -> list[Row]:
        """Rows, deleted ones included, whose reference field ``name`` equals one of ``values`` (case-insensitive),
        in id order (the order of a scan: ids are handed out in sequence)."""
        index = self._lookup.get(name, {})
        wanted = {_key(v) for v in values} - {None}
        ids: set[str] = set()
        for value in wanted:
            held = index.get(value)
            if isinstance(held, str):
                ids.add(held)
            elif held:
                ids.update(held)
        rows = (self.rows[i] for i in sorted(ids))
        return [r for r in rows if _key(r.fields.get(name)) in wanted]

    def _index_lookups(self, row: Row) -> None:
        for name in self._indexed:
            value = _key(row.fields.get(name))
            if value is not None:
                index = self._lookup.setdefault(name, {})
                # One id as itself, several as a set: most values name one record, and a set costs 200 bytes.
                held = index.get(value)
                if held is None or held == row.id:
                    index[value] = row.id
                elif isinstance(held, str):
                    index[value] = {held, row.id}
                else:
                    held.add(row.id)


def _key(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        lower = value.lower()
        return value if lower == value else lower  # an index key shares the stored text when it can
    return value


class Org:
    """The sObjects and their rows, with Salesforce's save rules."""

    def __init__(
        self,
        tables: dict[str, RecordTable],
        clock: SandboxClock,
        now: Callable[[], datetime],
        rejects: Callable[[dict[str, Any]], str | None],
    ) -> None:
        self.objects = build_objects()
        self.tables = tables
        self._now = now
        self._rejects = rejects
        for name, sobject in self.objects.items():
            tables[name] = SalesforceTable(
                name,
                clock,
                _id_factory(sobject.key_prefix),
                unique=tuple(f.name for f in sobject.fields.values() if f.unique),
                normalize=_drop_blanks,
                lookups=tuple(f.name for f in sobject.fields.values() if f.id_lookup),
                references=tuple(
                    f.name for f in sobject.fields.values() if f.type == "reference" and f.name not in COMPUTED
                ),
            )
        users = self.tables["User"]
        for email, first, last in USERS:  # the integration user first: it gets the id OwnerId defaults to
            users.insert({"Username": email, "Email": email, "FirstName": first, "LastName": last, "IsActive": True},
                         at=clock.now() - timedelta(days=365))  # fmt: skip
        stages = self.tables["OpportunityStage"]
        for order, (name, probability, closed, won, forecast) in enumerate(STAGES, start=1):
            stages.insert(
                {
                    "MasterLabel": name,
                    "ApiName": name,
                    "IsActive": True,
                    "IsClosed": closed,
                    "IsWon": won,
                    "DefaultProbability": probability,
                    "ForecastCategoryName": forecast,
                    "SortOrder": order,
                },
                at=clock.now() - timedelta(days=365),
            )

    def add_field(self, sobject: SObjectType, new: SfField) -> None:
        """Add a custom field to an sObject; a unique one is indexed from now on."""
        sobject.add_field(new)
        if new.unique:
            self.table(sobject.name).add_unique(new.name)

    def sobject(self, name: str) -> SObjectType | None:
        """The sObject called ``name`` (case-insensitive, as in URLs and SOQL)."""
        found = self.objects.get(name)
        if found is not None:
            return found
        return next((o for n, o in self.objects.items() if n.lower() == name.lower()), None)

    def table(self, name: str) -> SalesforceTable:
        """The rows of an sObject."""
        table = self.tables[name]
        assert isinstance(table, SalesforceTable)
        return table

    def row(self, sobject: SObjectType, record_id: str, *, include_deleted: bool = False) -> Row | None:
        """The row with a 15- or 18-character id."""
        normal = normalize_id(record_id)
        return self.table(sobject.name).get(normal, include_deleted=include_deleted) if normal else None

    # -- validation --------------------------------------------------------------------------------------
    def check(self, sobject: SObjectType, data: Mapping[str, Any], existing: Row | None) -> dict[str, Any]:
        """The fields to store for a create (``existing`` None) or an update, or RecordRefused."""
        creating = existing is None
        errors: list[SfError] = []
        clean: dict[str, Any] = {}
        for name, value in data.items():
            if name == "attributes":
                continue
            target = sobject.lookup(name)
            if target is None:
                errors.append(SfError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}"))
                continue
            allowed = target.createable if creating else target.updateable
            if not allowed:
                verb = "create" if creating else "update"
                errors.append(
                    SfError(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to {verb} fields: {target.name}. Please check the security settings of this "
                        "field and verify that it is read/write for your profile or permission set.",
                        (target.name,),
                    )
                )
                continue
            problem = self._value_error(target, value)
            if problem:
                errors.append(problem)
                continue
            clean[target.name] = value.strip() if isinstance(value, str) and target.type == "email" else value
        errors.extend(self._record_errors(sobject, data, clean, existing))
        if errors:
            raise RecordRefused(errors)
        return clean

    def _value_error(self, target: Any, value: Any) -> SfError | None:
        name, kind = target.name, target.type
        if value is None or value == "":
            return None
        if kind in TEXT_TYPES and not isinstance(value, str | int | float):
            return _parse_error(kind, value)
        if kind in TEXT_TYPES and target.length and len(str(value)) > target.length:
            return SfError(
                "STRING_TOO_LONG",
                f"{target.describe()['label']}: data value too large: {value} (max length={target.length})",
                (name,),
            )
        if kind == "email" and not _EMAIL.match(str(value).strip()):
            return SfError("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {value}", (name,))
        if kind == "picklist" and target.restricted and value not in target.picklist:
            return SfError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{target.describe()['label']}: bad value for restricted picklist field: {value}",
                (name,),
            )
        if kind in NUMBER_TYPES and (isinstance(value, bool) or not _is_number(value)):
            return _parse_error(kind, value)
        if kind == "boolean" and not isinstance(value, bool):
            return _parse_error(kind, value)
        if kind == "date" and not _is_date(value):
            return _parse_error(kind, value)
        if kind == "reference":
            return self._reference_error(target, value)
        return None

    def _reference_error(self, target: Any, value: Any) -> SfError | None:
        normal = normalize_id(str(value))
        if normal is None:
            return SfError("MALFORMED_ID", f"{target.name}: id value of incorrect type: {value}", (target.name,))
        for other in target.reference_to:
            if self.tables[other].get(normal) is not None:
                return None
        return SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (target.name,))

    def _record_errors(
        self, sobject: SObjectType, data: Mapping[str, Any], clean: dict[str, Any], existing: Row | None
    ) -> list[SfError]:
        errors: list[SfError] = []
        if existing is not None and existing.fields.get("IsConverted"):
            errors.append(SfError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"))
        forced = self._rejects({k: v for k, v in data.items() if k != "attributes"})
        if forced:
            errors.append(
                SfError("FIELD_CUSTOM_VALIDATION_EXCEPTION", f"{forced}: value refused by a validation rule", (forced,))
            )
        before: Mapping[str, Any] = existing.fields if existing else {}
        missing = [
            name
            for name in sobject.required_fields
            if (existing is None or name in clean)
            and (clean[name] if name in clean else before.get(name)) in (None, "")
        ]
        if missing:
            errors.append(
                SfError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)
                )
            )
        table = self.tables[sobject.name]
        clash = table.conflicts(clean, except_id=existing.id if existing else None)
        if clash:
            owner = table.find(clash, clean[clash])
            errors.append(
                SfError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {clash} duplicates value on record with id: {owner.id if owner else ''}",
                    (clash,),
                )
            )
        return errors

    # -- saves -------------------------------------------------------------------------------------------
    def create(self, sobject: SObjectType, data: Mapping[str, Any]) -> Row:
        """Insert a record (RecordRefused on a validation error)."""
        if not sobject.createable:
            raise RecordRefused([SfError("INVALID_TYPE", f"sObject type '{sobject.name}' is not createable")])
        clean = self.check(sobject, data, None)
        moment = self._now()
        for f in sobject.fields.values():
            if f.default is not None and clean.get(f.name) in (None, ""):
                clean[f.name] = f.default
        clean["LastModifiedDate"] = moment
        self._derive(sobject, clean, clean)
        return self.tables[sobject.name].insert(clean, at=moment)

    def update(self, sobject: SObjectType, row: Row, data: Mapping[str, Any]) -> Row:
        """Update a live record (RecordRefused on a validation error)."""
        clean = self.check(sobject, data, row)
        moment = self._now()
        clean["LastModifiedDate"] = moment
        self._derive(sobject, clean, {**row.fields, **clean})
        self._track(sobject, row, clean, moment)
        return self.tables[sobject.name].update(row.id, clean, at=moment)

    def _track(self, sobject: SObjectType, row: Row, clean: Mapping[str, Any], moment: datetime) -> None:
        """Field history tracking: one history row per tracked field the update changes."""
        if sobject.name not in HISTORY_OBJECTS:
            return
        history = self.tables[HISTORY_OBJECTS[sobject.name][0]]
        for name in TRACKED[sobject.name]:
            old, new = row.fields.get(name), clean.get(name, row.fields.get(name))
            if name in clean and new != old:
                values = {"Field": name, "OldValue": old, "NewValue": new, f"{sobject.name}Id": row.id}
                history.insert(values, at=moment)

    def upsert(self, sobject: SObjectType, key: str, value: Any, data: Mapping[str, Any]) -> tuple[Row, bool]:
        """Create or update by an external-id/idLookup field; MultipleMatches when several records match."""
        if key == "Id":
            row = self.row(sobject, str(value)) if value else None
            if row is None and value:
                raise RecordRefused(
                    [
                        SfError(
                            "NOT_FOUND", "Provided external ID field does not exist or is not accessible: " + str(value)
                        )
                    ],
                    status=404,
                )
            return (self.update(sobject, row, data), False) if row else (self.create(sobject, data), True)
        found = self.table(sobject.name).find_all(key, value)
        if len(found) > 1:
            raise MultipleMatches([r.id for r in found])
        body = {k: v for k, v in data.items() if (sobject.lookup(k) or sobject.fields["Id"]).name != key}
        if found:
            return self.update(sobject, found[0], body), False
        return self.create(sobject, {**body, key: value}), True

    def delete(self, sobject: SObjectType, record_id: str) -> Row:
        """Move a record to the recycle bin (queryAll still sees it with IsDeleted = true)."""
        row = self.row(sobject, record_id, include_deleted=True)
        if row is None:
            raise RecordRefused([SfError("NOT_FOUND", "The requested resource does not exist")], status=404)
        if row.deleted:
            raise RecordRefused([SfError("ENTITY_IS_DELETED", "entity is deleted")], status=404)
        return self.tables[sobject.name].delete(row.id, at=self._now())

    def convert_lead(self, lead_id: str, contact_id: str | None = None) -> str:
        """Convert a lead into a new (or the given) contact, as Lead Convert does; returns the contact id."""
        leads, contacts = self.objects["Lead"], self.objects["Contact"]
        lead = self.row(leads, lead_id)
        if lead is None or lead.fields.get("IsConverted"):
            raise RecordRefused([SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")])
        moment = self._now()
        if contact_id is None:
            carried = (
                "FirstName",
                "LastName",
                "Email",
                "Phone",
                "Title",
                "LeadSource",
                "Status__c",
                "UTM_Source__c",
                "UTM_Medium__c",
                "UTM_Campaign__c",
                "OwnerId",  # the contact keeps the lead's owner, as Lead Convert does by default
            )
            fields = {k: lead.fields[k] for k in carried if lead.fields.get(k) not in (None, "")}
            fields["Account_Name__c"] = lead.fields.get("Company")
            contact_id = self.create(contacts, fields).id
        elif self.row(contacts, contact_id) is None:
            raise RecordRefused([SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")])
        converted = {
            "IsConverted": True,
            "ConvertedContactId": normalize_id(contact_id),
            "ConvertedDate": moment.date().isoformat(),
            "Status": "Closed - Converted",
            "LastModifiedDate": moment,
        }
        self.tables["Lead"].update(lead.id, converted, at=moment)
        return str(normalize_id(contact_id))

    def merge(self, kind: str, master_id: str, loser_ids: list[str]) -> list[str]:
        """Merge records into a master as the SOAP API's merge does; return the ids of the related records moved.

        Each loser is deleted with ``MasterRecordId`` set; its contact roles and campaign members move to the
        master (stamped now, like any save).
        """
        sobject = self.sobject(kind)
        if sobject is None or sobject.name not in RELATED:
            raise MergeRefused("INVALID_TYPE", f"{kind} cannot be merged")
        master = self.row(sobject, master_id)
        losers = [self.row(sobject, i) for i in loser_ids]
        if master is None or any(row is None or row.id == master.id for row in losers):
            raise MergeRefused("ENTITY_IS_DELETED", "entity is deleted or is not a record to merge")
        moment, moved = self._now(), []
        for loser in losers:
            assert loser is not None  # checked above
            for name, reference in RELATED[sobject.name]:
                related = self.table(name)
                for row in related.referring(reference, [loser.id]):
                    if not row.deleted:
                        related.update(row.id, {reference: master.id, "LastModifiedDate": moment}, at=moment)
                        moved.append(row.id)
            self.table(sobject.name).merge(loser.id, master.id, at=moment)
        return moved

    def _derive(self, sobject: SObjectType, clean: dict[str, Any], merged: Mapping[str, Any]) -> None:
        """Fields Salesforce sets on save: an opportunity's IsWon/IsClosed/Probability follow its stage; a campaign
        member's HasResponded follows its status, and the day it first responded stays."""
        if sobject.name == "Task":  # closed with its status; completed when it first closed, blank when reopened
            closed = merged.get("Status") in CLOSED_TASK_STATUSES
            clean["IsClosed"] = closed
            if not closed:
                clean["CompletedDateTime"] = None
            elif not merged.get("CompletedDateTime"):
                clean["CompletedDateTime"] = self._now()
            return
        if sobject.name == "CampaignMember":
            responded = merged.get("Status") in RESPONDED_STATUSES
            clean["HasResponded"] = responded
            if responded and not merged.get("FirstRespondedDate"):
                clean["FirstRespondedDate"] = self._now().date().isoformat()
            return
        if sobject.name != "Opportunity" or "StageName" not in clean:
            return
        stage = next((s for s in STAGES if s[0] == merged.get("StageName")), None)
        if stage is None:
            return
        clean["IsClosed"], clean["IsWon"], clean["ForecastCategoryName"] = stage[2], stage[3], stage[4]
        if "Probability" not in clean or clean["Probability"] is None:
            clean["Probability"] = stage[1]

    # -- queries -----------------------------------------------------------------------------------------
    def query(self, text: str, *, include_deleted: bool) -> tuple[SObjectType, soql.Query, list[Row]]:
        """Run a SOQL query: the sObject, the bound query and the matching rows in order."""
        parsed = soql.parse(text)
        sobject = self.sobject(parsed.sobject)
        if sobject is None:
            raise soql.SoqlError(
                "INVALID_TYPE",
                f"sObject type '{parsed.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        bound = soql.bind(parsed, sobject)
        candidates = self._candidates(sobject, bound.where, include_deleted=include_deleted)
        if not include_deleted:
            candidates = (row for row in candidates if not row.deleted)
        if bound.where is None:
            rows = list(candidates)
        else:
            passes = soql.compile_condition(bound.where, sobject.value)
            rows = [row for row in candidates if passes(row)]
        soql.sort_rows(rows, bound.order, sobject.value)
        end = None if bound.limit is None else bound.offset + bound.limit
        return sobject, bound, rows[bound.offset : end]

    def _candidates(self, sobject: SObjectType, where: Any, *, include_deleted: bool) -> Iterator[Row]:
        """A cheap superset of the matching rows: by id or idLookup value, or from a SystemModstamp bound."""
        table = self.table(sobject.name)
        keyed = soql.equal_values(where, ("Id", *table.lookups, *table.references))
        if keyed is not None:
            name, values = keyed
            if name == "Id":
                found = (table.get(str(v), include_deleted=True) for v in dict.fromkeys(values))
                yield from (row for row in found if row is not None)
            elif name in table.references:
                yield from table.referring(name, values)
            else:
                for value in dict.fromkeys(_key(v) for v in values):
                    yield from table.find_all(name, value)
            return
        bound = soql.lower_bound(where, "SystemModstamp")
        if isinstance(bound, datetime):
            # Stored stamps may carry microseconds; anything at or after the bound's millisecond qualifies.
            yield from table.changed_after(
                Cursor(to_millis(bound) - timedelta(microseconds=1), ""), include_deleted=include_deleted
            )
            return
        yield from table.rows.values()


def _id_factory(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: make_id(prefix, next(counter))


def _drop_blanks(fields: dict[str, Any]) -> dict[str, Any]:
    # Salesforce stores an empty string as null.
    return {k: (None if v == "" else v) for k, v in fields.items()}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10


def _parse_error(kind: str, value: Any) -> SfError:
    return SfError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from VALUE_STRING value {value} or request may be missing a "
        "required field",
    )
