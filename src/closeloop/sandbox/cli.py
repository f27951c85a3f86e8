"""``closeloop sandbox``: serve installed connectors' emulators on 127.0.0.1 with seeded data."""

from __future__ import annotations

import argparse
import asyncio
import sys

from closeloop.connector import registry
from closeloop.sandbox.kit import SandboxBase
from closeloop.sandbox.serve import serve_until_signal

LEADS_PER_PEOPLE = 5
"""``closeloop sandbox`` seeds one Lead per this many people in the CRMs that keep Leads apart."""


def build_sandboxes(
    vendors: list[str] | None, *, seed: int, people: int, deals: int, leads: int = 0
) -> list[tuple[str, SandboxBase]]:
    """Seeded sandboxes of the named (or every installed) connector, in the order given.

    People overlap between vendors by half, so the same person is found in two systems by email. ``leads`` more
    people are seeded as Leads where a CRM keeps them apart from its contacts (Salesforce, Zoho).
    """
    reg = registry()
    names = vendors or [name for name in reg.names if reg.get(name).sandbox is not None]
    built = []
    for index, name in enumerate(names):
        factory = reg.get(name).sandbox
        if factory is None:
            raise SystemExit(f"connector {name!r} has no sandbox")
        built.append((name, factory(seed=seed, people=people, deals=deals, leads=leads, offset=index * people // 2)))
    return built


def sandbox_command(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; print "<vendor> <base_url>" and its credentials per vendor once all listen.

    Every object the connectors read is seeded: a fifth as many Leads as people where a CRM has them.
    """
    try:
        leads = args.people // LEADS_PER_PEOPLE
        sandboxes = build_sandboxes(args.vendors, seed=args.seed, people=args.people, deals=args.deals, leads=leads)
    except Exception as exc:  # unknown vendor names come back as a PluginError listing installed ones
        print(f"closeloop sandbox: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve_until_signal(sandboxes, port_base=args.port_base, tls=args.tls))
    return 0
