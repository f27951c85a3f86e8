"""The daemon's reload: parsed in a worker thread, and a file watcher that no broken file can stop."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.daemon import lifecycle
from closeloop.daemon.endpoints import build_app
from closeloop.daemon.lifecycle import Daemon
from closeloop.daemon.settings import DaemonSettings
from closeloop.store import Store

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The sandbox configuration and its mappings, copied where a test may break them."""
    shutil.copytree(REPO / "config" / "mappings", tmp_path / "mappings")
    path = tmp_path / "closeloop.yaml"
    shutil.copy(REPO / "config" / "sandbox.yaml", path)
    return path


@pytest.fixture
def daemon(config_path: Path, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon that is not serving: its scheduler never starts, so no run reaches a vendor."""
    store = Store.open(tmp_path / "state.db")
    try:
        yield Daemon(DaemonSettings(reload_poll_seconds=0.02), load_config(config_path), store, tmp_path / "state.db")
    finally:
        store.close()


def reloads(daemon: Daemon, result: str) -> float:
    """The reload counter's value for ``result``."""
    value = daemon.metrics.registry.get_sample_value("closeloop_config_reloads_total", {"result": result})
    return value or 0.0


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most ten seconds) for ``condition``."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_healthz_answers_while_a_reload_is_parsing(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    answered = threading.Event()
    seen: list[bool] = []

    def slow_load(path: Path) -> LoadedConfig:
        # On the event loop this would hold /healthz back for the whole wait, and see it unanswered.
        seen.append(answered.wait(timeout=5))
        return load_config(path)

    monkeypatch.setattr(lifecycle, "load_config", slow_load)
    app = build_app(daemon.view())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://daemon") as http:
        reload = asyncio.create_task(daemon.reload("test"))
        await asyncio.sleep(0.05)  # the reload starts and waits for /healthz to have answered
        assert (await http.get("/healthz")).status_code == 200
        answered.set()
        assert await reload
    assert seen == [True]


def read(path: Path) -> str:
    return path.read_text()


def rewrite(path: Path, text: str) -> None:
    """Write ``path`` whole, whatever a breakage left there."""
    if path.is_dir():
        path.rmdir()
    path.write_text(text)


def write_binary(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 8)


def write_latin1(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"crm-marketing", "crm-marketing-\xe9".encode("latin-1")))


def write_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2 - 7])


def delete(path: Path) -> None:
    path.unlink()


def replace_by_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def write_laughs(path: Path) -> None:
    levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path.write_text("\n".join(levels) + "\n")


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(write_binary, id="binary"),
        pytest.param(write_latin1, id="not-utf8"),
        pytest.param(write_half, id="half-written"),
        pytest.param(delete, id="deleted"),
        pytest.param(replace_by_folder, id="replaced-by-a-folder"),
        pytest.param(write_laughs, id="billion-laughs"),
    ],
)
async def test_the_watcher_survives_a_broken_config_and_picks_up_the_next_edit(
    daemon: Daemon, config_path: Path, breakage: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    good = read(config_path)
    watcher = asyncio.create_task(daemon._watch_files())
    try:
        await asyncio.sleep(0.05)
        breakage(config_path)
        await until(lambda: reloads(daemon, "invalid") == 1, "the broken file to be refused")
        await asyncio.sleep(0.1)  # more polls: the unchanged broken file is not reported again
        assert reloads(daemon, "invalid") == 1
        assert daemon.config.connections[0].name == "crm-marketing"
        rewrite(config_path, good.replace("name: crm-marketing", "name: renamed"))
        await until(lambda: reloads(daemon, "ok") == 1, "the next valid edit to be reloaded")
        assert [c.name for c in daemon.config.connections] == ["renamed"]
        assert not watcher.done()
    finally:
        watcher.cancel()
        await daemon.engine.aclose()
    assert "Traceback" not in caplog.text
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert refused[-1] == "config reload (files changed) refused: the configuration in force stays"
    assert str(config_path) in refused[0]


async def test_an_unexpected_loading_error_is_counted_and_the_watch_goes_on(
    daemon: Daemon, config_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_loader(path: Path) -> LoadedConfig:
        raise RuntimeError("secret-value-123")

    monkeypatch.setattr(lifecycle, "load_config", broken_loader)
    watcher = asyncio.create_task(daemon._watch_files())
    try:
        await asyncio.sleep(0.05)
        rewrite(config_path, read(config_path) + "\n")
        await until(lambda: reloads(daemon, "error") == 1, "the failure to be counted")
        monkeypatch.setattr(lifecycle, "load_config", load_config)
        rewrite(config_path, read(config_path) + "\n")
        await until(lambda: reloads(daemon, "ok") == 1, "the next edit to be reloaded")
        assert not watcher.done()
    finally:
        watcher.cancel()
        await daemon.engine.aclose()
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed == [
        "config reload (files changed) failed: internal error RuntimeError; the configuration in force stays"
    ]
    assert "secret-value-123" not in caplog.text


async def test_a_failing_file_check_is_said_once_and_the_watch_goes_on(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyFiles:
        """Three checks fail (a folder that cannot be listed), the fourth sees a change."""

        def __init__(self, config_path: Path) -> None:
            self.checks = 0

        def changed(self) -> bool:
            self.checks += 1
            if self.checks <= 3:
                raise PermissionError("cannot list the folder")
            return self.checks == 4

    monkeypatch.setattr(lifecycle, "ConfigFiles", FlakyFiles)
    watcher = asyncio.create_task(daemon._watch_files())
    try:
        await until(lambda: reloads(daemon, "ok") == 1, "the change after the failures to be reloaded")
        assert not watcher.done()
    finally:
        watcher.cancel()
        await daemon.engine.aclose()
    assert reloads(daemon, "error") == 1
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("config watcher")]
    assert said == ["config watcher: PermissionError; still watching"]
