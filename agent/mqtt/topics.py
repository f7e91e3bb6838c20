"""The store's topics (CONTRACTS section 3): ROOT/STORE/{status,state,cmd,reply}."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    root: str
    store: str

    @property
    def base(self) -> str:
        return f"{self.root}/{self.store}"

    @property
    def status(self) -> str:
        """Retained `{"online": ...}`; the broker publishes the will here."""
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        """Retained doors, devices, business status, outbox depth."""
        return f"{self.base}/state"

    @property
    def cmd(self) -> str:
        """Signed commands to the agent."""
        return f"{self.base}/cmd"

    @property
    def reply(self) -> str:
        """One reply per command received."""
        return f"{self.base}/reply"
