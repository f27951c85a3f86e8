"""The one page loop and the paginators connectors declare: where reading starts, where it goes, when it stops."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from closeloop.http.paging import (
    KeysetPaginator,
    NextUrlPaginator,
    PageNumberPaginator,
    TokenPaginator,
    dig,
    paginate,
)

CONNECTORS = Path(__file__).resolve().parents[3] / "connectors"


class Vendor:
    """Answers pages from a script and records what each call asked for."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked: list[Any] = []

    async def fetch(self, state: Any) -> Any:
        self.asked.append(state)
        return self.answers.pop(0)


async def read(vendor: Vendor, paginator: Any) -> list[Any]:
    return [body async for body in paginate(vendor.fetch, paginator)]


async def test_token_pages_until_the_answer_names_no_next_page() -> None:
    vendor = Vendor({"paging": {"next": {"after": "2"}}}, {"paging": {"next": {"after": "3"}}}, {"results": []})
    pages = await read(vendor, TokenPaginator({"limit": 100}, ("paging", "next", "after"), "after"))
    assert len(pages) == 3
    assert vendor.asked == [{"limit": 100}, {"limit": 100, "after": "2"}, {"limit": 100, "after": "3"}]


async def test_token_with_a_more_flag_stops_when_the_flag_is_false_even_with_a_token() -> None:
    vendor = Vendor({"nextPageToken": "a", "moreResult": True}, {"nextPageToken": "b", "moreResult": False})
    paginator = TokenPaginator({"nextPageToken": "t0"}, ("nextPageToken",), "nextPageToken", more_at=("moreResult",))
    await read(vendor, paginator)
    assert vendor.asked == [{"nextPageToken": "t0"}, {"nextPageToken": "a"}]


async def test_token_keeps_only_the_parameters_the_vendor_accepts_beside_a_token() -> None:
    vendor = Vendor({"nextPageToken": "x"}, {})
    paginator = TokenPaginator({"fields": "id", "orderBy": "id"}, ("nextPageToken",), "nextPageToken", keep=("fields",))
    await read(vendor, paginator)
    assert vendor.asked[1] == {"fields": "id", "nextPageToken": "x"}


async def test_page_numbers_go_on_while_more_records_and_stop_on_an_empty_answer() -> None:
    vendor = Vendor({"info": {"more_records": True}}, {"info": {"more_records": True}}, None)
    await read(vendor, PageNumberPaginator({"per_page": 200}, ("info", "more_records")))
    assert [state["page"] for state in vendor.asked] == [1, 2, 3]


async def test_next_url_is_followed_until_done() -> None:
    vendor = Vendor({"done": False, "nextRecordsUrl": "/q/01g-2000"}, {"done": True, "nextRecordsUrl": "/q/x"})
    await read(vendor, NextUrlPaginator("/q?q=SELECT", ("nextRecordsUrl",), ("done",)))
    assert vendor.asked == ["/q?q=SELECT", "/q/01g-2000"]


async def test_keyset_starts_each_page_after_the_last_key() -> None:
    vendor = Vendor([3, 5], [8], [])
    await read(vendor, KeysetPaginator(0, lambda ids: ids[-1] if ids else None))
    assert vendor.asked == [0, 5, 8]


async def test_a_reader_that_stops_early_makes_no_further_call() -> None:
    vendor = Vendor({"nextPageToken": "a"}, {"nextPageToken": "b"})
    async for _ in paginate(vendor.fetch, TokenPaginator({}, ("nextPageToken",), "nextPageToken")):
        break
    assert len(vendor.asked) == 1


@pytest.mark.parametrize(
    ("body", "path", "found"),
    [
        ({"a": {"b": 1}}, ("a", "b"), 1),
        ({"a": None}, ("a", "b"), None),
        (None, ("a",), None),
        ({"a": [1]}, ("a", "b"), None),
    ],
    ids=["present", "null-step", "empty-answer", "not-an-object"],
)
def test_dig_finds_a_value_or_none(body: Any, path: tuple[str, ...], found: Any) -> None:
    assert dig(body, path) == found


def test_connectors_write_no_page_loop_of_their_own() -> None:
    """The page loop is :func:`paginate`; a connector declares a paginator (its sandboxes are servers, not read)."""
    loops = [
        f"{path.relative_to(CONNECTORS)}:{number}"
        for path in CONNECTORS.rglob("*.py")
        if "sandbox" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bwhile True\b", line)
    ]
    assert loops == []
