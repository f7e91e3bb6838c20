"""An RS485 bus of lock control boards (CONTRACTS section 6), seen from the boards' side.

Each board drives up to 24 lock channels and reports one feedback bit per channel
(set = locked). Two kinds of board are wired in a store:

- door boards: a channel drives a door strike and its feedback is the door contact.
  OPEN releases the strike for `release_s`; the feedback stays "locked" until someone
  actually opens the door. Opening the contact while the strike is not released is a
  forced entry, which the simulator allows so the agent's alarm can be tested.
- locker boards (`compartments: true`): OPEN pops the compartment door, whose feedback
  reads unlocked until it is closed again.

Like a real bus, only addressed boards answer; malformed bytes are logged and skipped,
never answered. Requests are answered one at a time, in order, after `reply_delay_ms`.
The frames are the simulator's own (lockboard_wire.py), not the agent's codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopgate_sim.api import StrictBody, find_device, int_in_path, json_error, read_body
from shopgate_sim.device import DEVICE_ID_PATTERN, DeviceKind, DeviceSpec, SimDevice
from shopgate_sim.lockboard_wire import (
    LOCKS,
    Command,
    CommandReader,
    Noise,
    board_reply,
    lock_reply,
)
from shopgate_sim.serial_device import SerialDevice

log = logging.getLogger(__name__)

FRAME_LOG_SIZE = 500
MAX_QUEUED_REQUESTS = 256


# ---- config -------------------------------------------------------------------------


class BoardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: int = Field(ge=0, le=255)
    channels: int = Field(default=LOCKS, ge=1, le=LOCKS)
    compartments: bool = False
    release_s: float = Field(default=5.0, gt=0, le=3600)


class DoorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=DEVICE_ID_PATTERN, max_length=64)
    board: int
    channel: int


class LockBusSpec(DeviceSpec):
    kind: Literal["lockbus"]
    reply_delay_ms: float = Field(default=2.0, ge=0, le=1000)
    boards: list[BoardSpec] = Field(min_length=1)
    doors: list[DoorSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _wiring_adds_up(self) -> LockBusSpec:
        boards = {}
        for spec in self.boards:
            if spec.address in boards:
                raise ValueError(f"board {spec.address} is listed twice")
            boards[spec.address] = spec
        door_ids: set[str] = set()
        channels: set[tuple[int, int]] = set()
        for door in self.doors:
            board = boards.get(door.board)
            if board is None:
                raise ValueError(f"door {door.id}: no board {door.board} on this bus")
            if board.compartments:
                raise ValueError(f"door {door.id}: board {door.board} is a locker board")
            if not 1 <= door.channel <= board.channels:
                raise ValueError(
                    f"door {door.id}: board {door.board} has no channel {door.channel}"
                )
            if door.id in door_ids or (door.board, door.channel) in channels:
                raise ValueError(f"door {door.id}: id or channel used twice")
            door_ids.add(door.id)
            channels.add((door.board, door.channel))
        return self


# ---- the boards (pure state, no I/O) ------------------------------------------------


@dataclass(slots=True)
class Channel:
    springs_open: bool
    release_s: float
    contact_open: bool = False
    released_until: float = -math.inf
    unlock_count: int = 0
    forced_count: int = 0
    # A jammed compartment door or a dead solenoid: OPEN is answered and counted, but
    # the compartment stays shut (its feedback keeps reading locked).
    stuck: bool = False

    @property
    def locked(self) -> bool:
        """The feedback bit the board reports: the contact (door or compartment) is shut."""
        return not self.contact_open

    def released(self, now: float) -> bool:
        return now < self.released_until

    def pulse(self, now: float) -> None:
        self.unlock_count += 1
        if self.springs_open and not self.stuck:
            self.contact_open = True
        else:
            self.released_until = now + self.release_s

    def set_contact(self, is_open: bool, now: float) -> bool:
        """Open or close the contact; True when that opening was forced."""
        forced = is_open and not self.contact_open and not self.released(now)
        self.contact_open = is_open
        if forced:
            self.forced_count += 1
        return forced

    def snapshot(self, now: float) -> dict[str, object]:
        return {
            "locked": self.locked,
            "unlock_count": self.unlock_count,
            "released": self.released(now),
            "forced_count": self.forced_count,
            "stuck": self.stuck,
        }


@dataclass(slots=True)
class Board:
    address: int
    channels: dict[int, Channel]
    muted: bool = False

    @classmethod
    def from_spec(cls, spec: BoardSpec) -> Board:
        channels = {
            n: Channel(springs_open=spec.compartments, release_s=spec.release_s)
            for n in range(1, spec.channels + 1)
        }
        return cls(spec.address, channels)


@dataclass(frozen=True, slots=True)
class Silence:
    """No board answers; `reason` is for the log."""

    reason: str


def answer(boards: Mapping[int, Board], cmd: Command, now: float) -> bytes | Silence:
    """The reply the bus sends to one command (and the state change the command causes)."""
    board = boards.get(cmd.board)
    if board is None:
        return Silence(f"no board {cmd.board} on this bus")
    if board.muted:
        return Silence(f"board {cmd.board} is muted")
    if cmd.op == "query_all":
        locked = [
            board.channels[n].locked if n in board.channels else False for n in range(1, LOCKS + 1)
        ]
        return board_reply(cmd.board, locked)
    channel = board.channels.get(cmd.lock)
    if channel is None:
        return Silence(f"board {cmd.board} has no lock {cmd.lock}")
    if cmd.op == "open":
        channel.pulse(now)
    return lock_reply(cmd, locked=channel.locked)


def describe_command(cmd: Command) -> dict[str, object]:
    if cmd.op == "query_all":
        return {"op": "query_all", "board": cmd.board}
    return {"op": cmd.op, "board": cmd.board, "lock": cmd.lock}


# ---- the device on its pty ----------------------------------------------------------


class LockBus(SerialDevice):
    kind = "lockbus"

    def __init__(self, spec: LockBusSpec) -> None:
        super().__init__(spec.id)
        self.boards = {b.address: Board.from_spec(b) for b in spec.boards}
        self.doors = {d.id: (d.board, d.channel) for d in spec.doors}
        self._reply_delay = spec.reply_delay_ms / 1000
        self._reader = CommandReader()
        self._requests: asyncio.Queue[tuple[Command, dict[str, object]]] = asyncio.Queue(
            MAX_QUEUED_REQUESTS
        )
        self._noise = bytearray()
        # What the bus received, newest last: {"t": monotonic s, "hex", "request"|"error",
        # "answered"}. time.monotonic is CLOCK_MONOTONIC, comparable across processes.
        self.frames: deque[dict[str, object]] = deque(maxlen=FRAME_LOG_SIZE)
        self._server: asyncio.Task[None] | None = None

    def plugged_in(self) -> None:
        self._reader = CommandReader()

    def received(self, data: bytes) -> None:
        now = time.monotonic()
        for item in self._reader.feed(data):
            if isinstance(item, Noise):
                error = f"skipped {len(item.data)} bytes: {item.data.hex(' ')}"
                log.warning("%s: malformed bytes skipped: %s", self.id, error)
                self.frames.append({"t": now, "error": error, "answered": False})
                continue
            entry: dict[str, object] = {
                "t": now,
                "hex": item.frame.hex(),
                "request": describe_command(item),
                "answered": False,
            }
            self.frames.append(entry)
            try:
                self._requests.put_nowait((item, entry))
            except asyncio.QueueFull:
                log.warning(
                    "%s: %d requests waiting; dropped %s", self.id, MAX_QUEUED_REQUESTS, item
                )

    async def start(self) -> None:
        await super().start()
        self._server = asyncio.create_task(self._serve(), name=f"{self.id} boards")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server
            self._server = None
        await super().stop()

    async def _serve(self) -> None:
        while True:
            cmd, entry = await self._requests.get()
            reply = answer(self.boards, cmd, time.monotonic())
            if isinstance(reply, Silence):
                log.info("%s: %s: no answer (%s)", self.id, describe_command(cmd), reply.reason)
                continue
            if cmd.op == "open":
                log.info(
                    "%s: board %d lock %d opened (unlock %d)",
                    self.id,
                    cmd.board,
                    cmd.lock,
                    self.boards[cmd.board].channels[cmd.lock].unlock_count,
                )
            await asyncio.sleep(self._reply_delay)
            frame = bytes(self._noise) + reply
            self._noise.clear()
            try:
                self.send(frame)
            except Exception as exc:
                log.info("%s: reply to %s lost: %s", self.id, describe_command(cmd), exc)
                continue
            entry["answered"] = True

    def add_noise(self, data: bytes) -> None:
        self._noise += data

    def set_contact(self, board: int, channel: int, is_open: bool) -> dict[str, object]:
        now = time.monotonic()
        ch = self.boards[board].channels[channel]
        forced = ch.set_contact(is_open, now)
        where = f"board {board} lock {channel}"
        if forced:
            log.warning("%s: %s opened while locked (forced)", self.id, where)
        else:
            log.info("%s: %s contact %s", self.id, where, "open" if is_open else "closed")
        return {"board": board, "channel": channel, "forced": forced, **ch.snapshot(now)}

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "boards": {
                str(address): {str(n): ch.snapshot(now) for n, ch in board.channels.items()}
                for address, board in sorted(self.boards.items())
            },
            "muted": [address for address, board in sorted(self.boards.items()) if board.muted],
            "doors": {
                door_id: {"board": b, "channel": c} for door_id, (b, c) in self.doors.items()
            },
        }


# ---- control API --------------------------------------------------------------------


class ContactBody(StrictBody):
    open: bool


class MuteBody(StrictBody):
    on: bool


class FaultBody(StrictBody):
    stuck: bool


class NoiseBody(StrictBody):
    hex: str = Field(min_length=2, max_length=8192)


def routes(devices: Mapping[str, SimDevice]) -> list[web.RouteDef]:
    buses = {d.id: d for d in devices.values() if isinstance(d, LockBus)}
    door_bus: dict[str, LockBus] = {}
    for bus in buses.values():
        for door_id in bus.doors:
            if door_id in door_bus:
                raise ValueError(f"door {door_id!r} is wired on two buses")
            door_bus[door_id] = bus

    def bus_of(request: web.Request) -> LockBus:
        return find_device(buses, request.match_info["id"], LockBus, "lock bus")

    def board_of(request: web.Request, bus: LockBus) -> int:
        board = int_in_path(request, "board")
        if board not in bus.boards:
            raise json_error(web.HTTPNotFound, f"no board {board} on {bus.id}")
        return board

    async def get_bus(request: web.Request) -> web.Response:
        return web.json_response(bus_of(request).snapshot())

    async def get_frames(request: web.Request) -> web.Response:
        return web.json_response({"frames": list(bus_of(request).frames)})

    async def post_mute(request: web.Request) -> web.Response:
        bus = bus_of(request)
        board = board_of(request, bus)
        body = await read_body(request, MuteBody)
        bus.boards[board].muted = body.on
        log.info("%s: board %d %s", bus.id, board, "muted" if body.on else "answers again")
        return web.json_response({"board": board, "muted": body.on})

    async def post_noise(request: web.Request) -> web.Response:
        bus = bus_of(request)
        body = await read_body(request, NoiseBody)
        try:
            data = bytes.fromhex(body.hex)
        except ValueError as exc:
            raise json_error(web.HTTPBadRequest, f"hex: {exc}") from exc
        bus.add_noise(data)
        log.info("%s: %d noise bytes go out before the next reply", bus.id, len(data))
        return web.json_response({"queued": len(data)})

    async def post_channel_contact(request: web.Request) -> web.Response:
        bus = bus_of(request)
        board = board_of(request, bus)
        channel = int_in_path(request, "channel")
        if channel not in bus.boards[board].channels:
            raise json_error(
                web.HTTPNotFound, f"board {board} on {bus.id} has no channel {channel}"
            )
        body = await read_body(request, ContactBody)
        return web.json_response(bus.set_contact(board, channel, body.open))

    async def post_channel_fault(request: web.Request) -> web.Response:
        bus = bus_of(request)
        board = board_of(request, bus)
        channel = int_in_path(request, "channel")
        ch = bus.boards[board].channels.get(channel)
        if ch is None:
            raise json_error(
                web.HTTPNotFound, f"board {board} on {bus.id} has no channel {channel}"
            )
        body = await read_body(request, FaultBody)
        ch.stuck = body.stuck
        log.info(
            "%s: board %d lock %d %s", bus.id, board, channel, "stuck" if body.stuck else "freed"
        )
        return web.json_response(
            {"board": board, "channel": channel, **ch.snapshot(time.monotonic())}
        )

    async def post_door_contact(request: web.Request) -> web.Response:
        door_id = request.match_info["id"]
        bus = door_bus.get(door_id)
        if bus is None:
            raise json_error(web.HTTPNotFound, f"no door {door_id!r}")
        body = await read_body(request, ContactBody)
        board, channel = bus.doors[door_id]
        return web.json_response({"door": door_id, **bus.set_contact(board, channel, body.open)})

    return [
        web.get("/lockbus/{id}", get_bus),
        web.get("/lockbus/{id}/frames", get_frames),
        web.post("/lockbus/{id}/boards/{board}/mute", post_mute),
        web.post("/lockbus/{id}/noise", post_noise),
        web.post("/lockbus/{id}/boards/{board}/channels/{channel}/contact", post_channel_contact),
        web.post("/lockbus/{id}/boards/{board}/channels/{channel}/fault", post_channel_fault),
        web.post("/doors/{id}/contact", post_door_contact),
    ]


KIND = DeviceKind(spec=LockBusSpec, build=LockBus, routes=routes)
