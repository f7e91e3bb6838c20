"""A barcode/QR scanner on a USB CDC serial line: each scan is one line (CONTRACTS section 6).

A real scanner sends a QR's content as it is, then its terminator: a QR whose content
holds CR or LF (anyone can print one) arrives as several lines in one read. `raw` scans
do exactly that, so tests can attack the agent the way a crafted QR would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from aiohttp import web
from pydantic import Field, model_validator

from shopgate_sim.api import StrictBody, find_device, json_error, read_body
from shopgate_sim.device import DeviceKind, DeviceSpec, DeviceUnplugged, SimDevice
from shopgate_sim.serial_device import SerialDevice

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 4096


class ScannerSpec(DeviceSpec):
    kind: Literal["scanner"]
    # What the scanner appends to every code; scanners ship with CR, LF or CRLF.
    terminator: Literal["\r\n", "\r", "\n"] = "\r\n"


class Scanner(SerialDevice):
    kind = "scanner"

    def __init__(self, spec: ScannerSpec) -> None:
        super().__init__(spec.id)
        self._terminator = spec.terminator.encode("ascii")

    def received(self, data: bytes) -> None:
        # Real scanners take setup commands on this line; the agent sends none.
        log.info("%s: ignored %d bytes from the host", self.id, len(data))

    def scan(self, code: str) -> int:
        """Send one read: the content as it is (line breaks inside included), then the
        terminator, in one write as the scanner's USB CDC endpoint hands it over."""
        line = code.encode("utf-8") + self._terminator
        self.send(line)
        log.info("%s: scanned %d characters", self.id, len(code))
        return len(line)


class ScanBody(StrictBody):
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    # true: the content may hold CR and LF (a crafted QR); false: one line, checked.
    raw: bool = False

    @model_validator(mode="after")
    def _one_line(self) -> ScanBody:
        if not self.raw and ("\r" in self.code or "\n" in self.code):
            raise ValueError(
                "a scan is one line: no CR or LF inside (send raw: true for a QR whose "
                "content holds line breaks)"
            )
        return self


def routes(devices: Mapping[str, SimDevice]) -> list[web.RouteDef]:
    async def post_scan(request: web.Request) -> web.Response:
        scanner = find_device(devices, request.match_info["id"], Scanner, "scanner")
        body = await read_body(request, ScanBody)
        try:
            sent = scanner.scan(body.code)
        except DeviceUnplugged as exc:
            raise json_error(web.HTTPConflict, str(exc)) from exc
        return web.json_response({"bytes": sent})

    return [web.post("/scanners/{id}/scan", post_scan)]


KIND = DeviceKind(spec=ScannerSpec, build=Scanner, routes=routes)
