"""Every shipped example pairing (config/examples/<crm>-<marketing>/) runs as a newcomer would run it.

The environment is exactly what ``closeloop sandbox`` prints for the two sandboxes (their ``credentials``, named
by :func:`env_name`); ``closeloop validate`` accepts the example with it; a first sync converges (the next one
writes nothing); and a person created through the CRM's API, in each object the mapping reads (Zoho and
Salesforce Leads included), reaches the marketing system at the next sync, and one created in the marketing
system reaches the CRM, where the mapping creates that way.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from ruamel.yaml import YAML

from closeloop.cli import main as cli_main
from closeloop.config import build_schemas
from closeloop.config.loader import load_config
from closeloop.config.models import EntityMapping, LoadedConfig
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.model import JSONValue, WriteOp, WriteRequest, WriteResult
from closeloop.sandbox.env import env_name
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "config" / "examples"
PAIRINGS = sorted(path.name for path in EXAMPLES.iterdir() if (path / "closeloop.yaml").exists())
CONNECTION = "crm-marketing"
REFERENCE = re.compile(r"\$\{(\w+)(:-[^}]*)?\}")


def test_every_pairing_has_an_example() -> None:
    crms, marketing = ("salesforce", "zoho", "hubspot"), ("hubspot", "marketo", "pardot")
    expected = sorted(f"{crm}-{mkt}" for crm in crms for mkt in marketing if crm != mkt)
    assert expected == PAIRINGS


COPIES = {
    "salesforce-hubspot/contacts.yaml": "mappings/contacts.yaml",
    "salesforce-hubspot/deals.yaml": "mappings/deals.yaml",
    **{f"{crm}-pardot/{kind}.yaml": f"mappings/pardot/{crm}-{kind}.yaml" for crm in ("salesforce", "zoho", "hubspot")
       for kind in ("contacts", "deals")},
}  # fmt: skip


@pytest.mark.parametrize(("example", "shipped"), COPIES.items())
def test_example_mapping_is_the_shipped_one(example: str, shipped: str) -> None:
    """Where config/mappings already ships a pairing's mapping, the example is that file (but its schema path)."""
    copy = (EXAMPLES / example).read_text(encoding="utf-8").splitlines()[1:]
    assert copy == (EXAMPLES.parent / shipped).read_text(encoding="utf-8").splitlines()[1:]


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_example_reads_settings_from_the_variables_the_sandbox_prints(pairing: str, tmp_path: Path) -> None:
    """Each setting read from the environment is <CONNECTOR>_<SETTING>; those without a default are printed."""
    document = YAML(typ="safe").load(EXAMPLES / pairing / "closeloop.yaml")
    for system in document["systems"].values():
        connector = system["connector"]
        box = registry().get(connector).sandbox(seed=1)  # type: ignore[misc]
        printed = {env_name(connector, setting) for setting in box.credentials(tmp_path)}
        for setting, value in system["settings"].items():
            for name, default in REFERENCE.findall(str(value)):
                assert name == env_name(connector, setting), f"{pairing}: {setting} reads {name}"
                assert default or name in printed, f"{pairing}: closeloop sandbox does not print {name}"


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_closeloop_validate_accepts_the_example_with_the_sandbox_environment(
    pairing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    crm, mkt = pairing.split("-")
    boxes = {system: registry().get(name).sandbox(seed=1) for system, name in (("crm", crm), ("marketing", mkt))}  # type: ignore[misc]
    for name, value in sandbox_environment(boxes, {"crm": crm, "marketing": mkt}, tmp_path).items():
        monkeypatch.setenv(name, value)
    assert cli_main(["validate", "--config", str(EXAMPLES / pairing / "closeloop.yaml")]) == 0, capsys.readouterr()
    assert "closeloop.yaml: ok" in capsys.readouterr().out


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_example_files_match_the_json_schemas_and_its_readme_names_every_variable(pairing: str) -> None:
    folder = EXAMPLES / pairing
    schemas = build_schemas()
    document = YAML(typ="safe").load(folder / "closeloop.yaml")
    jsonschema.validate(json.loads(json.dumps(document)), schemas["closeloop"])
    for name in document["connections"][0]["mappings"]:
        jsonschema.validate(json.loads(json.dumps(YAML(typ="safe").load(folder / name))), schemas["mapping"])
    settings = json.dumps(document["systems"])
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert [name for name, _ in REFERENCE.findall(settings) if f"`{name}`" not in readme] == []
    assert f"closeloop sandbox --vendor {pairing.replace('-', ' --vendor ')}" in readme


@dataclass
class Run:
    """One example pointed at two seeded in-process sandboxes, and an engine syncing them."""

    config: LoadedConfig
    boxes: dict[str, SandboxBase]
    engine: Engine
    store: Store

    def writes(self) -> int:
        return sum(box.stats.records_written for box in self.boxes.values())

    def contacts(self) -> EntityMapping:
        return next(m for m in self.config.connection(CONNECTION).mappings if m.entity.value == "contact")


def sandbox_environment(boxes: dict[str, SandboxBase], connectors: dict[str, str], files: Path) -> dict[str, str]:
    """The variables ``closeloop sandbox`` prints for these sandboxes."""
    return {
        env_name(connectors[system], setting): value
        for system, box in boxes.items()
        for setting, value in box.credentials(files).items()
    }


@pytest.fixture(params=PAIRINGS)
async def run(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Run]:
    crm, mkt = str(request.param).split("-")
    installed = registry()
    boxes: dict[str, SandboxBase] = {
        "crm": installed.get(crm).sandbox(seed=5, people=6, deals=3, leads=2, offset=0),  # type: ignore[misc]
        "marketing": installed.get(mkt).sandbox(seed=5, people=6, deals=0, leads=0, offset=3),  # type: ignore[misc]
    }
    for system, box in boxes.items():
        box.base_url = f"http://{system}.test"
        box.knobs.enforce_limits = False
    environ = sandbox_environment(boxes, {"crm": crm, "marketing": mkt}, tmp_path / "keys")
    path = EXAMPLES / str(request.param) / "closeloop.yaml"
    config = load_config(path, installed, environ)
    store = Store.open(tmp_path / "state.db")
    transports = {system: httpx.ASGITransport(app=box) for system, box in boxes.items()}
    engine = Engine(config, store, transports=transports)
    yield Run(config, boxes, engine, store)
    await engine.aclose()
    store.close()


def _emails(run: Run, system: str) -> set[str]:
    mapping = run.contacts()
    found = set()
    for obj in mapping.systems[system].objects:
        field = mapping.fields["email"].native[system][obj]
        rows = run.boxes[system].table(obj).live()
        found |= {str(row.fields[field]).lower() for row in rows if row.fields.get(field)}
    return found


async def _create_person(run: Run, system: str, obj: str, email: str) -> str:
    """A person made through the vendor's own API, as a user's entry would be; returns its id.

    The values are canonical and go through the example's own field names and picklist values, the lifecycle
    stage a customer's (so a create rule that filters on it lets the person through).
    """
    mapping = run.contacts()
    values = {
        "email": email,
        "first_name": "Newcomer",
        "last_name": "Example",
        "company": "Example Ltd",
        "lifecycle_stage": "customer",
    }
    fields: dict[str, JSONValue] = {}
    for name, value in values.items():
        spec = mapping.fields.get(name)
        native = spec.native.get(system, {}).get(obj) if spec else None
        if spec is None or native is None:
            continue
        picklist = spec.values.get(system)
        fields[native] = next((k for k, v in picklist.items() if v == value), value) if picklist else value
    (result,) = await run.engine.connector(system).write(obj, [WriteRequest("new", WriteOp.CREATE, fields)])
    assert result.ok, result.error
    assert result.native_id
    return result.native_id


async def test_first_sync_converges(run: Run) -> None:
    first = await run.engine.sync(CONNECTION)
    assert first.status.value == "ok", run.store.list_quarantine()
    sent = _record_writes(run)
    second = await run.engine.sync(CONNECTION)
    assert second.status.value == "ok", run.store.list_quarantine()
    # What the second sync may still write: the partner ids of the records the first one created (known only
    # once the vendor answered the create), and the owners the CRM assigned to the people created there without
    # one (its default owner, read back with the create's echo); nothing else.
    mappings = run.config.connection(CONNECTION).mappings
    partner_fields = {objects.partner_id for mapping in mappings for objects in mapping.systems.values()}
    owner_fields = {
        name
        for mapping in mappings
        for spec in mapping.fields.values()
        if spec.type.value == "owner"
        for objects in spec.native.values()
        for name in objects.values()
    }
    assert {name for fields in sent for name in fields} <= partner_fields | owner_fields, sent
    written = run.writes()
    third = await run.engine.sync(CONNECTION)
    assert third.status.value == "ok", run.store.list_quarantine()
    assert run.writes() == written, {k: v for k, v in third.counts.items() if ":" not in k}
    if any((rule.source, rule.target) == ("crm", "marketing") for rule in run.contacts().create):
        assert _emails(run, "crm") <= _emails(run, "marketing"), "every seeded Contact and Lead is on the other side"


def _record_writes(run: Run) -> list[dict[str, object]]:
    """The fields of every write request the engine sends from now on (the connectors still send them)."""
    sent: list[dict[str, object]] = []
    for system in run.boxes:
        connector = run.engine.connector(system)
        send = connector.write

        async def recorded(obj: str, batch: Sequence[WriteRequest], send: Any = send) -> list[WriteResult]:
            sent.extend(dict(request.fields) for request in batch)
            return list(await send(obj, batch))

        connector.write = recorded  # type: ignore[method-assign]  # an observing wrapper, the real write still runs
    return sent


async def test_created_person_reaches_the_other_side(run: Run) -> None:
    await run.engine.sync(CONNECTION)
    mapping = run.contacts()
    directions = {(rule.source, rule.target) for rule in mapping.create}
    made = [f"made-in-{obj.lower()}@example.org" for obj in mapping.systems["crm"].objects]
    if ("crm", "marketing") in directions:
        for obj, email in zip(mapping.systems["crm"].objects, made, strict=True):
            await _create_person(run, "crm", obj, email)
    if ("marketing", "crm") in directions:
        await _create_person(run, "marketing", mapping.systems["marketing"].objects[0], "made-in-marketing@example.org")
    only_crm = sorted(_emails(run, "crm") - _emails(run, "marketing"))
    if not directions:  # closed loop only (Salesforce with Account Engagement): a person made on both sides links
        prospect = await _create_person(run, "marketing", mapping.systems["marketing"].objects[0], only_crm[0])
    outcome = await run.engine.sync(CONNECTION)
    assert outcome.status.value == "ok", run.store.list_quarantine()
    if ("crm", "marketing") in directions:
        assert set(made) <= _emails(run, "marketing"), f"made in the CRM's {mapping.systems['crm'].objects}"
    if ("marketing", "crm") in directions:
        assert "made-in-marketing@example.org" in _emails(run, "crm")
    if not directions:
        link = run.store.get_link("marketing", mapping.systems["marketing"].objects[0], prospect)
        assert link is not None
        assert {other.system for other in run.store.links_of(link.golden_id)} == {"crm", "marketing"}
