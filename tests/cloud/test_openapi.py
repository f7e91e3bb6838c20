"""`GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document, derived from the route table
(cloud/api/routes_table.py) and the body models (cloud/api/bodies), that lists every
/api/v1 route the hub serves, documented (a route added without its row fails here, and
so does a row for a route the hub does not serve), and whose schemas are what the hub
really answers.

The document is checked by openapi-spec-validator (the OpenAPI Initiative's 3.1 schema)
and, for the rules a reader relies on that the schema cannot say, by hand: path templates
matching declared path parameters, unique operation ids, every $ref resolving, every
security requirement naming a declared scheme.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cloud.api.openapi import handler_is_public, served_routes
from cloud.api.routes_table import ROUTES
from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from tests.support.api_shapes import assert_documented, problems

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SCHEMA_TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}
PARAM_IN = {"query", "header", "path", "cookie"}
STATUS = re.compile(r"^([1-5][0-9][0-9]|[1-5]XX|default)$")
TEMPLATE = re.compile(r"\{([^}]+)\}")
SCHEMA_KEYWORDS = {
    "$ref", "$schema", "$id", "$defs", "$comment", "type", "enum", "const", "format",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "properties", "required", "additionalProperties", "patternProperties", "items",
    "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
    "pattern", "oneOf", "anyOf", "allOf", "not", "if", "then", "else", "minProperties",
    "maxProperties", "propertyNames", "dependentRequired", "contentMediaType",
    "contentEncoding", "discriminator", "xml", "externalDocs", "example",
}  # fmt: skip


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[TestClient]:
    cfg = HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},
            "stores": [{"id": "demo-001", "token": "tok-store-one-0123456789abcdef"}],
        }
    )
    db = await Database.open(str(tmp_path / "hub" / "hub.db"))
    await sync_principals(db, cfg.stores, cfg.merchants)
    try:
        client = TestClient(TestServer(create_app(cfg, db)))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()
    finally:
        await db.close()


async def fetch(client: TestClient) -> dict[str, Any]:
    async with client.get("/api/v1/openapi.json") as resp:  # no token
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


def served_api_routes(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method not in ("HEAD", "*")
    }


async def test_every_api_route_is_in_the_document_and_documented(app_client: TestClient) -> None:
    doc = await fetch(app_client)
    assert app_client.app is not None
    served = served_api_routes(app_client.app)
    assert ("get", "/api/v1/stores/{store}/events") in served  # the test sees the real router
    listed = {(m, p) for p, item in doc["paths"].items() for m in item if m in METHODS}
    assert served <= listed, sorted(served - listed)
    undocumented = sorted(
        f"{m.upper()} {p}" for m, p in served if doc["paths"][p][m].get("x-undocumented")
    )
    assert undocumented == [], "add a row for each to cloud/api/routes_table.py"
    for method, path in served:
        op = doc["paths"][path][method]
        assert op["summary"].strip(), (method, path)
        assert any(code.startswith("2") for code in op["responses"]), (method, path)


async def test_the_document_is_valid_openapi_3_1(app_client: TestClient) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    doc = await fetch(app_client)
    assert openapi_problems(doc) == []
    try:  # and by the OpenAPI Initiative's own 3.1 schema
        validate(doc)
    except OpenAPIValidationError as e:
        pytest.fail(f"not valid OpenAPI 3.1: {e.message} at {list(e.absolute_path)}")


async def test_every_row_of_the_table_is_a_route_the_hub_serves(app_client: TestClient) -> None:
    assert app_client.app is not None
    served = {f"{method} {path}" for method, path, _ in served_routes(app_client.app)}
    assert "POST /api/v1/stores/{store}/events" in served
    stale = sorted(route.key for route in ROUTES if route.key not in served)
    assert stale == [], "these rows of cloud/api/routes_table.py name no route the hub serves"
    doc = await fetch(app_client)
    listed = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    assert {route.key for route in ROUTES} <= listed


async def test_the_table_needs_a_token_exactly_where_the_handler_does(
    app_client: TestClient,
) -> None:
    """The document's security is the table's; the auth middleware follows the handler's
    @public mark. The two must say the same, or the document lies about who may call."""
    assert app_client.app is not None
    handlers = {f"{m} {p}": h for m, p, h in served_routes(app_client.app)}
    wrong = [
        (route.key, route.auth)
        for route in ROUTES
        if handler_is_public(handlers[route.key])
        != (route.auth in ("public", "platform", "payment"))
    ]
    assert wrong == []


async def test_security_follows_the_handlers(app_client: TestClient) -> None:
    doc = await fetch(app_client)
    paths = doc["paths"]
    assert paths["/api/v1/openapi.json"]["get"]["security"] == []
    assert paths["/api/v1/platforms/{platform}/push"]["post"]["security"] == [
        {"platformSignature": []}
    ]
    post_events = paths["/api/v1/stores/{store}/events"]["post"]
    assert post_events["security"] == [{"storeToken": []}]
    assert {"401", "403"} <= set(post_events["responses"])
    schemes = doc["components"]["securitySchemes"]
    assert schemes["storeToken"] == schemes["storeToken"] | {"type": "http", "scheme": "bearer"}
    assert schemes["merchantToken"]["scheme"] == "bearer"


async def test_an_undocumented_route_is_caught(app_client: TestClient, tmp_path: Path) -> None:
    """The check above can fail: a route with no words is listed and marked."""
    from cloud.api.openapi import document

    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        """Something new."""
        return web.json_response({})

    app.router.add_get("/api/v1/stores/{store}/new-thing", handler)
    doc = document(app)
    op = doc["paths"]["/api/v1/stores/{store}/new-thing"]["get"]
    assert op["x-undocumented"] is True and op["summary"] == "Something new."
    assert openapi_problems(doc) == []  # still a valid document, just not a documented one


TOKEN = {"Authorization": "Bearer tok-store-one-0123456789abcdef"}
S = "/api/v1/stores/{store}"
BARCODE = "4006381333931"


async def test_the_hubs_real_answers_are_what_the_document_says(app_client: TestClient) -> None:
    """Each answer checked against its route's documented schema, closed: a field the hub
    sends that the models do not name fails, as does one missing or of another type."""

    async def call(method: str, template: str, body: Any = None, **path: str) -> int:
        url = template.format(store="demo-001", **path)
        async with app_client.request(method, url, json=body, headers=TOKEN) as resp:
            answer = await resp.json()
        assert_documented(method, template, resp.status, answer)
        return resp.status

    event = {
        "id": "01J000000000000000000000A1",
        "store": "demo-001",
        "seq": 1,
        "ts": "2026-03-01T08:00:00.123Z",
        "type": "door.opened",
        "data": {"door": "front"},
    }
    assert await call("POST", S + "/events", {"events": [event, event]}) == 200
    assert await call("GET", S + "/events") == 200
    assert await call("GET", S + "/orders") == 200
    product = {"barcode": BARCODE, "name": "可乐", "price": 3.5, "low_stock": 2}
    assert await call("POST", S + "/catalog", {"products": [product]}) == 200
    assert await call("GET", S + "/catalog") == 200
    assert await call("PUT", S + "/catalog/{barcode}", product, barcode=BARCODE) == 200
    assert await call("GET", S + "/catalog/{barcode}", barcode=BARCODE) == 200
    assert await call("POST", S + "/stock/{barcode}", {"qty": 12}, barcode=BARCODE) == 200
    again = {"delta": 1, "key": "sheet-7"}
    assert await call("POST", S + "/stock/{barcode}", again, barcode=BARCODE) == 200
    assert await call("POST", S + "/stock/{barcode}", again, barcode=BARCODE) == 200
    assert await call("GET", S + "/stock") == 200
    assert await call("GET", S + "/stock/{barcode}", barcode=BARCODE) == 200
    assert await call("GET", S + "/stock-push") == 200
    sku = {"platform": "meituan", "sku": "m-1", "barcode": BARCODE}
    assert await call("POST", S + "/skus", {"skus": [sku]}) == 200
    assert await call("GET", S + "/skus") == 200
    # Refusals are the API's error object, naming the field.
    assert await call("POST", S + "/stock/{barcode}", {"delta": "1"}, barcode=BARCODE) == 400
    assert await call("POST", S + "/catalog", {"products": [{"barcode": "1"}]}) == 400
    assert await call("GET", "/healthz") == 200


def test_the_shape_check_can_fail() -> None:
    """The check above is not vacuous: an extra, a missing and a mistyped field are caught."""
    good = {"accepted": 1, "duplicates": 0}
    assert problems("POST", S + "/events", 200, good) == []
    assert problems("POST", S + "/events", 200, good | {"secret": 1})
    assert problems("POST", S + "/events", 200, {"accepted": 1})
    assert problems("POST", S + "/events", 200, {"accepted": "1", "duplicates": 0})
    assert problems("POST", S + "/events", 299, good)


def test_the_checks_catch_a_broken_document() -> None:
    broken = {
        "openapi": "3.0.0",
        "info": {"title": "x"},
        "paths": {
            "/a/{id}": {
                "get": {
                    "operationId": "same",
                    "responses": {"200": {}, "299x": {"description": "?"}},
                    "security": [{"nope": []}],
                },
                "post": {
                    "operationId": "same",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "bogus",
                                        "$ref": "#/components/schemas/Missing",
                                    }
                                }
                            },
                        }
                    },
                    "parameters": [{"name": "id", "in": "path"}],
                },
            }
        },
    }
    problems = "\n".join(openapi_problems(broken))
    for expected in (
        "openapi must be 3.1.x",
        "info.version",
        "path parameter 'id' is not declared",
        "duplicate operationId 'same'",
        "no description",
        "bad response key '299x'",
        "unknown security scheme 'nope'",
        "unknown type 'bogus'",
        "unresolved $ref #/components/schemas/Missing",
        "must be required: true",
    ):
        assert expected in problems, expected


# -- the checks --------------------------------------------------------------------------


def openapi_problems(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))):
        out.append("openapi must be 3.1.x")
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str):
        out.append("info.title is required")
    if not isinstance(info, dict) or not isinstance(info.get("version"), str):
        out.append("info.version is required")
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    for name, scheme in schemes.items():
        out += _scheme_problems(name, scheme)
    out += _security_problems("security", doc.get("security", []), schemes)
    op_ids: set[str] = set()
    for path, item in (doc.get("paths") or {}).items():
        if not path.startswith("/"):
            out.append(f"path {path!r} must start with /")
        templated = set(TEMPLATE.findall(path))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            if method not in METHODS:
                if method not in ("summary", "description", "servers", "parameters", "$ref"):
                    out.append(f"{where}: unknown key")
                continue
            op_id = op.get("operationId")
            if op_id is not None:
                if op_id in op_ids:
                    out.append(f"{where}: duplicate operationId {op_id!r}")
                op_ids.add(op_id)
            params = op.get("parameters", []) + item.get("parameters", [])
            declared = set()
            seen: set[tuple[str, str]] = set()
            for p in params:
                if p.get("in") not in PARAM_IN or not isinstance(p.get("name"), str):
                    out.append(f"{where}: a parameter needs name and in")
                    continue
                if (p["name"], p["in"]) in seen:
                    out.append(f"{where}: parameter {p['name']!r} twice")
                seen.add((p["name"], p["in"]))
                if p["in"] == "path":
                    declared.add(p["name"])
                    if p.get("required") is not True:
                        out.append(f"{where}: path parameter {p['name']!r} must be required: true")
                if ("schema" in p) == ("content" in p):
                    out.append(f"{where}: parameter {p['name']!r} needs schema or content")
                out += _schema_problems(f"{where} {p['name']}", p.get("schema", {}), doc)
            for name in templated - declared:
                out.append(f"{where}: path parameter {name!r} is not declared")
            for name in declared - templated:
                out.append(f"{where}: path parameter {name!r} is not in the path")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                out.append(f"{where}: responses are required")
                responses = {}
            for code, response in responses.items():
                if not STATUS.match(str(code)):
                    out.append(f"{where}: bad response key {code!r}")
                if "$ref" in response:
                    out += _ref_problems(where, response["$ref"], doc)
                    continue
                if not isinstance(response.get("description"), str):
                    out.append(f"{where} {code}: no description")
                out += _content_problems(f"{where} {code}", response.get("content", {}), doc)
            body = op.get("requestBody")
            if body is not None:
                if not isinstance(body.get("content"), dict) or not body["content"]:
                    out.append(f"{where}: requestBody needs content")
                out += _content_problems(f"{where} body", body.get("content", {}), doc)
            out += _security_problems(where, op.get("security", []), schemes)
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        out += _schema_problems(f"schema {name}", schema, doc)
    return out


def _scheme_problems(name: str, scheme: dict[str, Any]) -> list[str]:
    kind = scheme.get("type")
    if kind == "http":
        return [] if isinstance(scheme.get("scheme"), str) else [f"{name}: http needs scheme"]
    if kind == "apiKey":
        ok = isinstance(scheme.get("name"), str) and scheme.get("in") in (
            "query",
            "header",
            "cookie",
        )
        return [] if ok else [f"{name}: apiKey needs name and in"]
    if kind in ("mutualTLS", "oauth2", "openIdConnect"):
        return []
    return [f"{name}: unknown security scheme type {kind!r}"]


def _security_problems(where: str, security: Any, schemes: dict[str, Any]) -> list[str]:
    if not isinstance(security, list):
        return [f"{where}: security must be a list"]
    return [
        f"{where}: unknown security scheme {name!r}"
        for requirement in security
        for name in requirement
        if name not in schemes
    ]


def _content_problems(where: str, content: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    out = []
    for media, body in content.items():
        if "/" not in media:
            out.append(f"{where}: bad media type {media!r}")
        out += _schema_problems(f"{where} {media}", body.get("schema", {}), doc)
    return out


def _ref_problems(where: str, ref: str, doc: dict[str, Any]) -> list[str]:
    if not ref.startswith("#/"):
        return [f"{where}: only local $refs are used here, got {ref}"]
    node: Any = doc
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return [f"{where}: unresolved $ref {ref}"]
        node = node[part]
    return []


def _schema_problems(where: str, schema: Any, doc: dict[str, Any]) -> list[str]:
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be an object"]
    out = []
    for key in schema:
        if key not in SCHEMA_KEYWORDS and not key.startswith("x-"):
            out.append(f"{where}: unknown schema keyword {key!r}")
    if "$ref" in schema:
        out += _ref_problems(where, schema["$ref"], doc)
    types = schema.get("type")
    for t in types if isinstance(types, list) else [types] if types is not None else []:
        if t not in SCHEMA_TYPES:
            out.append(f"{where}: unknown type {t!r}")
    if "required" in schema and not (
        isinstance(schema["required"], list) and all(isinstance(r, str) for r in schema["required"])
    ):
        out.append(f"{where}: required must be a list of names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        out.append(f"{where}: enum must be a list")
    if "examples" in schema and not isinstance(schema["examples"], list):
        out.append(f"{where}: examples must be a list (JSON Schema 2020-12)")
    for name, sub in (schema.get("properties") or {}).items():
        out += _schema_problems(f"{where}.{name}", sub, doc)
    for key in ("items", "additionalProperties", "not", "contains"):
        if key in schema:
            out += _schema_problems(f"{where}[{key}]", schema[key], doc)
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            out += _schema_problems(f"{where}.{key}[{i}]", sub, doc)
    return out
