"""Opening a door from the hub with a pass the hub just minted (the entry page after a
right answer, the courier side of the door poster after a right tail).

The pass itself goes to the agent as the signed command `enter`, which decides as if it
were scanned at the door: lockdown, hours, occupancy, the block list and single use all
apply to a remote entry too. The caller always also has the pass to show at the scanner.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("cloud.remote_entry")

# A remote entry still on its way after this is better dropped: the visitor has given
# up, or is standing there with the pass.
ENTER_COMMAND_TTL_S = 20


class CommandSender(Protocol):
    """What a remote entry needs of the hub's command bus (cloud/bus.py HubBus)."""

    def store_online(self, store: str) -> bool | None: ...

    async def send_command(
        self,
        store: str,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        ttl: int = 60,
        wait_reply: float | None = 5.0,
        sub: str = ...,
    ) -> dict[str, Any] | None: ...


async def enter_remotely(
    bus: CommandSender | None, store: str, door: str, token: str, *, sub: str, wait_s: float
) -> bool | None:
    """True: the agent says the door opened. False: tried, not confirmed. None: not tried
    (no bus, or the store's agent is not online); the pass alone opens the door."""
    if bus is None or bus.store_online(store) is not True:
        return None
    where = {"store": store, "door": door}
    try:
        reply = await bus.send_command(
            store,
            "enter",
            {"door": door, "pass": token},
            ttl=ENTER_COMMAND_TTL_S,
            wait_reply=wait_s,
            sub=sub,
        )
    except Exception as e:
        # Whatever the bus's trouble, the visitor still has the pass to scan.
        log.warning("remote entry not sent: %s", e, extra={**where, "error": type(e).__name__})
        return False
    if reply is None:
        log.warning("remote entry: no reply", extra=where)
        return False
    result = reply.get("result") or {}
    if reply.get("ok") is not True or result.get("granted") is not True:
        why = reply.get("error") or result.get("reason")
        log.warning("remote entry refused", extra={**where, "reply": why})
        return False
    return True
