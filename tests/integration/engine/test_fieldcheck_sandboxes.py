"""Mapped fields checked against the vendors' own describe: the Salesforce and HubSpot sandboxes, in-process.

The repository's mappings fit both sandboxes. A renamed HubSpot property, a read-only property the mapping writes
and a Salesforce picklist value the org does not have each refuse the run before a record is read or written,
with the mapping file's line and column; ``closeloop validate --online`` prints the same lines and exits 2.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.failures import FailureKind
from closeloop.engine.online import validate_online
from closeloop.engine.runtime import Engine
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store
from closeloop.store.rows import RunStatus

REPO = Path(__file__).resolve().parents[3]
CONFIG = """
state: {path: state.db}
systems:
  crm:
    connector: salesforce
    settings: {auth_flow: client_credentials, client_id: closeloop-sandbox, client_secret: closeloop-sandbox-secret,
               base_url: 'http://crm.test', auth_url: 'http://crm.test'}
  marketing:
    connector: hubspot
    settings: {access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test'}
connections:
  - name: crm-marketing
    systems: [crm, marketing]
    mappings: [mappings/contacts.yaml, mappings/deals.yaml]
    marketing_system: marketing
"""


@dataclass
class Setup:
    """The repository's mappings in a folder of their own, and the two sandboxes they run against."""

    folder: Path
    crm: SandboxBase
    marketing: SandboxBase

    @property
    def contacts(self) -> Path:
        return self.folder / "mappings" / "contacts.yaml"

    @property
    def deals(self) -> Path:
        return self.folder / "mappings" / "deals.yaml"

    def edit(self, old: str, new: str, mapping: Path | None = None) -> None:
        path = mapping or self.contacts
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {"crm": httpx.ASGITransport(app=self.crm), "marketing": httpx.ASGITransport(app=self.marketing)}

    def validate(self) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = validate_online(
            self.folder / "closeloop.yaml", environ={}, transports=self.transports(), out=out, err=err
        )
        return code, out.getvalue(), err.getvalue()

    async def sync(self) -> tuple[list[str], RunStatus | None]:
        """Run one cycle; the problems it refused with (as printed) and the run history's status of it."""
        config = load_config(self.folder / "closeloop.yaml", environ={})
        with Store.open(self.folder / "state.db") as store:
            async with Engine(config, store, transports=self.transports()) as engine:
                outcome = await engine.sync("crm-marketing")
            last = store.last_run("crm-marketing")
        assert (outcome.failure, outcome.exit_code) == (FailureKind.CONFIG, 2)
        assert last is not None
        assert last.failure == FailureKind.CONFIG.value
        return list(outcome.details), last.status

    def assert_no_record_read_or_written(self) -> None:
        """Only describing happened: the objects' fields, the Opportunity stages (one SOQL query) and the deal
        pipelines; a pull would have queried Contact, Lead and Opportunity and searched HubSpot."""
        calls = {f"crm {k}": v for k, v in self.crm.stats.calls.items()}
        calls |= {f"marketing {k}": v for k, v in self.marketing.stats.calls.items()}
        described = {k: v for k, v in calls.items() if not any(w in k for w in ("describe", "properties", "token"))}
        assert described == {
            "crm GET /services/data/{version}/query": 1,
            "marketing GET /crm/v3/pipelines/{object_type}": 1,
        }
        assert self.crm.stats.records_written == self.marketing.stats.records_written == 0


def where(path: Path, token: str, skip: int = 0) -> str:
    """``path:line:col`` of ``token`` (plus ``skip`` characters) in a mapping file, as the loader reports it."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if token in line and not line.lstrip().startswith("#"):
            return f"{path}:{number}:{line.index(token) + skip + 1}"
    raise AssertionError(f"{token!r} is not in {path}")


def make_setup(folder: Path, *, people: int, deals: int) -> Setup:
    """The repository's mappings copied into ``folder``; sandboxes seeded with half their people in common."""
    shutil.copytree(REPO / "config" / "mappings", folder / "mappings")
    (folder / "closeloop.yaml").write_text(CONFIG)
    installed = registry()
    crm = installed.get("salesforce").sandbox(seed=3, people=people, deals=deals)  # type: ignore[misc]
    marketing = installed.get("hubspot").sandbox(seed=3, people=people, deals=0, offset=people // 2)  # type: ignore[misc]
    crm.base_url, marketing.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm, marketing):
        box.knobs.enforce_limits = False
    return Setup(folder, crm, marketing)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path, people=6, deals=2)


def test_the_repository_mappings_fit_both_sandboxes(setup: Setup) -> None:
    code, out, err = setup.validate()
    assert (code, err) == (0, "")
    assert out.endswith("every mapped field fits the vendors' describe\n")


async def test_a_renamed_hubspot_property_refuses_the_run_before_any_record_is_read(setup: Setup) -> None:
    setup.edit("marketing: jobtitle,", "marketing: jobtitel,")
    expected = (
        f"{where(setup.contacts, 'jobtitel')}: field 'title': "
        "marketing contacts has no field 'jobtitel'; close names: 'jobtitle'"
    )
    problems, status = await setup.sync()
    assert problems == [expected]
    assert status is RunStatus.FAILED
    setup.assert_no_record_read_or_written()


def test_validate_online_prints_the_renamed_property_and_exits_2(setup: Setup) -> None:
    setup.edit("marketing: jobtitle,", "marketing: jobtitel,")
    code, out, err = setup.validate()
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{where(setup.contacts, 'jobtitel')}: field 'title': "
        "marketing contacts has no field 'jobtitel'; close names: 'jobtitle'",
        f"{setup.folder / 'closeloop.yaml'}: 1 problem; nothing was synced",
    ]


async def test_a_read_only_hubspot_property_the_mapping_writes_is_refused(setup: Setup) -> None:
    setup.edit("    policy: write-once\n", "    policy: two-way\n")
    (problem,) = (await setup.sync())[0]
    assert problem == (
        f"{where(setup.contacts, 'marketing: hs_analytics_source', 11)}: field 'original_source': "
        "'hs_analytics_source' of marketing contacts is read-only, "
        "but policy 'two-way' writes it from 'crm'; read it only (policy: 'marketing -> crm') or map a writable field"
    )
    setup.assert_no_record_read_or_written()


async def test_a_value_map_naming_a_stage_the_salesforce_org_does_not_have_is_refused(setup: Setup) -> None:
    setup.edit("crm: {Subscriber: subscriber,", "crm: {Subscriber: subscriber, Evangelist: evangelist,")
    (problem,) = (await setup.sync())[0]
    assert problem == (
        f"{where(setup.contacts, 'Evangelist')}: field 'lifecycle_stage': "
        "the value map of 'crm' names 'Evangelist', which "
        "'Status__c' of crm Contact does not allow; allowed: 'Subscriber', 'Lead', 'MQL', 'SQL', 'Opportunity' or "
        "'Customer'"
    )
    setup.assert_no_record_read_or_written()


def test_validate_online_with_a_refused_token_exits_2_naming_the_system(setup: Setup) -> None:
    config = setup.folder / "closeloop.yaml"
    config.write_text(config.read_text().replace("pat-na1-sandbox-3", "pat-na1-wrong-token"))
    code, out, err = setup.validate()
    assert (code, out) == (2, "")
    assert err.startswith(f"{config}: system 'marketing' could not describe 'contacts': AuthError: HTTP 401")
    assert "pat-na1-wrong-token" not in err


def test_validate_online_with_an_unreachable_system_exits_3(setup: Setup) -> None:
    config = setup.folder / "closeloop.yaml"
    config.write_text(
        config.read_text().replace("auth_url: 'http://crm.test'}", "auth_url: 'http://crm.test', max_attempts: 1}")
    )

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    out, err = io.StringIO(), io.StringIO()
    transports = {**setup.transports(), "crm": httpx.MockTransport(refuse)}
    code = validate_online(config, environ={}, transports=transports, out=out, err=err)
    assert (code, out.getvalue()) == (3, "")
    assert err.getvalue().startswith(f"{config}: system 'crm' cannot reach 'Contact': Unreachable: ")


async def test_a_hubspot_property_of_another_type_is_refused(setup: Setup) -> None:
    setup.edit("crm: Amount, marketing: amount,", "crm: Amount, marketing: dealname,", setup.deals)
    (problem,) = (await setup.sync())[0]
    assert problem == (
        f"{where(setup.deals, 'Amount, marketing: dealname', 19)}: field 'amount' has type 'decimal', "
        "but 'dealname' of marketing deals is a string "
        "field; types that fit it: 'string', 'email', 'phone', 'picklist', 'reference', 'id' or 'owner'"
    )
    setup.assert_no_record_read_or_written()
