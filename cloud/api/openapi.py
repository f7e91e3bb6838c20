"""`GET /api/v1/openapi.json`: the hub's API as an OpenAPI 3.1 document (no token).

Derived, not written: the paths from the application's router, what each route takes and
answers from its row in cloud/api/routes_table.py, and the schemas from the pydantic
models of cloud/api/bodies (`$defs` become components/schemas), the same models the
handlers validate requests through. Path parameters come from the route itself. A route
the router serves with no row is still listed, marked `x-undocumented: true`, which
tests/cloud/test_openapi.py refuses: whoever adds a route adds its row.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from cloud.api.appkeys import VERSION
from cloud.api.auth import public
from cloud.api.bodies.common import Error
from cloud.api.routes_table import BY_KEY, Answer, Auth, Media, Route

PATH = "/api/v1/openapi.json"
API_PREFIX = "/api/v1/"
OPENAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://spec.openapis.org/oas/3.1/dialect/base"
REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
Operation = dict[str, Any]

STORE_READ: list[dict[str, list[str]]] = [{"storeToken": []}, {"merchantToken": []}]
SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "store": STORE_READ,
    "store_write": [{"storeToken": []}],
    "public": [],
    "platform": [{"platformSignature": []}],
    "payment": [{"paymentSignature": []}],
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "storeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A store's token (hub.yaml stores[].token): its agent posts and reads "
        "that store's data.",
    },
    "merchantToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A merchant's token (hub.yaml merchants[].token): reads the merchant's "
        "stores.",
    },
    "platformSignature": {
        "type": "apiKey",
        "in": "query",
        "name": "sign",
        "description": "Platform webhooks carry no token; each is signed as its platform "
        "documents it, with the app secret in hub.yaml platforms: Meituan `sig` "
        "(md5 of URL, sorted params and secret), Eleme `sign` and JD Daojia `sign` (md5 "
        "of the sorted params with the secret), Douyin the `event-sign` header (md5 of "
        "app key, body and secret). A push with a bad signature is answered 401 "
        "bad_signature; one whose signed timestamp (Meituan, Eleme, JD Daojia) is more than "
        "platforms.push_max_age_seconds (300) from the hub's clock 401 stale_push.",
    },
    "paymentSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Shopgate-Signature",
        "description": "A payment provider's notification: HMAC-SHA256 of the timestamp "
        "(header X-Shopgate-Timestamp) and the body under payments.notify_secret.",
    },
}


def add_routes(app: web.Application) -> None:
    app[_CACHE] = {}
    app.router.add_get(PATH, get_openapi)


_CACHE = web.AppKey("openapi_document", dict[str, Any])


@public
async def get_openapi(request: web.Request) -> web.Response:
    cache = request.app[_CACHE]
    if "doc" not in cache:  # the router is frozen once the application runs
        cache["doc"] = document(request.app)
    response = web.json_response(cache["doc"], headers={"Access-Control-Allow-Origin": "*"})
    response.enable_compression()
    return response


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema, without a title on every field (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def served_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route `app` serves, HEAD and catch-alls left out."""
    out = []
    for route in app.router.routes():
        method = route.method.upper()
        if method in ("HEAD", "*") or route.resource is None:
            continue
        out.append((method, route.resource.canonical, route.handler))
    return out


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every /api/v1 route of `app` (and other documented ones)."""
    paths: dict[str, dict[str, Any]] = {}
    documented: list[Route] = []
    for method, path, handler in served_routes(app):
        row = BY_KEY.get(f"{method} {path}")
        if row is None and not path.startswith(API_PREFIX):
            continue  # pages for people (/s/..., /c/..., /dashboard): not the API
        if row is None:
            op = _undocumented(method, path, handler)
        else:
            documented.append(row)
            op = {}
        paths.setdefault(path, {})[method.lower()] = op
    refs, schemas = _schemas(documented)
    for row in documented:
        paths[row.path][row.method.lower()] = _operation(row, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {
            "title": "shopgate hub API",
            "version": app.get(VERSION, "unknown"),
            "description": "The hub of shopgate stores: agents post events and take orders, "
            "merchants read their stores, delivery platforms push orders. Errors are "
            '`{"error": {"code", "message"}}`.',
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "This hub"}],
        "tags": [{"name": t} for t in sorted({row.tag for row in documented})],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
            "responses": {
                "Unauthorized": _error("No token, or one the hub does not know.", refs),
                "Forbidden": _error("The token may not do this for that store.", refs),
            },
        },
        "security": STORE_READ,
    }


_Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _schemas(rows: list[Route]) -> tuple[_Refs, dict[str, Any]]:
    """Each model's schema (a $ref where pydantic names it) and every named schema.
    Request bodies are described as validated, answers as serialised."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for row in rows:
        model = _model(row.body)
        if model is not None:
            wanted[(model, "validation")] = None
        for answer in row.responses.values():
            model = _model(answer)
            if model is not None:
                wanted[(model, "serialization")] = None
    found, top = models_json_schema(list(wanted), ref_template=REF, schema_generator=_Schemas)
    refs: _Refs = {key: found[key] for key in wanted}
    return refs, top.get("$defs", {})


def _model(answer: Answer | type[BaseModel] | Media | None) -> type[BaseModel] | None:
    if isinstance(answer, tuple):
        return answer[0]
    if isinstance(answer, Media):
        return answer.model
    if isinstance(answer, type):
        return answer
    return None


def _operation(row: Route, refs: _Refs) -> Operation:
    op: Operation = {"tags": [row.tag], "operationId": row.op_id, "summary": row.summary}
    if row.description:
        op["description"] = row.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(row.path)
    ]
    if row.query is not None:
        params += _query_params(row.query)
    if params:
        op["parameters"] = params
    if row.body is not None:
        op["requestBody"] = {"required": row.body_required, "content": _content(row.body, refs)}
    op["responses"] = {str(status): _answer(a, refs) for status, a in row.responses.items()}
    op["security"] = SECURITY[row.auth]
    if row.auth in ("store", "store_write"):
        op["responses"].setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
        if "{store}" in row.path:
            op["responses"].setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    return op | copy.deepcopy(row.extra)


def _content(body: type[BaseModel] | Media, refs: _Refs) -> dict[str, Any]:
    mode: JsonSchemaMode = "validation"
    if isinstance(body, Media):
        content = copy.deepcopy(body.content)
        if body.model is not None:
            content = {"application/json": {"schema": refs[(body.model, mode)]}, **content}
        return content
    return {"application/json": {"schema": refs[(body, mode)]}}


def _answer(answer: Answer, refs: _Refs) -> dict[str, Any]:
    if isinstance(answer, str):
        return _error(answer, refs)
    if isinstance(answer, Media):
        content = copy.deepcopy(answer.content)
        if answer.model is not None:
            schema = refs[(answer.model, "serialization")]
            content = {"application/json": {"schema": schema}, **content}
        return {"description": answer.description, "content": content}
    model, words = answer if isinstance(answer, tuple) else (answer, "")
    words = words or _first_line(model.__doc__) or "Success."
    schema = refs[(model, "serialization")]
    return {"description": words, "content": {"application/json": {"schema": schema}}}


def _error(description: str, refs: _Refs) -> dict[str, Any]:
    schema = refs[(Error, "serialization")]
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, schema_generator=_Schemas, mode="validation")
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        param: dict[str, Any] = {"name": name, "in": "query"}
        if "description" in prop:
            param["description"] = prop.pop("description")
        if name in required:
            param["required"] = True
        param["schema"] = prop
        out.append(param)
    return out


def _undocumented(method: str, path: str, handler: Any) -> Operation:
    doc = _first_line(getattr(handler, "__doc__", None))
    return {
        "summary": doc or f"{method} {path}",
        "operationId": f"{method.lower()}_{getattr(handler, '__name__', 'handler')}",
        "x-undocumented": True,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(path)
        ],
        "responses": {"default": {"description": "Any answer."}},
        "security": [] if handler_is_public(handler) else STORE_READ,
    }


def handler_is_public(handler: Any) -> bool:
    """Whether the auth middleware lets callers without a token in (cloud/api/auth.py)."""
    return bool(getattr(handler, "_shopgate_public", False))


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""
