"""The one page loop, and paginators: how a vendor says where its next page is.

A connector reads a list, a search or a change stream as ``paginate(fetch, paginator)``: ``fetch`` makes one call
for a page *state* (the query parameters, a URL, a keyset position), and the paginator says where reading starts
and, from a page's answer, the state of the next page, or ``None`` at the end. The loop is written here once; a
connector declares its vendor's way of paging with one of the paginators below, or a small class of its own where
the vendor is odd (a search paged by keyset, a token sequence that restarts). The shape follows dlt's
``RESTClient.paginate`` and the singer-sdk's paginator classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

State = TypeVar("State")
Body = TypeVar("Body")
Answer = TypeVar("Answer", contravariant=True)
Key = TypeVar("Key")
Params = dict[str, Any]
"""A page's query parameters (or JSON body), as the vendor's API names them."""


class Paginator(Protocol[State, Answer]):
    """How one vendor pages a read: the first page's state, and each next one's from the answer before it."""

    def first(self) -> State:
        """The state of the first page."""
        ...

    def next(self, state: State, body: Answer) -> State | None:
        """The state of the page after ``body`` (fetched for ``state``); None when ``body`` was the last."""
        ...


async def paginate(fetch: Callable[[State], Awaitable[Body]], paginator: Paginator[State, Body]) -> AsyncIterator[Body]:
    """Every page of a read, in order: fetch a page, hand it out, ask the paginator for the next one.

    The next page is fetched only once the caller asks for it, so a caller that stops early makes no extra call.
    """
    state: State | None = paginator.first()
    while state is not None:
        body = await fetch(state)
        yield body
        state = paginator.next(state, body)


def dig(body: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in a JSON answer (``("paging", "next", "after")``), None where any step is missing."""
    for step in path:
        if not isinstance(body, Mapping):
            return None
        body = body.get(step)
    return body


@dataclass(frozen=True)
class TokenPaginator:
    """A token in the answer names the next page (HubSpot's ``paging.next.after``, Marketo's and Pardot's
    ``nextPageToken``); the next call sends it as ``param``.

    ``more_at`` names a flag that must be true as well (Marketo's ``moreResult``); ``keep`` lists the only
    parameters that go with the token (Pardot accepts ``fields`` beside it and nothing else); None keeps all.
    """

    params: Mapping[str, Any]
    token_at: Sequence[str]
    param: str
    more_at: Sequence[str] | None = None
    keep: Sequence[str] | None = None

    def first(self) -> Params:
        """The first page: the read's own parameters."""
        return dict(self.params)

    def next(self, state: Params, body: Any) -> Params | None:
        """The parameters with the answer's token, or None when it gives none (or says no more)."""
        token = dig(body, self.token_at)
        if not token or (self.more_at is not None and not dig(body, self.more_at)):
            return None
        kept = state if self.keep is None else {k: v for k, v in state.items() if k in self.keep}
        return {**kept, self.param: token}


@dataclass(frozen=True)
class PageNumberPaginator:
    """Numbered pages while a flag in the answer says more follow (Zoho's ``page`` and ``info.more_records``)."""

    params: Mapping[str, Any]
    more_at: Sequence[str]
    param: str = "page"
    start: int = 1

    def first(self) -> Params:
        """The first page: the read's parameters with the first page number."""
        return {**self.params, self.param: self.start}

    def next(self, state: Params, body: Any) -> Params | None:
        """The next page number, or None when the answer is empty or says no more."""
        return {**state, self.param: int(state[self.param]) + 1} if dig(body, self.more_at) else None


@dataclass(frozen=True)
class NextUrlPaginator:
    """The answer carries the next page's URL until it says it is done (Salesforce's ``nextRecordsUrl``)."""

    url: str
    url_at: Sequence[str]
    done_at: Sequence[str] | None = None

    def first(self) -> str:
        """The first page's URL."""
        return self.url

    def next(self, state: str, body: Any) -> str | None:
        """The next page's URL, or None when the answer is done or names none."""
        if self.done_at is not None and dig(body, self.done_at) is not False:
            return None
        url = dig(body, self.url_at)
        return str(url) if url else None


@dataclass(frozen=True)
class KeysetPaginator(Generic[Key]):
    """Each page starts after the last key of the one before (an id, a position, a query built from them).

    ``after`` reads the next page's key from an answer, None when it was the last page.
    """

    start: Key
    after: Callable[[Any], Key | None]

    def first(self) -> Key:
        """The first page's key."""
        return self.start

    def next(self, state: Key, body: Any) -> Key | None:
        """The key after ``body``'s last record, or None when it was the last page."""
        return self.after(body)
