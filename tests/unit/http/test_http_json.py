"""Request and response bodies go through orjson, with what the stdlib encoder accepted still accepted."""

from __future__ import annotations

import httpx
import orjson
import respx

from closeloop.http import decode_json
from closeloop.http.client import _encode_json


def test_a_json_body_is_sent_compact_with_its_content_type_and_other_headers_kept() -> None:
    sent = _encode_json({"json": {"inputs": [{"id": "1"}], 7: "int key"}, "headers": {"X-Trace": "t1"}})
    assert "json" not in sent
    assert orjson.loads(sent["content"]) == {"inputs": [{"id": "1"}], "7": "int key"}
    assert sent["headers"] == {"X-Trace": "t1", "Content-Type": "application/json"}
    assert _encode_json({"params": {"q": "x"}}) == {"params": {"q": "x"}}


@respx.mock
def test_a_response_body_decodes_and_an_empty_one_is_none() -> None:
    respx.get("https://vendor.test/a").mock(return_value=httpx.Response(200, content=b'{"results":[1,2]}'))
    respx.get("https://vendor.test/empty").mock(return_value=httpx.Response(204))
    with httpx.Client() as client:
        assert decode_json(client.get("https://vendor.test/a")) == {"results": [1, 2]}
        assert decode_json(client.get("https://vendor.test/empty")) is None
