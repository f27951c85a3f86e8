"""Fixtures for configuration tests: throwaway connector plugins and small config trees on disk."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from pydantic import SecretStr

from closeloop.config import check_config
from closeloop.connector import ConnectorContext, ConnectorPlugin, Registry, SystemSettings


class CrmSettings(SystemSettings):
    """Settings of the throwaway CRM plugin."""

    client_id: str
    client_secret: SecretStr


class MarketingSettings(SystemSettings):
    """Settings of the throwaway marketing plugin."""

    token: SecretStr


def _never(context: ConnectorContext) -> object:
    raise AssertionError("config tests never create connectors")


def make_registry(crm: str = "fakecrm", marketing: str = "fakemkt") -> Registry:
    """A registry of two throwaway plugins, independent of the vendor packages."""
    crm_objects = {"Contact": "contact", "Lead": "contact", "Opportunity": "deal"}
    mkt_objects = {"contacts": "contact", "deals": "deal"}
    return Registry(
        plugins={
            crm: ConnectorPlugin(crm, CrmSettings, _never, crm_objects),  # type: ignore[arg-type]
            marketing: ConnectorPlugin(marketing, MarketingSettings, _never, mkt_objects),  # type: ignore[arg-type]
        }
    )


CONFIG = """\
state: {path: ./state.db}
systems:
  crm:
    connector: fakecrm
    settings: {client_id: abc, client_secret: "${CRM_SECRET:-default-secret}"}
  marketing:
    connector: fakemkt
    settings: {token: "${MKT_TOKEN}"}
connections:
  - name: sync
    systems: [crm, marketing]
    mappings: [contacts.yaml]
    schedule: {every: 60s}
    lookback: 10m
    marketing_system: marketing
loop:
  base_currency: USD
  rates: {EUR: "1.08"}
"""

CONTACTS = """\
entity: contact
systems:
  crm: {objects: [Contact, Lead], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts]}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  stage: {type: picklist, crm: Status__c, marketing: lifecyclestage, values: {marketing: {mql: mql, customer: won}}}
create: {crm -> marketing: all}
on_delete: unlink
"""

DEALS = """\
entity: deal
systems:
  crm: {objects: [Opportunity]}
  marketing: {objects: [deals]}
fields:
  amount: {type: decimal, crm: Amount, marketing: amount}
"""

ENV = {"MKT_TOKEN": "mkt-token-value-123"}

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a config tree (closeloop.yaml, contacts.yaml, deals.yaml, extras) and return the config path."""

    def _write(config: str = CONFIG, contacts: str = CONTACTS, deals: str = DEALS, **extra: str) -> Path:
        files = {"closeloop.yaml": config, "contacts.yaml": contacts, "deals.yaml": deals}
        files.update({name.replace("__", "."): text for name, text in extra.items()})
        for name, text in files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        return tmp_path / "closeloop.yaml"

    return _write


Check = Callable[..., list[str]]


@pytest.fixture
def problems_of(write: Write, tmp_path: Path) -> Check:
    """Problems of a config tree as ``file:line:col: message`` strings with the folder stripped."""

    def _check(environ: Mapping[str, str] = ENV, **texts: str) -> list[str]:
        config, problems = check_config(write(**texts), make_registry(), environ)
        assert (config is None) == bool(problems)
        return [str(p).removeprefix(f"{tmp_path}/") for p in problems]

    return _check


@pytest.fixture
def registry_named() -> Callable[[str, str], Registry]:
    """A factory of throwaway registries whose two plugins carry the given names."""
    return make_registry
