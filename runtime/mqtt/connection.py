"""Small things both programs do with one aiomqtt connection."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from typing import Any

import aiomqtt


def subscription_refused(granted: Iterable[Any]) -> bool:
    """The SUBACK refused a topic: its reason code (MQTT 5) or return code (3.1.1) is
    0x80 or above."""
    for g in granted:
        code = getattr(g, "value", g)
        if int(code) >= 0x80:
            return True
    return False


def shut_down(client: aiomqtt.Client) -> None:
    """Shut a connection's socket down without closing it: aiomqtt leaves a timed-out
    attempt's socket open, and closing it under paho's loop could reuse its descriptor;
    shutting it down ends it and paho's own read then sees the end and closes it."""
    sock: Any = client._client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
