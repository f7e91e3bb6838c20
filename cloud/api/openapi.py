"""`GET /api/v1/openapi.json`: the hub's API as an OpenAPI 3.1 document (no token).

Generated from the application's router, so every `/api/v1/...` route that is served is
listed, with what is written about it:

- here, in OPERATIONS (the routes of the modules that came first), keyed
  `"METHOD /path"` as aiohttp spells the path (`/api/v1/stores/{store}/events`);
- or in the handler's own module, as a module-level `OPENAPI` dict with the same keys
  (and `OPENAPI_SCHEMAS` for its component schemas): the way for a new API module to
  document its routes next to them. The module's words win over these.

Each operation gives a summary, its query parameters, request body and responses;
path parameters come from the route itself, and the security from the handler (a
`@public` handler needs no token; the others take a store's or a merchant's bearer
token). A route nobody documented is still listed, marked `x-undocumented: true`, which
tests/cloud/test_openapi.py refuses: whoever adds a route documents it.
"""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

from aiohttp import web

from cloud.api.appkeys import VERSION
from cloud.api.auth import public
from cloud.api.openapi_ops import OPERATIONS, SCHEMAS, SECURITY_SCHEMES, STORE_READ, error_response

PATH = "/api/v1/openapi.json"
API_PREFIX = "/api/v1/"
OPENAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://spec.openapis.org/oas/3.1/dialect/base"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_PUBLIC = "_shopgate_public"
Operation = dict[str, Any]


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


def documented_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every /api/v1 route of `app` (and other documented ones)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas = copy.deepcopy(SCHEMAS)
    for route in app.router.routes():
        method = route.method.upper()
        if method in ("HEAD", "*") or route.resource is None:
            continue
        path = route.resource.canonical
        key = documented_key(method, path)
        module = sys.modules.get(getattr(route.handler, "__module__", ""), None)
        own: dict[str, Operation] = getattr(module, "OPENAPI", None) or {}
        spec = own.get(key) or OPERATIONS.get(key)
        if spec is None and not path.startswith(API_PREFIX):
            continue  # pages for people (/s/..., /c/..., /dashboard): not the API
        schemas.update(copy.deepcopy(getattr(module, "OPENAPI_SCHEMAS", None) or {}))
        is_public = getattr(route.handler, _PUBLIC, False)
        paths.setdefault(path, {})[method.lower()] = _operation(
            spec, path, method, route.handler, is_public
        )
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
        "tags": [{"name": t} for t in sorted(_tags(paths))],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
            "responses": {
                "Unauthorized": error_response("No token, or one the hub does not know."),
                "Forbidden": error_response("The token may not do this for that store."),
            },
        },
        "security": STORE_READ,
    }


def _operation(
    spec: Operation | None, path: str, method: str, handler: Any, is_public: bool
) -> Operation:
    if spec is None:
        doc = (getattr(handler, "__doc__", None) or "").strip().splitlines()
        op: Operation = {
            "summary": doc[0] if doc else f"{method} {path}",
            "x-undocumented": True,
            "responses": {"default": error_response("Any answer.")},
        }
    else:
        op = copy.deepcopy(spec)
    op.setdefault("operationId", f"{method.lower()}_{getattr(handler, '__name__', 'handler')}")
    declared = {p.get("name") for p in op.get("parameters", []) if p.get("in") == "path"}
    path_params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
        if name not in declared
    ]
    if path_params:
        op["parameters"] = [*path_params, *op.get("parameters", [])]
    if is_public:
        op.setdefault("security", [])
    else:
        op.setdefault("security", STORE_READ)
    responses = op.setdefault("responses", {})
    if op["security"] and any("Token" in k for req in op["security"] for k in req):
        responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
        if "{store}" in path:
            responses.setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    return op


def _tags(paths: dict[str, dict[str, Any]]) -> set[str]:
    return {t for item in paths.values() for op in item.values() for t in op.get("tags", [])}
