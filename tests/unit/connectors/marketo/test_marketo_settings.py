"""A Marketo system needs a host: its munchkin id or a base URL, refused at validate time when it has neither."""

from __future__ import annotations

import pytest
from closeloop_connectors.marketo.settings import MarketoSettings
from pydantic import ValidationError

CREDENTIALS = {"client_id": "id", "client_secret": "secret"}


@pytest.mark.parametrize(
    ("host", "api_url"),
    [
        ({"munchkin_id": "123-ABC-456"}, "https://123-ABC-456.mktorest.com"),
        ({"base_url": "http://127.0.0.1:8701/"}, "http://127.0.0.1:8701"),
        ({"munchkin_id": "", "base_url": "http://127.0.0.1:8701"}, "http://127.0.0.1:8701"),
    ],
    ids=["munchkin id", "base url", "empty munchkin id beside a base url"],
)
def test_either_host_is_enough(host: dict[str, str], api_url: str) -> None:
    assert MarketoSettings(**CREDENTIALS, **host).api_url == api_url


@pytest.mark.parametrize("host", [{}, {"munchkin_id": "", "base_url": ""}], ids=["unset", "both empty"])
def test_no_host_is_refused_with_what_to_set(host: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=r"set munchkin_id .* or base_url"):
        MarketoSettings(**CREDENTIALS, **host)
