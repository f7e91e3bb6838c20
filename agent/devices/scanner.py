"""Barcode/QR scanners and keypads on a serial line (kinds `scanner` and `keypad`).

Both send one line per read, ended by CR or LF, so one driver serves both. Each line
becomes a ScanRead stamped with the moment its chunk arrived (the door latency budget
is measured from there). Unplugging and replugging is handled by the SerialLink under
it; a partial line from before an unplug is dropped.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns

from agent.config.schema import KeypadDevice, ScannerDevice
from agent.devices.base import Device, EventSink, ScanRead
from agent.devices.presence import Presence
from agent.devices.protocols.lines import Line, LineFramer, LineTooLong
from agent.devices.serial_link import SerialLink
from runtime.backoff import Backoff

log = logging.getLogger(__name__)


class Scanner(Device):
    def __init__(
        self,
        cfg: ScannerDevice | KeypadDevice,
        sink: EventSink,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.id = cfg.id
        self.kind = cfg.kind
        self._sink = sink
        self._presence = Presence(cfg.id, sink)
        self._framer = LineFramer()
        self._link = SerialLink(
            cfg.id,
            cfg.port,
            cfg.baudrate,
            on_data=self._on_data,
            on_up=self._presence.up,
            on_down=self._on_down,
            backoff=backoff,
        )

    @property
    def online(self) -> bool:
        return self._presence.online

    async def start(self) -> None:
        await self._link.start()

    async def stop(self) -> None:
        await self._link.stop()

    def _on_down(self, reason: str) -> None:
        self._framer.reset()
        self._presence.down(reason)

    def _on_data(self, data: bytes) -> None:
        # One timestamp per chunk: every line in it was complete when it arrived.
        now = perf_counter_ns()
        for item in self._framer.feed(data):
            match item:
                case Line(text, had_bad_bytes):
                    if had_bad_bytes:
                        # Length only: a scanned line is a pass or a code, never logged.
                        log.warning(
                            "%s: a %d-character line had bytes that are not UTF-8 "
                            "(replaced with U+FFFD); check the %s's character set setting",
                            self.id,
                            len(text),
                            self.kind,
                        )
                    self._sink(ScanRead(self.id, text, now))
                case LineTooLong(length):
                    log.warning(
                        "%s: dropped a %d-byte line (at most %d accepted); is the %s set "
                        "to end each read with CR or LF?",
                        self.id,
                        length,
                        self._framer.max_len,
                        self.kind,
                    )
