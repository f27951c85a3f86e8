"""The newcomer's path through the command line: serve two sandboxes, copy an example, export what
``closeloop sandbox`` prints, validate online, sync; the CRM's seeded Leads reach the marketing system."""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from .conftest import CLOSELOOP, REPO, reader, stop


def _served_exports(lines: queue.Queue[str], vendors: int) -> dict[str, str]:
    """The ``export NAME=value`` lines printed under each vendor's URL."""
    environ: dict[str, str] = {}
    seen, deadline = 0, time.monotonic() + 60
    while seen < vendors or len(environ) < 2 * vendors:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        if line.startswith("  export "):
            name, _, value = shlex.split(line.strip())[1].partition("=")
            environ[name] = value
        elif " http" in line:
            seen += 1
    time.sleep(0.2)  # the last vendor's remaining lines
    while not lines.empty():
        name, _, value = shlex.split(lines.get().strip())[1].partition("=")
        environ[name] = value
    return environ


def test_zoho_marketo_example_syncs_the_served_sandboxes(tmp_path: Path) -> None:
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*CLOSELOOP, "sandbox", "--vendor", "zoho", "--vendor", "marketo", "--port-base", "0", "--people", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    lines, thread = reader(process)
    try:
        environ = _served_exports(lines, 2)
        assert {"ZOHO_REFRESH_TOKEN", "ZOHO_BASE_URL", "MARKETO_CLIENT_SECRET", "MARKETO_BASE_URL"} <= set(environ)
        example = tmp_path / "zoho-marketo"
        shutil.copytree(REPO / "config" / "examples" / "zoho-marketo", example)
        env = {"PATH": os.environ.get("PATH", ""), "CLOSELOOP_LOG_FORMAT": "json", **environ}
        for command in (["validate", "--online"], ["sync"]):
            done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
                [*CLOSELOOP, *command, "--config", str(example / "closeloop.yaml")],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        assert (example / "state" / "closeloop.db").exists()
        leads = _zoho_lead_emails(environ)
        assert len(leads) == 10 // 5  # closeloop sandbox seeds a Lead for every five people
        marketo = _marketo_emails(environ, leads)
        assert leads <= marketo, "the seeded Zoho Leads reached Marketo"
    finally:
        stop(process, thread)


def _zoho_lead_emails(environ: dict[str, str]) -> set[str]:
    base = environ["ZOHO_BASE_URL"]
    token = httpx.post(
        f"{base}/oauth/v2/token",
        params={
            "grant_type": "refresh_token",
            "client_id": environ["ZOHO_CLIENT_ID"],
            "client_secret": environ["ZOHO_CLIENT_SECRET"],
            "refresh_token": environ["ZOHO_REFRESH_TOKEN"],
        },
    ).json()["access_token"]
    answer = httpx.get(
        f"{base}/crm/v8/Leads", params={"fields": "Email"}, headers={"Authorization": f"Zoho-oauthtoken {token}"}
    )
    return {row["Email"].lower() for row in answer.json()["data"]}


def _marketo_emails(environ: dict[str, str], emails: set[str]) -> set[str]:
    """Which of ``emails`` Marketo has as leads."""
    base = environ["MARKETO_BASE_URL"]
    token = httpx.get(
        f"{base}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": environ["MARKETO_CLIENT_ID"],
            "client_secret": environ["MARKETO_CLIENT_SECRET"],
        },
    ).json()["access_token"]
    answer = httpx.get(
        f"{base}/rest/v1/leads.json",
        params={"filterType": "email", "filterValues": ",".join(sorted(emails)), "fields": "email"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return {str(row["email"]).lower() for row in json.loads(answer.text)["result"] if row.get("email")}
