"""Zoho's Merge Records API: ``POST /{module}/{master_id}/actions/merge``, as Zoho documents it.

Up to three records become one: the master stays, one or two children (``merge[0].data[].id``) are deleted
permanently (they never go through the recycle bin: ``GET /{module}/deleted`` lists them with type
``permanent``, and nothing there names the master), and the master takes each child's fields listed in that
child's ``_fields``; every other field keeps the master's value. The children's related records move to the
master: a deal whose ``Contact_Name`` lookup named a child now names the master, and a child's contact roles
become the master's (the master's own role on a deal stands). Moving a related record is not an edit of it: the
deal's Modified_Time stays (unconfirmed; closeloop does not rely on either).

The answer is ``{"merge": [{"code": "SUCCESS", ...}]}`` (the shape of the SDKs' merge ActionWrapper; the
``details`` are unconfirmed). Zoho may also schedule a large merge (``SCHEDULED`` with a ``job_id``): this
emulator always merges at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from closeloop.sandbox import RecordTable

from .modules import ModuleDef

MERGEABLE = frozenset({"Leads", "Contacts", "Deals"})
"""The emulated modules Zoho lets merge (it also merges Accounts, Vendors and custom modules)."""
MAX_CHILDREN = 2
"""Up to three records in one merge: the master and two children."""

ErrorFn = Callable[..., Response]


def merge_records(
    module: ModuleDef,
    tables: Mapping[str, RecordTable],
    contact_roles: dict[str, dict[str, str]],
    master_id: str,
    body: Any,
    *,
    now: datetime,
    error: ErrorFn,
) -> tuple[Response, int]:
    """Merge the children the body names into ``master_id``; the answer and how many records it wrote."""
    if module.api_name not in MERGEABLE:
        return error(400, "INVALID_MODULE", "the module name given seems to be invalid"), 0
    table = tables[module.api_name]
    if table.get(master_id) is None:
        return error(400, "INVALID_DATA", "Specified master record ID is invalid", id=master_id), 0
    entries = body.get("merge") if isinstance(body, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        return error(400, "INVALID_DATA", "invalid data", api_name="merge", json_path="$.merge"), 0
    children = entries[0].get("data")
    if not isinstance(children, list) or not 1 <= len(children) <= MAX_CHILDREN:
        return error(400, "INVALID_DATA", "invalid data", api_name="data", json_path="$.merge[0].data"), 0
    taken: dict[str, Any] = {}
    child_ids: list[str] = []
    for index, child in enumerate(children):
        child_id = str(child.get("id") or "") if isinstance(child, dict) else ""
        row = table.get(child_id)
        if row is None or child_id == master_id or child_id in child_ids:
            return error(
                400, "INVALID_DATA", "the id given seems to be invalid", json_path=f"$.merge[0].data[{index}].id"
            ), 0
        for item in child.get("_fields") or []:
            name = item.get("api_name") if isinstance(item, dict) else None
            field = module.field(str(name))
            if field is None or field.read_only:
                return error(400, "INVALID_DATA", "invalid data", api_name=name), 0
            taken[field.api_name] = row.fields.get(field.api_name)
        child_ids.append(child_id)
    for child_id in child_ids:
        table.delete(child_id, at=now)
        table.get(child_id, include_deleted=True).merged_into = master_id  # type: ignore[union-attr]
        if module.api_name == "Contacts":
            _move_related(tables["Deals"], contact_roles, child_id, master_id)
    table.update(master_id, taken, at=now)
    success = {
        "code": "SUCCESS",
        "details": {"id": master_id},
        "message": "The merge is successful",
        "status": "success",
    }
    return JSONResponse({"merge": [success]}), 1 + len(child_ids)


def _move_related(deals: RecordTable, contact_roles: dict[str, dict[str, str]], child: str, master: str) -> None:
    """The child's deals name the master in their Contact_Name lookup; its contact roles become the master's."""
    for deal in deals.live():
        lookup = deal.fields.get("Contact_Name")
        if isinstance(lookup, dict) and str(lookup.get("id")) == child:
            deal.fields["Contact_Name"] = {**lookup, "id": master}  # a related record moved, not an edit of it
    for roles in contact_roles.values():
        if child in roles:
            role = roles.pop(child)
            roles.setdefault(master, role)
