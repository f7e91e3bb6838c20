"""The HTTP control API (CONTRACTS section 5): routes common to every device, plus each
kind's own routes from the registry. Every error is JSON: {"error": "..."}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import Field

from shopgate_sim.api import StrictBody, find_device, json_error, read_body
from shopgate_sim.device import DeviceUnplugged, SimDevice
from shopgate_sim.hardware import Hardware
from shopgate_sim.registry import KINDS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UnplugBody(StrictBody):
    seconds: float = Field(ge=0, le=3600)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        # The router's own 404/405 come as text; keep every error the same shape.
        message = f"{exc.reason}: {request.method} {request.path}"
        # type(exc) is one of aiohttp's HTTPException classes, as json_error takes.
        raise json_error(type(exc), message) from None  # type: ignore[arg-type]
    except Exception:
        log.exception("control API: %s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error; see the simulator log"}, status=500)


def build_app(hardware: Hardware) -> web.Application:
    """Raises ValueError when the devices' wiring does not add up."""
    devices = hardware.devices

    async def get_devices(request: web.Request) -> web.Response:
        return web.json_response(hardware.describe())

    async def post_unplug(request: web.Request) -> web.Response:
        # SimDevice is abstract: any device will do here, as every one can be unplugged.
        device = find_device(devices, request.match_info["id"], SimDevice, "device")  # type: ignore[type-abstract]
        body = await read_body(request, UnplugBody)
        try:
            await device.unplug(body.seconds)
        except DeviceUnplugged as exc:
            raise json_error(web.HTTPConflict, str(exc)) from exc
        return web.json_response({"device": device.id, "seconds": body.seconds})

    app = web.Application(middlewares=[errors_as_json])
    app.add_routes(
        [web.get("/devices", get_devices), web.post("/devices/{id}/unplug", post_unplug)]
    )
    for kind in KINDS.values():
        # Every kind's routes are there even with none of its devices configured: they
        # then answer 404 for every id, which says more than a missing route would.
        app.add_routes(kind.routes(devices))
    return app
