"""The daemon's lifecycle: start scheduler and HTTP server, reload config between runs, stop on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import uvicorn

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig, Schedule
from closeloop.config.problems import ConfigError
from closeloop.daemon.endpoints import DaemonView, build_app, installed_webhooks, webhook_secrets
from closeloop.daemon.metrics import DaemonMetrics
from closeloop.daemon.readiness import Readiness, check_readiness, connection_health, store_problem
from closeloop.daemon.reload import ConfigFiles
from closeloop.daemon.replicas import ReplicaGate
from closeloop.daemon.scheduler import SyncScheduler
from closeloop.daemon.settings import DaemonSettings
from closeloop.engine.runtime import Engine
from closeloop.exitcodes import EXIT_USAGE
from closeloop.http import HttpClient, register_secret
from closeloop.loop.sla_now import breaches_by_connection, open_breaches_now
from closeloop.model import now_utc
from closeloop.store import AnyStore, RunStatus, StoreError
from closeloop.store.fence import LeaseLost
from closeloop.store.lease import Leases

log = logging.getLogger("closeloop.daemon")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon decides what a signal means."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the daemon."""
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); OSError when it cannot be had."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class Daemon:
    """One running ``closeloop run``: scheduled syncs, HTTP endpoints, reloads and graceful stop."""

    def __init__(
        self,
        settings: DaemonSettings,
        config: LoadedConfig,
        store: AnyStore,
        db_path: Path | None,
        *,
        clock: Callable[[], datetime] = now_utc,
        leases: Leases | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.db_path = db_path
        self._target = config.state.target(settings.state_dir, settings.state_url)
        self.clock = clock
        self.replica = leases.replica if leases is not None else None
        self.engine = Engine(config, store, clock=clock, replica=self.replica)
        self.metrics = DaemonMetrics()
        self.metrics.watch(self._outbox_depths, self._budgets_left)
        self.scheduler = SyncScheduler(
            self._sync, clock=clock, min_gap=timedelta(seconds=settings.early_run_gap_seconds)
        )
        # Replicas on a PostgreSQL store: runs only where the connection's lease is held (see replicas.py).
        self.gate = (
            None
            if leases is None
            else ReplicaGate(
                leases,
                self.scheduler,
                store,
                self.metrics.registry,
                tick_seconds=settings.lease_tick_seconds,
                schedule_of=self._schedule_of,
                clock=clock,
            )
        )
        self.started_at = clock()
        self._stop = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self._signals: list[int] = []
        self._reload_lock = asyncio.Lock()

    def view(self) -> DaemonView:
        """What the HTTP endpoints see of this daemon."""
        return DaemonView(
            readiness=self.readiness,
            request_sync=self.gate.request if self.gate is not None else self.scheduler.request,
            connections_using=self.connections_using,
            metrics=self.metrics,
            webhook_secrets=webhook_secrets(),
            webhooks=installed_webhooks(),
            clock=self.clock,
            public_url=self.settings.webhook_public_url,
        )

    async def serve(self, sock: socket.socket) -> int:
        """Run until a signal; return the exit code (0 after a graceful stop)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP")))
        server = _Server(uvicorn.Config(build_app(self.view()), log_config=None, access_log=False, lifespan="off"))
        host, port = sock.getsockname()[:2]
        if self.gate is not None:
            problem = await self.gate.start_or_say_why([c.name for c in self.config.connections])
            if problem is not None:
                sock.close()
                log.error("closeloop did not start: %s", problem)
                return EXIT_USAGE
            ticker = asyncio.create_task(self.gate.run())
        http = asyncio.create_task(server.serve(sockets=[sock]))
        self.scheduler.start(self.config.connections)
        watcher = asyncio.create_task(self._watch_files())
        log.info(
            "closeloop running: %d connection(s), http://%s:%d",
            len(self.config.connections),
            host,
            port,
            extra={"http_url": f"http://{host}:{port}", "connections": [c.name for c in self.config.connections]},
        )
        try:
            await self._stop.wait()
            return await self._shutdown()
        finally:
            watcher.cancel()
            if self.gate is not None:
                ticker.cancel()
                await self.gate.close()
            server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(http, timeout=5)
            await self.engine.aclose()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def _on_stop_signal(self, sig: int) -> None:
        self._signals.append(sig)
        if len(self._signals) == 1:
            log.info(
                "%s: stopping; the running sync may finish within %gs (signal again to stop now)",
                signal.Signals(sig).name,
                self.settings.grace_seconds,
            )
            self._stop.set()
        else:
            log.warning("%s again: stopping now", signal.Signals(sig).name)
            self._hard_stop.set()

    async def _shutdown(self) -> int:
        """Stop scheduling, give the running sync the grace period, interrupt it if need be."""
        self.scheduler.stop_scheduling()
        idle = asyncio.create_task(self.scheduler.wait_idle())
        hard = asyncio.create_task(self._hard_stop.wait())
        await asyncio.wait({idle, hard}, timeout=self.settings.grace_seconds, return_when=asyncio.FIRST_COMPLETED)
        finished = idle.done()
        idle.cancel()
        hard.cancel()
        if not finished:
            # Interrupting is safe: each batch commits in one transaction, an interrupted one rolls back.
            log.warning("interrupting the running sync; it resumes from its last commit at the next start")
            await self.scheduler.cancel_runs()
        self.scheduler.shutdown()
        log.info("closeloop stopped")
        return 128 + self._signals[-1] if self._hard_stop.is_set() else 0

    async def _sync(self, name: str) -> None:
        """One run of ``name`` with the engine in force, counted in the metrics; nothing is raised but a stop."""
        engine = self.engine
        if name not in {c.name for c in engine.config.connections}:
            return
        if self.gate is not None and not self.gate.allows(name):
            log.debug("run of %s skipped: another replica holds its lease", name, extra={"connection": name})
            return
        started = time.monotonic()
        log.info("run of %s started", name, extra={"connection": name, "replica": self.replica})
        try:
            if self.gate is not None:
                async with self.gate.guard(name):
                    outcome = await engine.sync(name)
            else:
                outcome = await engine.sync(name)
        except asyncio.CancelledError:
            self.metrics.runs.labels(name, RunStatus.INTERRUPTED.value).inc()
            log.warning("run of %s interrupted; the next one resumes from its last commit", name)
            raise
        except LeaseLost as exc:  # another replica took the lease mid-run: this run committed nothing since
            self.metrics.runs.labels(name, RunStatus.INTERRUPTED.value).inc()
            log.warning("run of %s stopped: %s", name, exc, extra={"connection": name})
            return
        except Exception as exc:  # the run could not even be recorded: the state store itself failed
            self.metrics.runs.labels(name, RunStatus.FAILED.value).inc()
            log.error("run of %s could not be recorded: %s: %s", name, type(exc).__name__, exc)
            return
        self.metrics.observe_run(name, outcome, time.monotonic() - started, self.clock())
        self.count_sla_breaches(name)

    def count_sla_breaches(self, name: str) -> None:
        """Set the SLA breach gauge of one connection from the store, when ``loop.sla`` is configured."""
        sla = self.config.loop.sla
        if sla is None:
            return
        try:
            breaches = open_breaches_now(self.store, sla, self.clock())
            counts = breaches_by_connection(self.store, [self.config.connection(name)], breaches)
        except Exception as exc:  # a figure for the dashboard must never stop the daemon; the log says why
            log.error("SLA breaches of %s not counted: %s: %s", name, type(exc).__name__, exc)
            return
        self.metrics.sla_breaches.labels(name).set(counts[name])

    def _schedule_of(self, name: str) -> Schedule | None:
        """The schedule of a configured connection (None once it is gone)."""
        return next((c.schedule for c in self.config.connections if c.name == name), None)

    def connections_using(self, connector: str) -> list[str]:
        """The connections with a system of ``connector`` (webhooks name connectors, not systems)."""
        systems = {name for name, system in self.config.systems.items() if system.connector == connector}
        return [c.name for c in self.config.connections if systems & set(c.systems)]

    def readiness(self) -> Readiness:
        """Whether this daemon is doing its job (see ``check_readiness``)."""
        names = [c.name for c in self.config.connections]
        try:
            health = connection_health(self.store, names)
        except StoreError as exc:  # a PostgreSQL store whose server is gone: unready, saying why
            return Readiness(ready=False, problems=[f"state store: {exc}"])
        return check_readiness(
            health,
            # A PostgreSQL store (no file) shows its trouble through the runs it fails (StoreUnavailable); a replica
            # without its lease session runs nothing: not ready, whatever its last runs say.
            store_problem=(store_problem(self.db_path) if self.db_path is not None else None)
            or (self.gate.problem if self.gate is not None else None),
            now=self.clock(),
            started_at=self.started_at,
            threshold=timedelta(seconds=self.settings.ready_failing_seconds),
        )

    async def reload(self, reason: str) -> bool:
        """Re-validate the config off the event loop; swap it in between runs, or log why not and keep the old one."""
        async with self._reload_lock:
            if self._stop.is_set():
                return False
            config = await self._load(reason)
            if config is None or self._stop.is_set():
                return False
            for secret in config.secrets():
                register_secret(secret)
            if config.state.target(self.settings.state_dir, self.settings.state_url) != self._target:
                log.warning("the state store changed; a new state store takes a restart, the current one stays in use")
            await self.scheduler.hold()
            try:
                engine = Engine(config, self.store, clock=self.clock, replica=self.replica)
                old, self.engine, self.config = self.engine, engine, config
                self.scheduler.schedule(config.connections)
                if self.gate is not None:
                    self.gate.want([c.name for c in config.connections])
            finally:
                self.scheduler.release()
            await old.aclose()
            self.metrics.reloads.labels("ok").inc()
            log.info("config reloaded (%s): %d connection(s)", reason, len(config.connections))
            return True

    async def _load(self, reason: str) -> LoadedConfig | None:
        """The configuration as the files now say, or None (logged and counted) when it cannot be used."""
        try:
            # Reading and validating take seconds on a large file: in a worker thread /healthz and runs go on.
            return await asyncio.to_thread(load_config, self.config.path)
        except ConfigError as exc:
            self.metrics.reloads.labels("invalid").inc()
            for problem in exc.problems:
                log.error("config reload (%s) refused: %s", reason, problem)
            log.error("config reload (%s) refused: the configuration in force stays", reason)
        except Exception as exc:  # the daemon outlives any failure to load; the type names it, values may be secret
            self.metrics.reloads.labels("error").inc()
            log.error(
                "config reload (%s) failed: internal error %s; the configuration in force stays",
                reason,
                type(exc).__name__,
            )
        return None

    async def _watch_files(self) -> None:
        """Reload after each change to the config or the YAML files beside it; no error ends the watch."""
        if self.settings.reload_poll_seconds <= 0:
            return
        files = ConfigFiles(self.config.path)
        failing = ""
        while True:
            await asyncio.sleep(self.settings.reload_poll_seconds)
            try:
                if await asyncio.to_thread(files.changed):
                    await self.reload("files changed")
                failing = ""
            except Exception as exc:  # e.g. a folder that vanished mid-walk; said once, then retried every poll
                if type(exc).__name__ != failing:
                    self.metrics.reloads.labels("error").inc()
                    log.error("config watcher: %s; still watching", type(exc).__name__)
                failing = type(exc).__name__

    def _outbox_depths(self) -> dict[str, int]:
        try:
            return {c.name: self.store.outbox_depth(c.name) for c in self.config.connections}
        except StoreError as exc:  # the server is gone: the scrape still answers, without this gauge
            log.warning("outbox depth not exported: %s", exc)
            return {}

    def _budgets_left(self) -> dict[str, int]:
        left: dict[str, int] = {}
        for system in self.config.systems:
            # Connectors keep their HttpClient as ``http`` by convention; one that does not reports no budget.
            try:
                http = getattr(self.engine.connector(system), "http", None)
            except Exception as exc:  # a connector that cannot be built reports no budget; its runs say why
                log.debug("no budget for %s: %s", system, exc)
                continue
            budget = http.limiter.budget if isinstance(http, HttpClient) else None
            if budget is not None and budget.usable is not None:
                left[system] = max(budget.usable - budget.used, 0)
        return left
