"""How a run ends: every failure kind recorded with its reason and exit code, never raised; stops recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from closeloop.engine.failures import FailureKind
from closeloop.engine.setup import SetupError
from closeloop.exitcodes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_UNREACHABLE, EXIT_USAGE
from closeloop.http.errors import (
    AuthError,
    BudgetExhausted,
    HttpError,
    TlsVerificationFailed,
    TransientError,
    Unreachable,
)
from closeloop.model import Page
from closeloop.store.rows import QuarantineStatus, RunStatus

from .conftest import World

FAILURES = [
    pytest.param(AuthError(401, "invalid token"), FailureKind.AUTH, EXIT_USAGE, id="credentials-refused"),
    pytest.param(TlsVerificationFailed("certificate verify failed"), FailureKind.TLS, EXIT_UNREACHABLE, id="tls"),
    pytest.param(Unreachable("connection refused"), FailureKind.UNREACHABLE, EXIT_UNREACHABLE, id="unreachable"),
    pytest.param(TransientError("HTTP 503 after 6 attempts"), FailureKind.TRANSIENT, EXIT_UNREACHABLE, id="5xx"),
    pytest.param(BudgetExhausted("daily budget spent"), FailureKind.BUDGET, EXIT_UNREACHABLE, id="budget"),
    pytest.param(HttpError(400, "MALFORMED_QUERY"), FailureKind.VENDOR, EXIT_UNREACHABLE, id="vendor-4xx"),
    pytest.param(SetupError("create 'partner_id' by hand"), FailureKind.CONFIG, EXIT_USAGE, id="field-not-creatable"),
    pytest.param(KeyError("properties"), FailureKind.BUG, EXIT_INTERNAL, id="connector-bug"),
]


@pytest.mark.parametrize(("error", "kind", "exit_code"), FAILURES)
async def test_a_failing_read_ends_the_run_failed_with_its_kind_and_exit_code(
    world: World, monkeypatch: pytest.MonkeyPatch, error: Exception, kind: FailureKind, exit_code: int
) -> None:
    world.a.put("contacts", {"email": "ann@x.com"})

    async def refuse(*args: object, **kwargs: object) -> AsyncIterator[Page]:
        raise error
        yield  # an async generator, as read_changes is

    monkeypatch.setattr(type(world.engine.connector("a")), "read_changes", refuse)
    outcome = await world.engine.sync("ab")
    assert (outcome.status, outcome.failure, outcome.exit_code) == (RunStatus.FAILED, kind, exit_code)
    run = world.store.last_run("ab")
    assert run is not None
    assert (run.status, run.failure) == (RunStatus.FAILED, kind.value)
    assert run.error
    assert "\n" not in run.error
    assert str(error.args[0]).split()[0].strip("'") in run.error


async def test_a_stopped_run_is_recorded_interrupted_and_the_stop_passes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading = asyncio.Event()

    async def slow(*args: object, **kwargs: object) -> AsyncIterator[Page]:
        reading.set()
        await asyncio.Event().wait()  # a vendor that never answers; the daemon's stop cancels the run
        yield Page(())

    monkeypatch.setattr(type(world.engine.connector("a")), "read_changes", slow)
    run = asyncio.create_task(world.engine.sync("ab"))
    await reading.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    last = world.store.last_run("ab")
    assert last is not None
    assert (last.status, last.failure) == (RunStatus.INTERRUPTED, None)


async def test_a_write_that_keeps_failing_is_quarantined_after_the_last_attempt(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    world.b.outage = True  # every write call raises an error no vendor answer explains
    attempts = world.engine.config.connection("ab").write_attempts
    for _ in range(attempts):
        await world.sync()
        assert world.store.list_quarantine(QuarantineStatus.OPEN) == [] or _ == attempts - 1
        world.clock.now += timedelta(hours=2)  # past the longest backoff
    quarantined = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert [(q.system, q.code) for q in quarantined] == [("b", "WRITE_FAILED")]
    assert f"gave up after {attempts} attempts" in quarantined[0].reason
    assert "ConnectionError: b is unavailable" in quarantined[0].reason
    assert world.store.outbox_depth("ab") == 0
    # the outage ends; the admin retries: the record arrives and the entry closes
    world.b.outage = False
    world.store.mark_retry("all")
    await world.sync()
    assert [r.fields["email"] for r in world.b.live("contacts")] == ["ann@x.com"]
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []


async def test_a_write_refused_for_a_lost_credential_fails_the_run_instead_of_waiting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.a.put("contacts", {"email": "ann@x.com"})

    async def refuse(*args: object, **kwargs: object) -> None:
        raise AuthError(401, "token expired and refresh refused")

    monkeypatch.setattr(type(world.engine.connector("b")), "write", refuse)
    outcome = await world.engine.sync("ab")
    assert (outcome.status, outcome.failure) == (RunStatus.FAILED, FailureKind.AUTH)
    assert world.store.outbox_depth("ab") == 1  # the write waits in the outbox for the next run


def test_exit_codes_of_interrupted_runs() -> None:
    from closeloop.engine.runtime import RunOutcome

    assert RunOutcome(1, RunStatus.INTERRUPTED, {}, {}).exit_code == EXIT_INTERRUPTED
