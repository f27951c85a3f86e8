"""The daemon's HTTP surface (one small starlette app): health, readiness, metrics, early syncs, webhooks."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from closeloop.connector import registry
from closeloop.daemon.metrics import DaemonMetrics
from closeloop.daemon.readiness import Readiness
from closeloop.webhook_bodies import BadBody, check_body
from closeloop.webhooks import MAX_BODY_BYTES, WebhookRequest, WebhookSpec, secret_variable, secrets_from, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaemonView:
    """What the endpoints may ask of the daemon, so they can be tested without one."""

    readiness: Callable[[], Readiness]
    request_sync: Callable[[str, str], bool]
    """(connection, reason) -> whether an early run was scheduled."""
    connections_using: Callable[[str], list[str]]
    """Connector name -> the connections that include a system of that connector."""
    metrics: DaemonMetrics
    webhook_secrets: Mapping[str, SecretStr]
    clock: Callable[[], datetime]
    webhooks: Mapping[str, WebhookSpec] = field(default_factory=dict)
    """Connector name -> how its webhooks are verified (from the installed plugins)."""
    public_url: str | None = None


def installed_webhooks() -> dict[str, WebhookSpec]:
    """Connector name -> webhook spec, for every installed plugin that declares one."""
    return {name: plugin.webhook for name, plugin in registry().plugins.items() if plugin.webhook is not None}


def webhook_secrets() -> dict[str, SecretStr]:
    """The webhook secrets set in the environment for the installed connectors that take webhooks."""
    return secrets_from(os.environ, installed_webhooks())


def build_app(view: DaemonView) -> Starlette:
    """The ASGI app served by uvicorn in the daemon's event loop."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        state = view.readiness()
        return JSONResponse({"ready": state.ready, "problems": state.problems}, status_code=200 if state.ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(view.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def sync_now(request: Request) -> Response:
        name = request.path_params["name"]
        # Harmless without authentication: an early run coalesces with any other and reads what the poll would.
        if not view.request_sync(name, "http"):
            return JSONResponse({"error": f"no scheduled connection {name!r}"}, status_code=404)
        return JSONResponse({"connection": name, "scheduled": True}, status_code=202)

    async def webhook(request: Request) -> Response:
        connector = request.path_params["connector"]
        spec = view.webhooks.get(connector)
        if spec is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        body = await _bounded_body(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        if spec.body is not None:
            try:
                check_body(body, spec.body)
            except BadBody as exc:
                view.metrics.webhooks.labels(connector, "malformed").inc()
                log.warning("webhook for %s refused: %s", connector, exc.reason, extra={"system": connector})
                return JSONResponse({"error": exc.reason}, status_code=400)
        incoming = WebhookRequest(
            method=request.method,
            uri=_signed_uri(request, view.public_url),
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
        )
        verdict = verify(spec, incoming, view.webhook_secrets.get(connector), view.clock())
        if not verdict.ok:
            view.metrics.webhooks.labels(connector, "refused").inc()
            reason = verdict.reason if connector in view.webhook_secrets else f"set {secret_variable(connector)}"
            log.warning("webhook for %s refused: %s", connector, reason, extra={"system": connector})
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        view.metrics.webhooks.labels(connector, "accepted").inc()
        scheduled = [
            name for name in view.connections_using(connector) if view.request_sync(name, f"webhook {connector}")
        ]
        log.info(
            "webhook for %s: early run of %d connection(s)", connector, len(scheduled), extra={"system": connector}
        )
        ack = spec.ack
        if ack is not None:
            return Response(ack[1], media_type=ack[0])
        return JSONResponse({"scheduled": len(scheduled)})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/connections/{name}/sync", sync_now, methods=["POST"]),
            Route("/webhooks/{connector}", webhook, methods=["POST"]),
        ]
    )


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None once it passes ``MAX_BODY_BYTES`` (checked while streaming, not after)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _signed_uri(request: Request, public_url: str | None) -> str:
    """The URI the sender called: behind a proxy that is the public URL, not the one uvicorn sees."""
    if public_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url.rstrip('/')}{request.url.path}{query}"
