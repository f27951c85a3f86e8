"""Response classification as data: a closed set of actions and one status table, extendable per vendor."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType

import httpx


class Action(enum.Enum):
    """What the client does with a response."""

    SUCCESS = "success"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REAUTH = "reauth"
    FAIL = "fail"
    IGNORE = "ignore"


Classifier = Callable[[httpx.Response], Action | None]
"""A vendor's view of a response; ``None`` defers to the next classifier and finally the status table.

A classifier may also raise :class:`~closeloop.http.errors.BudgetExhausted` for a spent daily quota."""

DEFAULT_TABLE: Mapping[int, Action] = MappingProxyType(
    {
        401: Action.REAUTH,
        429: Action.RATE_LIMITED,
        500: Action.RETRY,
        502: Action.RETRY,
        503: Action.RETRY,
        504: Action.RETRY,
    }
)


def by_status(table: Mapping[int, Action]) -> Classifier:
    """A classifier from a status table, e.g. ``by_status({404: Action.IGNORE})`` for idempotent deletes."""
    frozen = dict(table)

    def classify_status(response: httpx.Response) -> Action | None:
        return frozen.get(response.status_code)

    return classify_status


def chain(*classifiers: Classifier | None) -> Classifier:
    """A classifier asking each of ``classifiers`` in turn; the first answer wins."""
    present = [c for c in classifiers if c is not None]

    def classify_chain(response: httpx.Response) -> Action | None:
        for classifier in present:
            action = classifier(response)
            if action is not None:
                return action
        return None

    return classify_chain


def classify(response: httpx.Response, classifier: Classifier | None = None) -> Action:
    """The action for ``response``: the vendor classifier, else the default table, else the status class."""
    if classifier is not None:
        action = classifier(response)
        if action is not None:
            return action
    status = response.status_code
    if status in DEFAULT_TABLE:
        return DEFAULT_TABLE[status]
    return Action.SUCCESS if 200 <= status < 300 else Action.FAIL
