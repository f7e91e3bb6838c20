"""What every control route needs: JSON bodies checked against a model, JSON errors,
and finding the device a URL names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from shopgate_sim.device import SimDevice

Body = TypeVar("Body", bound=BaseModel)
Device = TypeVar("Device", bound=SimDevice)


class StrictBody(BaseModel):
    """A request body: unknown keys and loose types ("yes" for true) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def json_error(error: type[web.HTTPError], message: str) -> web.HTTPError:
    return error(text=json.dumps({"error": message}), content_type="application/json")


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


async def read_body(request: web.Request, model: type[Body]) -> Body:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise json_error(web.HTTPBadRequest, "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise json_error(web.HTTPBadRequest, describe_validation(exc)) from exc


def find_device(
    devices: Mapping[str, SimDevice], device_id: str, cls: type[Device], what: str
) -> Device:
    device = devices.get(device_id)
    if not isinstance(device, cls):
        raise json_error(web.HTTPNotFound, f"no {what} {device_id!r}")
    return device


def int_in_path(request: web.Request, name: str) -> int:
    value = request.match_info[name]
    try:
        return int(value)
    except ValueError as exc:
        raise json_error(web.HTTPNotFound, f"{name} {value!r} is not a number") from exc
