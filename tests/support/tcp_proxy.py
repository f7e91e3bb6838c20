"""A loopback TCP proxy that a test can cut, black-hole and heal: real network failures
between the agent and a real broker, in the test's own event loop.

    proxy = await TcpProxy.start(broker.host, broker.port)
    ... connect the agent to 127.0.0.1:proxy.port ...
    proxy.cut()        # reset every connection and refuse new ones (a dropped link)
    proxy.blackhole()  # keep connections open but deliver nothing (a silent network loss)
    proxy.heal()
    await proxy.close()

With `refuse_mqtt5=True` it answers an MQTT 5 CONNECT the way a 3.1.1-only broker does
(CONNACK "unacceptable protocol version", then close) and forwards 3.1.1 ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Literal, Self

CONNACK_BAD_PROTOCOL = bytes([0x20, 0x02, 0x00, 0x01])


class TcpProxy:
    def __init__(self, host: str, port: int, *, refuse_mqtt5: bool) -> None:
        self.target = (host, port)
        self.refuse_mqtt5 = refuse_mqtt5
        self.mode: Literal["pass", "cut", "blackhole"] = "pass"
        self.protocol_levels: list[int] = []  # of every MQTT CONNECT seen
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    async def start(cls, host: str, port: int, *, refuse_mqtt5: bool = False) -> Self:
        proxy = cls(host, port, refuse_mqtt5=refuse_mqtt5)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def cut(self) -> None:
        self.mode = "cut"
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def heal(self) -> None:
        self.mode = "pass"

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        if self._handlers:  # every socket is aborted: they end on their own
            await asyncio.wait(self._handlers, timeout=2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        self._writers.add(writer)
        _nodelay(writer)
        try:
            head = await _connect_head(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.transport.abort()
            return
        level = head[-1]
        self.protocol_levels.append(level)
        if self.refuse_mqtt5 and level == 5:
            writer.write(CONNACK_BAD_PROTOCOL)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        _nodelay(up_writer)
        self._writers.add(up_writer)
        up_writer.write(head)
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if self.mode == "pass":
                    dst.write(data)
                    await dst.drain()
        finally:
            # A black hole passes on nothing, not even the other side hanging up.
            if self.mode != "blackhole":
                self._writers.discard(dst)
                dst.transport.abort()


async def _connect_head(reader: asyncio.StreamReader) -> bytes:
    """The fixed header of the first packet up to the CONNECT's protocol level byte."""
    head = await reader.readexactly(2)
    while head[-1] & 0x80:  # remaining length: up to 4 bytes, 7 bits each
        head += await reader.readexactly(1)
    return head + await reader.readexactly(7)  # 00 04 'MQTT' level


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
