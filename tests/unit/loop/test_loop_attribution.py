"""Attribution: hand-computed credits for a 5-touch and a 3-touch deal, and properties of every model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.loop import Channel, Milestones, Model, ReportInput, Touch, TouchKind, attribute, make_touch
from closeloop.loop.attribution import milestone_touch
from closeloop.loop.report import deal_milestones, deal_touches, journeys, won_in_period

D1 = Milestones(
    lead_created_at=datetime(2024, 3, 6, tzinfo=UTC),
    deal_created_at=datetime(2024, 3, 13, tzinfo=UTC),
    closed_at=datetime(2024, 3, 20, tzinfo=UTC),
)
D2_CLOSE = datetime(2024, 3, 25, tzinfo=UTC)

FIVE_TOUCH = {  # D1, 1200.00: original source, form fill, lead creation (03-06), deal creation (03-13), close
    Model.FIRST_TOUCH: ["1200.00", "0.00", "0.00", "0.00", "0.00"],
    Model.LAST_TOUCH: ["0.00", "0.00", "0.00", "0.00", "1200.00"],
    Model.LINEAR: ["240.00", "240.00", "240.00", "240.00", "240.00"],
    Model.U_SHAPED: ["480.00", "80.00", "480.00", "80.00", "80.00"],  # 40 first, 40 lead creation, 20 / 3 others
    Model.W_SHAPED: ["360.00", "60.00", "360.00", "360.00", "60.00"],  # 30/30/30, 10 / 2 others
    Model.FULL_PATH: ["270.00", "120.00", "270.00", "270.00", "270.00"],  # 22.5 x 4, 10 to the form fill
    # ages 21, 14, 14, 7, 0 days -> weights 1/8, 1/4, 1/4, 1/2, 1 -> shares 1/17, 2/17, 2/17, 4/17, 8/17
    Model.TIME_DECAY: ["70.59", "141.18", "141.18", "282.35", "564.70"],
}
FOUR_TOUCH = {  # D2, 900.00, one pooled journey of c2 and c7: c2's source = first and lead creation; deal creation
    Model.FIRST_TOUCH: ["900.00", "0.00", "0.00", "0.00"],
    Model.LAST_TOUCH: ["0.00", "0.00", "0.00", "900.00"],
    Model.LINEAR: ["225.00", "225.00", "225.00", "225.00"],
    Model.U_SHAPED: ["720.00", "60.00", "60.00", "60.00"],  # first and lead creation on one touch: 80
    Model.W_SHAPED: ["540.00", "45.00", "45.00", "270.00"],  # 60 first + lead creation, 30 deal creation
    Model.FULL_PATH: ["405.00", "45.00", "45.00", "405.00"],  # 45 + 45 (deal creation and close on one touch)
    # ages 21, 14, 13, 7 days -> weights 2^-3, 2^-2, 2^(-13/7), 2^-1
    Model.TIME_DECAY: ["97.74", "195.48", "215.82", "390.96"],  # largest remainders take the cents
}


@pytest.fixture
def five_touches(scenario_input: ReportInput) -> list[Touch]:
    return [t for t in scenario_input.touches if t.contact_id == "c1"]


@pytest.fixture
def d2(scenario_input: ReportInput) -> tuple[list[Touch], Milestones]:
    deal = next(p for p in won_in_period(scenario_input) if p.deal_id == "D2")
    return deal_touches(deal, journeys(scenario_input)), deal_milestones(scenario_input, [deal])["D2"]


@pytest.mark.parametrize("model", list(Model), ids=str)
def test_five_touch_deal(model: Model, five_touches: list[Touch]) -> None:
    credits = attribute(model, Decimal("1200.00"), five_touches, D1)
    assert [str(c.amount) for c in credits] == FIVE_TOUCH[model]
    assert [c.touch.kind.value for c in credits] == ["original_source", "form_fill", "visit", "campaign", "visit"]


@pytest.mark.parametrize("model", list(Model), ids=str)
def test_pooled_journey_of_two_contacts(model: Model, d2: tuple[list[Touch], Milestones]) -> None:
    touches, milestones = d2
    assert milestones == Milestones(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 18, tzinfo=UTC), D2_CLOSE)
    credits = attribute(model, Decimal("900.00"), list(reversed(touches)), milestones)
    assert [str(c.amount) for c in credits] == FOUR_TOUCH[model]
    assert [(c.touch.contact_id, c.touch.channel) for c in credits] == [
        ("c2", Channel.ORGANIC_SEARCH),
        ("c7", Channel.EMAIL),
        ("c7", Channel.EMAIL),
        ("c7", Channel.PAID_SEARCH),
    ]


def test_no_touches_no_credits() -> None:
    assert attribute(Model.LINEAR, Decimal("10.00"), []) == []


def _days(*offsets: int) -> list[Touch]:
    return [make_touch("c", START + timedelta(days=d), TouchKind.VISIT) for d in offsets]


def _at(day: int | None) -> datetime | None:
    return None if day is None else START + timedelta(days=day)


@pytest.mark.parametrize(
    ("model", "touch_days", "milestone_days", "expected"),
    [
        # Fewer touches than milestones: one touch takes everything; two share what their milestones give.
        pytest.param(Model.W_SHAPED, [0], (0, 1, 2), ["100.00"], id="w-one-touch-takes-all"),
        pytest.param(Model.FULL_PATH, [0], (0, 1, 2), ["100.00"], id="full-one-touch-takes-all"),
        pytest.param(Model.U_SHAPED, [0, 1], (1, 2, 3), ["50.00", "50.00"], id="u-two-touches-40-40"),
        # first + lead creation on touch 0 (60), deal creation and close on touch 1 (30 / 45): no others
        pytest.param(Model.W_SHAPED, [0, 1], (0, 1, 2), ["66.67", "33.33"], id="w-two-touches-60-30"),
        pytest.param(Model.FULL_PATH, [0, 1], (0, 1, 2), ["50.00", "50.00"], id="full-two-touches-45-45"),
        # Two milestones on one touch: it gets both shares.
        pytest.param(Model.W_SHAPED, [0, 1, 2], (5, 5, 9), ["30.00", "10.00", "60.00"], id="w-lead-and-deal-coincide"),
        pytest.param(
            Model.FULL_PATH, [0, 1, 2, 3], (1, 1, 9), ["22.50", "45.00", "10.00", "22.50"], id="full-lead-deal-coincide"
        ),
        # A milestone before every touch: the first touch stands for it.
        pytest.param(Model.U_SHAPED, [2, 3, 4], (0, 5, 5), ["80.00", "10.00", "10.00"], id="u-lead-before-touches"),
        # A milestone after the close's touches: the last touch at or before it.
        pytest.param(Model.U_SHAPED, [0, 1, 2, 3], (2, 5, 5), ["40.00", "10.00", "40.00", "10.00"], id="u-lead-3rd"),
        # An unknown milestone time: its share drops out and the rest keep their proportions.
        pytest.param(
            Model.W_SHAPED, [0, 1, 2, 3], (2, None, 3), ["42.86", "7.14", "42.86", "7.14"], id="w-deal-unknown"
        ),
        pytest.param(Model.U_SHAPED, [0, 1, 2], (None, None, 2), ["66.67", "16.67", "16.66"], id="u-lead-unknown"),
    ],
)
def test_milestone_rules(
    model: Model, touch_days: list[int], milestone_days: tuple[int | None, ...], expected: list[str]
) -> None:
    lead, deal, close = (_at(d) for d in milestone_days)
    credits = attribute(model, Decimal("100"), _days(*touch_days), Milestones(lead, deal, close))
    assert [str(c.amount) for c in credits] == expected


@pytest.mark.parametrize(("count", "expected"), [(1, ["9.99"]), (2, ["5.00", "4.99"])], ids=["one", "two"])
def test_u_shaped_with_few_touches(count: int, expected: list[str]) -> None:
    touches = _days(*range(count))
    milestones = Milestones(lead_created_at=START + timedelta(days=count - 1))
    assert [str(c.amount) for c in attribute(Model.U_SHAPED, Decimal("9.99"), touches, milestones)] == expected


def test_w_shaped_and_full_path_differ_when_the_close_has_its_own_touch() -> None:
    touches = _days(0, 1, 2, 3, 4)
    milestones = Milestones(_at(1), _at(2), _at(4))
    w_shaped = [str(c.amount) for c in attribute(Model.W_SHAPED, Decimal("100"), touches, milestones)]
    full_path = [str(c.amount) for c in attribute(Model.FULL_PATH, Decimal("100"), touches, milestones)]
    assert w_shaped == ["30.00", "30.00", "30.00", "5.00", "5.00"]
    assert full_path == ["22.50", "22.50", "22.50", "10.00", "22.50"]


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


milestone_times = st.one_of(st.none(), offsets.map(lambda m: START + timedelta(minutes=m)))


@given(st.sampled_from(list(Model)), amounts, touch_lists, milestone_times, milestone_times)
def test_credits_sum_to_the_amount_exactly(
    model: Model, amount: Decimal, touches: list[Touch], lead: datetime | None, deal: datetime | None
) -> None:
    credits = attribute(model, amount, touches, Milestones(lead, deal, START + timedelta(days=91)))
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


@given(amounts.filter(lambda a: a >= 0), touch_lists.filter(lambda t: len(t) >= 3), offsets)
def test_u_shaped_first_and_lead_creation_touches_get_at_least_the_others(
    amount: Decimal, touches: list[Touch], lead: int
) -> None:
    milestones = Milestones(lead_created_at=START + timedelta(minutes=lead))
    credits = attribute(Model.U_SHAPED, amount, touches, milestones)
    marked = {0, milestone_touch([c.touch for c in credits], milestones.lead_created_at)}
    others = [c.amount for i, c in enumerate(credits) if i not in marked]
    assert all(credits[i].amount + Decimal("0.01") >= max(others, default=Decimal(0)) for i in marked)


@given(amounts.filter(lambda a: a >= 0), touch_lists)
def test_time_decay_gives_more_recent_touches_at_least_as_much(amount: Decimal, touches: list[Touch]) -> None:
    credits = attribute(Model.TIME_DECAY, amount, touches, Milestones(closed_at=START + timedelta(days=91)))
    for older in credits:
        for newer in credits:
            if newer.touch.at > older.touch.at:
                assert newer.amount >= older.amount
