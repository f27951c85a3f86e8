"""Contract-test support: the vendors' spec files, sandboxes served from a thread, and OpenAPI checks of traffic.

The published spec files live beside the repository in ``../shared/specs``; every test that needs them skips,
saying so, where that folder is absent. Where a file cannot be used as published, :func:`load_spec` patches it in
memory and the reason is written next to the patch.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema_path import SchemaPath
from jsonschema_path.handlers import default_handlers as DEFAULT
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from closeloop.sandbox.kit import SandboxBase
from closeloop.sandbox.serve import serving
from tests import specs
from tests.specs import SPECS

needs_specs = specs.needs_specs()
ZOHO_OAS = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/"


# -- serving -----------------------------------------------------------------------------------------------
@contextmanager
def served_in_thread(name: str, sandbox: SandboxBase, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve one sandbox on 127.0.0.1 from a thread of its own (the vendors' clients block); yield its base URL."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with serving([(name, sandbox)], tls=tls) as listening:
            state["url"] = listening[0].base_url
            ready.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the test thread below
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name=f"sandbox-{name}", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if "url" not in state:
        raise RuntimeError(f"sandbox {name} did not start") from state.get("error")
    try:
        yield str(state["url"])
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=30)


def base_url_fixture(name: str) -> Any:
    """A module-scoped ``base_url`` fixture serving the module's ``sandbox`` fixture from a thread."""

    @pytest.fixture(scope="module")
    def base_url(sandbox: SandboxBase) -> Iterator[str]:
        with served_in_thread(name, sandbox) as url:
            yield url

    return base_url


# -- spec files --------------------------------------------------------------------------------------------
def _walk(node: Any, visit: Callable[[dict[str, Any]], Any]) -> Any:
    """Rebuild a JSON tree, letting ``visit`` replace any object (None keeps it and descends)."""
    if isinstance(node, list):
        return [_walk(item, visit) for item in node]
    if not isinstance(node, dict):
        return node
    replaced = visit(node)
    if replaced is not None:
        return replaced
    return {key: _walk(value, visit) for key, value in node.items()}


def _zoho_missing(node: dict[str, Any]) -> Any:
    # Zoho's files point at each other by their GitHub address. The ones copied into specs/ are read from there
    # (see _zoho_file); the others (users, tags, layouts, modules: only schemas nested in a record) accept any value.
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(ZOHO_OAS):
        return None
    return None if (SPECS / "zoho" / ref[len(ZOHO_OAS) :].partition("#")[0]).exists() else {}


def _zoho_file(uri: str) -> Any:
    """A Zoho spec file asked for by its GitHub address, read from specs/ instead (no network here)."""
    name = uri.partition("#")[0].rsplit("/", 1)[-1]
    return _patch_zoho(_walk(json.loads((SPECS / "zoho" / name).read_text()), _zoho_missing))


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a tree, outermost first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


def _schemas(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data.get("components", {}).get("schemas", {}))


def _patch_hubspot(data: dict[str, Any]) -> None:
    """Where HubSpot's documented behaviour is wider than its generated spec files."""
    schemas = _schemas(data)
    for schema in _objects(schemas):
        props = schema.get("properties")
        label = props.get("label") if isinstance(props, dict) else None
        if isinstance(label, dict) and label.get("type") == "string" and "typeId" in props:
            # An unlabelled association type comes back as "label": null (HubSpot's v4 guide shows it so).
            label["nullable"] = True
    for name in ("SimplePublicObject", "SimplePublicObjectWithAssociations"):
        if name in schemas:
            # A read asking for a property the record has no value for lists it as null, as HubSpot's reads do.
            schemas[name]["properties"]["properties"]["additionalProperties"]["nullable"] = True
    if "PublicObjectSearchRequest" in schemas:
        # The search guide's first page has no "after", and its sorts are {propertyName, direction} objects.
        search = schemas["PublicObjectSearchRequest"]
        search["required"] = [n for n in search["required"] if n not in ("after", "sorts")]
        search["properties"]["sorts"]["items"] = {}
    for name in ("SimplePublicObjectInputForCreate", "SimplePublicObjectBatchInputForCreate"):
        if name in schemas:
            # Records are created without associations in HubSpot's own create examples.
            schemas[name]["required"] = ["properties"]
    # The deals file names the object by its type id (0-3); HubSpot takes its name "deals" alike.
    data["paths"] = {path.replace("/objects/0-3", "/objects/deals"): item for path, item in data["paths"].items()}


def _patch_marketo(data: dict[str, Any]) -> None:
    """Where Marketo's documented behaviour is wider than its Swagger files."""
    for schema in _objects(_schemas(data)):
        value = schema.get("properties", {}).get("value") if isinstance(schema.get("properties"), dict) else None
        if isinstance(value, dict) and value.get("type") == "object" and "properties" not in value:
            # Generated from Java, where an attribute value typed Object is any JSON value (text, number, bool).
            value.pop("type")
    for name in ("ResponseOfActivity", "ResponseOfLeadChange", "ResponseOfDeletedLead"):
        if name in _schemas(data):
            # An activity page with nothing on it leaves "result" out; Marketo's clients check for it.
            _schemas(data)[name]["required"].remove("result")
    identity = data["paths"].get("/identity/oauth/token", {}).get("post")
    if identity:
        # The client credentials may come in a form body instead of the query string, where proxies log them.
        form = {p["name"]: p["schema"] for p in identity["parameters"]}
        for parameter in identity["parameters"]:
            parameter["required"] = False
        media = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": form}}}
        identity["requestBody"] = {"required": False, "content": media}


def _split_exception(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Zoho 200 answer whose body is oneOf [result, API_Exception], as (success answer, error answer)."""
    media = answer.get("content", {}).get("application/json", {})
    choices = media.get("schema", {}).get("oneOf", [])
    error = [c for c in choices if str(c.get("$ref", "")).endswith("/API_Exception")]
    if not error or len(choices) != 2:
        return answer, answer
    result = next(c for c in choices if c not in error)

    def with_schema(schema: dict[str, Any]) -> dict[str, Any]:
        return {**answer, "content": {"application/json": {**media, "schema": schema}}}

    return with_schema(result), with_schema(error[0])


def _patch_zoho(data: dict[str, Any]) -> Any:
    """Where Zoho's generated files are narrower than the answers Zoho documents."""
    for item in data.get("paths", {}).values():
        for operation in item.values():
            answers = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "200" in answers:
                # Each operation lists one body under 200: oneOf its result or API_Exception (which requires no
                # field, so it would match any answer). Zoho documents the result with 200, 201 (created) and
                # 202 (some records failed), the exception with 4xx, and 204 with no body when nothing matched.
                success, failure = _split_exception(answers["200"])
                answers.update({"200": success, "201": success, "202": success, "default": failure})
                answers.setdefault("204", {"description": "No Content"})

    def any_of(node: dict[str, Any]) -> Any:
        # Inside data[], an entry is a success or an error entry; neither requires a field, so oneOf would
        # see a valid entry match both.
        if "oneOf" in node:
            return {**{k: v for k, v in node.items() if k != "oneOf"}, "anyOf": _walk(node["oneOf"], any_of)}
        return None

    return _walk(data, any_of)


def _without_security_and_empty_content(data: dict[str, Any]) -> None:
    # Authentication is each sandbox's own business, tested on its own; openapi-core cannot check OAuth 2
    # schemes (it warns), and HubSpot's private-app scheme names a header its API does not read.
    data.pop("security", None)
    for item in data.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
                for answer in operation.get("responses", {}).values():
                    if answer.get("content") == {}:
                        answer.pop("content")  # "no content" as an empty map, which openapi-core reads as a body


@cache
def load_spec(vendor: str, file: str, base_url: str) -> OpenAPI:
    """One vendor spec file as openapi-core reads it, served at ``base_url`` (the sandbox's own host)."""
    path = SPECS / vendor / file
    data = json.loads(path.read_text())
    handlers: dict[str, Any] = {}
    if vendor == "marketo":
        data = swagger2_to_openapi3(data)  # openapi-core reads OpenAPI 3 only; Marketo publishes Swagger 2.0
        _patch_marketo(data)
    if vendor == "zoho":
        data = _patch_zoho(_walk(data, _zoho_missing))
        handlers = {"https": _zoho_file, "file": _zoho_file, "<all_urls>": _zoho_file}
    if vendor == "hubspot":
        _patch_hubspot(data)
    _without_security_and_empty_content(data)
    data["servers"] = [{"url": base_url}]
    # The spec files are not re-validated as documents: Zoho's would fetch its cross-file refs from GitHub.
    config = Config(spec_validator_cls=None)
    return OpenAPI(SchemaPath.from_dict(data, base_uri=path.as_uri(), handlers=handlers or DEFAULT), config=config)


# -- Swagger 2.0 -> OpenAPI 3.0 (what Marketo's file needs, nothing more) ----------------------------------
def _ref3(node: dict[str, Any]) -> Any:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        return {"$ref": "#/components/schemas/" + ref[len("#/definitions/") :]}
    return None


def _schema3(parameter: dict[str, Any]) -> dict[str, Any]:
    schema = {k: v for k, v in parameter.items() if k in ("type", "format", "items", "enum", "default")}
    if schema.get("type") == "file":
        schema = {"type": "string", "format": "binary"}  # Swagger 2's upload type, as OpenAPI 3 spells it
    return schema


def _parameter3(parameter: dict[str, Any]) -> dict[str, Any]:
    schema = _schema3(parameter)
    out: dict[str, Any] = {k: parameter[k] for k in ("name", "in", "required", "description") if k in parameter}
    out["schema"] = schema
    if parameter.get("type") == "array":
        # Marketo's files say collectionFormat multi (a repeated parameter) where their own descriptions, and
        # Marketo's examples, send one comma-separated value; the API takes both, and closeloop sends the latter.
        out["style"], out["explode"] = "form", False
    return out


def _operation3(operation: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in operation.items() if k not in ("parameters", "responses", "consumes", "produces")}
    parameters = operation.get("parameters", [])
    out["parameters"] = [_parameter3(p) for p in parameters if p.get("in") in ("query", "path", "header")]
    body = next((p for p in parameters if p.get("in") == "body"), None)
    form = [p for p in parameters if p.get("in") == "formData"]
    if body is not None:
        media = {"application/json": {"schema": body.get("schema", {})}}
        out["requestBody"] = {"required": bool(body.get("required")), "content": media}
    elif form:
        props = {p["name"]: _schema3(p) for p in form}
        media = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": props}}}
        out["requestBody"] = {"content": media}
    out["responses"] = {
        status: {
            "description": answer.get("description", ""),
            **({"content": {"application/json": {"schema": answer["schema"]}}} if "schema" in answer else {}),
        }
        for status, answer in operation.get("responses", {}).items()
    }
    return out


def swagger2_to_openapi3(data: dict[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 document as the equivalent OpenAPI 3.0 one (paths, parameters, bodies, definitions)."""
    paths = {
        path: {method: _operation3(op) for method, op in item.items() if method != "parameters"}
        for path, item in data.get("paths", {}).items()
    }
    converted = {
        "openapi": "3.0.3",
        "info": data.get("info", {"title": "converted", "version": "1"}),
        "paths": paths,
        "components": {"schemas": data.get("definitions", {})},
    }
    return dict(_walk(converted, _ref3))


# -- traffic -----------------------------------------------------------------------------------------------
@dataclass
class Exchange:
    """One request a connector sent and the sandbox's answer."""

    request: httpx.Request
    status: int
    headers: httpx.Headers
    body: bytes


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """An in-process transport that keeps every exchange for validation afterwards."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward to the sandbox and keep a copy of both sides."""
        await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append(Exchange(request, response.status_code, response.headers, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


class OpenAPIRequest:
    """An httpx request as openapi-core reads one."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        url = urlsplit(str(request.url))
        self.host_url, self.path = f"{url.scheme}://{url.netloc}", url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "application/json").split(";")[0]
        query = parse_qs(url.query, keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, values in query.items() for v in values]),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class OpenAPIResponse:
    """A recorded answer as openapi-core reads one."""

    def __init__(self, exchange: Exchange) -> None:
        self.status_code = exchange.status
        self.data: bytes | None = exchange.body
        self.headers = Headers(list(exchange.headers.items()))
        self.content_type = exchange.headers.get("content-type", "application/json").split(";")[0]


def check(spec: OpenAPI, exchange: Exchange, *, request_too: bool = True) -> list[str]:
    """What the spec finds wrong with one exchange (empty when it validates both ways)."""
    request = OpenAPIRequest(exchange.request)
    label = f"{exchange.request.method} {exchange.request.url.path} -> {exchange.status}"
    problems: list[str] = []
    if request_too:
        problems += [f"{label}: request: {e}" for e in _errors(lambda: spec.validate_request(request))]
    response = OpenAPIResponse(exchange)
    problems += [f"{label}: response: {e}" for e in _errors(lambda: spec.validate_response(request, response))]
    return problems


def _errors(run: Callable[[], Any]) -> list[str]:
    try:
        run()
    except Exception as exc:  # openapi-core raises one error that may carry a list of schema errors
        inner = getattr(exc, "schema_errors", None) or [getattr(exc, "__cause__", None)]
        details = "; ".join(str(getattr(e, "message", e))[:300] for e in inner if e is not None)
        return [f"{type(exc).__name__}: {exc} {details}".strip()]
    return []
