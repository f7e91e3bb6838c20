"""Check a real answer of the hub against what its OpenAPI document says of it.

`assert_documented(method, path, status, body)`: `path` as the route table spells it
(`/api/v1/stores/{store}/events`). The document's schemas are closed for the check (an
object with listed properties takes no others), so a field the hub sends that its models
do not name fails here, as does one missing or of another type.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from cloud.api.openapi import document
from cloud.api.routes_table import ROUTES


@functools.cache
def full_document() -> dict[str, Any]:
    """The document of an application serving every route of the table."""
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        raise NotImplementedError

    for route in ROUTES:
        app.router.add_route(route.method, route.path, handler)
    return document(app)


def closed(schema: Any) -> Any:
    """`schema` with every object that lists its properties closed to others."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def problems(method: str, path: str, status: int, body: Any) -> list[str]:
    doc = full_document()
    op = doc["paths"][path][method.lower()]
    response = op["responses"].get(str(status))
    if response is None:
        return [f"{method} {path} does not document status {status}"]
    if "$ref" in response:  # components/responses/...
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    root = {**closed(copy.deepcopy(schema)), "components": closed(doc["components"])}
    validator = Draft202012Validator(root)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in validator.iter_errors(body)
    ]


def assert_documented(method: str, path: str, status: int, body: Any) -> None:
    found = problems(method, path, status, body)
    assert not found, f"{method} {path} {status} is not as documented:\n" + "\n".join(found)
