"""Telling a merge the vendor reported as a plain deletion from a deletion (closeloop.engine.survivors)."""

from __future__ import annotations

import pytest

from closeloop.engine.survivors import Evidence, survivor

D1, D2 = ("Deals", "d1"), ("Deals", "d2")


Deals = dict[tuple[str, str], set[str]]


def ev(before: Deals, now: Deals, same_key: frozenset[str] = frozenset()) -> Evidence:
    return Evidence(
        {k: frozenset(v) for k, v in before.items()}, {k: frozenset(v) for k, v in now.items()}, frozenset(same_key)
    )


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        pytest.param(ev({D1: {"bob"}}, {D1: {"ann"}}), "ann", id="its-deal-now-names-another"),
        pytest.param(
            ev({D1: {"bob"}, D2: {"bob", "cid"}}, {D1: {"ann"}, D2: {"ann", "cid"}}),
            "ann",
            id="both-deals-moved-to-one",
        ),
        pytest.param(ev({D1: {"bob", "cid"}}, {D1: {"cid", "ann"}}), "ann", id="a-contact-already-there-is-not-new"),
        pytest.param(ev({D1: {"bob"}}, {D1: {"ann", "dan"}}), None, id="two-new-contacts-is-no-merge-anyone-can-tell"),
        pytest.param(
            ev({D1: {"bob"}, D2: {"bob"}}, {D1: {"ann"}, D2: {"dan"}}), None, id="deals-moved-to-two-contacts"
        ),
        pytest.param(ev({D1: {"bob"}}, {D1: {"bob", "ann"}}), None, id="a-deal-still-naming-it-moved-nothing"),
        pytest.param(ev({D1: {"bob"}}, {D1: set()}), None, id="its-deal-names-nobody-now"),
        pytest.param(ev({D1: {"bob", "ann"}}, {D1: {"ann"}}), None, id="merged-into-a-contact-already-on-its-deals"),
        pytest.param(ev({}, {}, frozenset({"ann"})), "ann", id="no-deal-one-contact-holds-its-email"),
        pytest.param(
            ev({D1: {"bob"}}, {D1: set()}, frozenset({"ann"})), "ann", id="no-deal-moved-one-contact-holds-its-email"
        ),
        pytest.param(ev({}, {}, frozenset({"ann", "dan"})), None, id="two-contacts-hold-its-email"),
        pytest.param(ev({}, {}, frozenset({"bob"})), None, id="only-itself-holds-its-email"),
        pytest.param(ev({}, {}), None, id="nothing-tells-a-merge-a-plain-deletion"),
        pytest.param(ev({D1: {"bob"}}, {D1: {"ann"}}, frozenset({"dan"})), "ann", id="a-moved-deal-outranks-the-email"),
    ],
)
def test_survivor(evidence: Evidence, expected: str | None) -> None:
    assert survivor("bob", evidence) == expected
