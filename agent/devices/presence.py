"""A device's online/offline state, reported upward once per transition."""

from __future__ import annotations

import logging

from agent.devices.base import DeviceOffline, DeviceOnline, EventSink

log = logging.getLogger(__name__)


class Presence:
    """Turns repeated "it is up" / "it is down" observations into one DeviceOnline or
    DeviceOffline per change. The first observation is always reported (the state
    starts unknown), so listeners learn the initial state too."""

    def __init__(self, device_id: str, sink: EventSink) -> None:
        self._device_id = device_id
        self._sink = sink
        self._online: bool | None = None
        self._reason = ""

    @property
    def online(self) -> bool:
        return self._online is True

    @property
    def reason(self) -> str:
        """Why the device is offline ("" when online or not known yet)."""
        return self._reason

    def up(self) -> None:
        if self._online is True:
            return
        self._online = True
        self._reason = ""
        log.info("device %s online", self._device_id)
        self._sink(DeviceOnline(self._device_id))

    def down(self, reason: str) -> None:
        if self._online is False:
            if reason != self._reason:
                # Still offline, for a new reason: worth a log line, not a second event.
                log.info("device %s still offline: %s", self._device_id, reason)
                self._reason = reason
            return
        self._online = False
        self._reason = reason
        log.warning("device %s offline: %s", self._device_id, reason)
        self._sink(DeviceOffline(self._device_id, reason))
