"""Attribution: hand-computed credits for a 5-touch and a 3-touch deal, and properties of every model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.loop import Channel, Model, ReportInput, Touch, TouchKind, attribute, make_touch
from closeloop.loop.report import deal_touches, journeys, won_in_period

D1_CLOSE = datetime(2024, 3, 20, tzinfo=UTC)
D2_CLOSE = datetime(2024, 3, 25, tzinfo=UTC)

FIVE_TOUCH = {  # D1, 1200.00: original source, form fill, lead created, deal created, closed won
    Model.FIRST_TOUCH: ["1200.00", "0.00", "0.00", "0.00", "0.00"],
    Model.LAST_TOUCH: ["0.00", "0.00", "0.00", "0.00", "1200.00"],
    Model.LINEAR: ["240.00", "240.00", "240.00", "240.00", "240.00"],
    Model.U_SHAPED: ["480.00", "80.00", "80.00", "80.00", "480.00"],
    Model.W_SHAPED: ["360.00", "60.00", "360.00", "360.00", "60.00"],
    Model.FULL_PATH: ["270.00", "120.00", "270.00", "270.00", "270.00"],
    # ages 21, 14, 14, 7, 0 days -> weights 1/8, 1/4, 1/4, 1/2, 1 -> shares 1/17, 2/17, 2/17, 4/17, 8/17
    Model.TIME_DECAY: ["70.59", "141.18", "141.18", "282.35", "564.70"],
}
THREE_TOUCH = {  # D2, 900.00: original source (organic), campaign (email), deal created (paid search)
    Model.FIRST_TOUCH: ["900.00", "0.00", "0.00"],
    Model.LAST_TOUCH: ["0.00", "0.00", "900.00"],
    Model.LINEAR: ["300.00", "300.00", "300.00"],
    Model.U_SHAPED: ["360.00", "180.00", "360.00"],
    Model.W_SHAPED: ["405.00", "90.00", "405.00"],  # no lead-creation touch: two milestones share 90%
    Model.FULL_PATH: ["405.00", "90.00", "405.00"],  # no lead-creation or closed-won touch
    Model.TIME_DECAY: ["128.57", "257.14", "514.29"],  # ages 21, 14, 7 days -> 1/7, 2/7, 4/7
}


@pytest.fixture
def five_touches(scenario_input: ReportInput) -> list[Touch]:
    return [t for t in scenario_input.touches if t.contact_id == "c1"]


@pytest.fixture
def three_touches(scenario_input: ReportInput) -> list[Touch]:
    d2 = next(p for p in won_in_period(scenario_input) if p.deal_id == "D2")
    return deal_touches(d2, journeys(scenario_input))


@pytest.mark.parametrize("model", list(Model), ids=str)
def test_five_touch_deal(model: Model, five_touches: list[Touch]) -> None:
    credits = attribute(model, Decimal("1200.00"), five_touches, closed_at=D1_CLOSE)
    assert [str(c.amount) for c in credits] == FIVE_TOUCH[model]
    assert [c.touch.kind.value for c in credits] == [
        "original_source",
        "form_fill",
        "lead_created",
        "deal_created",
        "closed_won",
    ]


@pytest.mark.parametrize("model", list(Model), ids=str)
def test_three_touch_deal(model: Model, three_touches: list[Touch]) -> None:
    credits = attribute(model, Decimal("900.00"), list(reversed(three_touches)), closed_at=D2_CLOSE)
    assert [str(c.amount) for c in credits] == THREE_TOUCH[model]
    assert [c.touch.channel for c in credits] == [Channel.ORGANIC_SEARCH, Channel.EMAIL, Channel.PAID_SEARCH]


def test_no_touches_no_credits() -> None:
    assert attribute(Model.LINEAR, Decimal("10.00"), []) == []


@pytest.mark.parametrize(("count", "expected"), [(1, ["9.99"]), (2, ["5.00", "4.99"])], ids=["one", "two"])
def test_u_shaped_with_few_touches(count: int, expected: list[str]) -> None:
    touches = [make_touch("c", START + timedelta(days=i), TouchKind.VISIT) for i in range(count)]
    assert [str(c.amount) for c in attribute(Model.U_SHAPED, Decimal("9.99"), touches)] == expected


def test_w_shaped_when_milestones_coincide() -> None:
    touches = [
        make_touch("c", START, TouchKind.LEAD_CREATED),
        make_touch("c", START + timedelta(days=1), TouchKind.VISIT),
        make_touch("c", START + timedelta(days=2), TouchKind.VISIT),
    ]
    assert [str(c.amount) for c in attribute(Model.W_SHAPED, Decimal("100"), touches)] == [
        "90.00",
        "5.00",
        "5.00",
    ]


def test_time_decay_half_life_is_configurable() -> None:
    touches = [
        make_touch("c", START, TouchKind.VISIT),
        make_touch("c", START + timedelta(days=1), TouchKind.VISIT),
    ]
    credits = attribute(Model.TIME_DECAY, Decimal("3"), touches, half_life=timedelta(days=1))
    assert [str(c.amount) for c in credits] == ["1.00", "2.00"]


START = datetime(2024, 1, 1, tzinfo=UTC)
kinds = st.sampled_from(list(TouchKind))
offsets = st.integers(min_value=0, max_value=60 * 24 * 90)  # minutes within 90 days
touch_lists = st.lists(
    st.builds(lambda m, k: make_touch("c", START + timedelta(minutes=m), k), offsets, kinds),
    min_size=1,
    max_size=12,
)
amounts = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("1000000"), places=2)


@given(st.sampled_from(list(Model)), amounts, touch_lists)
def test_credits_sum_to_the_amount_exactly(model: Model, amount: Decimal, touches: list[Touch]) -> None:
    credits = attribute(model, amount, touches, closed_at=START + timedelta(days=91))
    assert sum(c.amount for c in credits) == amount
    assert all(c.amount == c.amount.quantize(Decimal("0.01")) for c in credits)


@given(st.sampled_from([Model.FIRST_TOUCH, Model.LAST_TOUCH]), amounts, touch_lists)
def test_first_and_last_touch_give_all_to_one(model: Model, amount: Decimal, touches: list[Touch]) -> None:
    credits = attribute(model, amount, touches)
    nonzero = [i for i, c in enumerate(credits) if c.amount != 0]
    assert nonzero == ([] if amount == 0 else [0 if model is Model.FIRST_TOUCH else len(credits) - 1])


@given(amounts, touch_lists)
def test_linear_shares_differ_by_at_most_one_cent(amount: Decimal, touches: list[Touch]) -> None:
    parts = [c.amount for c in attribute(Model.LINEAR, amount, touches)]
    assert max(parts) - min(parts) <= Decimal("0.01")


@given(amounts.filter(lambda a: a >= 0), touch_lists.filter(lambda t: len(t) >= 3))
def test_u_shaped_ends_get_at_least_the_middle(amount: Decimal, touches: list[Touch]) -> None:
    parts = [c.amount for c in attribute(Model.U_SHAPED, amount, touches)]
    assert min(parts[0], parts[-1]) >= max(parts[1:-1])


@given(amounts.filter(lambda a: a >= 0), touch_lists)
def test_time_decay_gives_more_recent_touches_at_least_as_much(amount: Decimal, touches: list[Touch]) -> None:
    credits = attribute(Model.TIME_DECAY, amount, touches, closed_at=START + timedelta(days=91))
    for older in credits:
        for newer in credits:
            if newer.touch.at > older.touch.at:
                assert newer.amount >= older.amount
