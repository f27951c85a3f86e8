"""The fair-share rule and each replica's lease plan, without a database."""

from __future__ import annotations

import pytest

from closeloop.store.lease_plan import fair_share, key32, plan_leases, preference, replica_name

CONNECTIONS = [f"c{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("connections", "replicas", "share"),
    [(6, 3, 2), (6, 4, 2), (4, 2, 2), (5, 2, 3), (1, 3, 1), (0, 2, 0), (6, 0, 6)],
    ids=["even", "rounded-up", "bench-c4", "odd", "fewer-connections", "none", "no-live-count"],
)
def test_fair_share_is_the_ceiling_of_connections_over_replicas(connections: int, replicas: int, share: int) -> None:
    assert fair_share(connections, replicas) == share


def test_a_replica_below_its_share_may_try_every_free_connection_in_its_own_order() -> None:
    plan = plan_leases("a", CONNECTIONS, held=set(), live_replicas=3)
    assert plan.release == ()
    assert plan.room == 2
    assert list(plan.candidates) == preference("a", CONNECTIONS)


def test_replicas_prefer_different_connections() -> None:
    firsts = {tuple(preference(name, CONNECTIONS)[:2]) for name in ("a", "b", "c", "d")}
    assert len(firsts) > 1


def test_above_the_share_the_least_preferred_idle_leases_go() -> None:
    order = preference("a", CONNECTIONS)
    plan = plan_leases("a", CONNECTIONS, held=set(CONNECTIONS), live_replicas=2)
    assert set(plan.release) == set(order[3:])
    assert plan.candidates == ()
    assert plan.room == 0


def test_a_running_connection_is_never_released() -> None:
    order = preference("a", CONNECTIONS)
    plan = plan_leases("a", CONNECTIONS, held=set(CONNECTIONS), live_replicas=2, running=[order[-1]])
    assert order[-1] not in plan.release
    assert len(plan.release) == 3


def test_leases_of_connections_no_longer_configured_go() -> None:
    plan = plan_leases("a", ["c0"], held={"c0", "gone"}, live_replicas=1)
    assert plan.release == ("gone",)


def test_lock_keys_are_stable_31_bit_numbers() -> None:
    assert key32("c0") == key32("c0") != key32("c1")
    assert all(0 <= key32(name) < 2**31 for name in CONNECTIONS)


def test_the_replica_name_comes_from_the_environment_or_the_host_and_pid() -> None:
    assert replica_name({"CLOSELOOP_REPLICA": "web-1"}) == "web-1"
    assert replica_name({}).rsplit("-", 1)[1].isdigit()
