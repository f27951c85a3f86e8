"""Serve vendor emulators on 127.0.0.1 (the demo, the CLI, any HTTP client), with optional self-signed TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from closeloop.sandbox.env import export_lines
from closeloop.sandbox.kit import SandboxBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One emulator listening on loopback."""

    name: str
    sandbox: SandboxBase
    base_url: str


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1/localhost; return (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "closeloop sandbox")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "sandbox-cert.pem", directory / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@asynccontextmanager
async def serving(
    sandboxes: Sequence[tuple[str, SandboxBase]],
    *,
    port_base: int = 0,
    tls: tuple[Path, Path] | None = None,
) -> AsyncIterator[list[Served]]:
    """Serve each sandbox on 127.0.0.1 (ports port_base, port_base+1, ...; 0 picks free ports) until exit."""
    async with AsyncExitStack() as stack:
        served = []
        for offset, (name, sandbox) in enumerate(sandboxes):
            port = port_base + offset if port_base else 0
            served.append(await stack.enter_async_context(_serve_one(name, sandbox, port, tls)))
        yield served


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its caller (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def _serve_one(
    name: str, sandbox: SandboxBase, port: int, tls: tuple[Path, Path] | None
) -> AsyncIterator[Served]:
    config = uvicorn.Config(
        sandbox,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"sandbox {name} did not start")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    sandbox.base_url = f"{scheme}://127.0.0.1:{bound}"
    try:
        yield Served(name, sandbox, sandbox.base_url)
    finally:
        server.should_exit = True
        await task


async def serve_until_signal(
    sandboxes: Sequence[tuple[str, SandboxBase]], *, port_base: int, tls: bool, cert_dir: Path | None = None
) -> None:
    """Serve, print per vendor "<vendor> <base_url>" and its credentials, and run until SIGINT/SIGTERM.

    The credentials follow each URL as indented ``export NAME=value`` lines: the environment variables the
    example configurations (``config/examples/``) read, set to what this sandbox accepts.
    """
    with contextlib.ExitStack() as cleanup:
        # The certificate and the key files the credentials name live as long as the sandboxes serve.
        files = cert_dir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="closeloop-sandbox-")))
        await _serve_and_print(sandboxes, port_base, files, self_signed_cert(files) if tls else None)


async def _serve_and_print(
    sandboxes: Sequence[tuple[str, SandboxBase]], port_base: int, files: Path, pair: tuple[Path, Path] | None
) -> None:
    if pair:
        print(f"# tls certificate {pair[0]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(sandboxes, port_base=port_base, tls=pair) as served:
        for item in served:
            print(f"{item.name} {item.base_url}", flush=True)
            for line in export_lines(item.name, item.sandbox.credentials(files)):
                print(f"  {line}", flush=True)
        await stop.wait()
