"""Signed commands sent the way an operator sends them from a terminal:
`shopgate-hub sign-command` makes the token and `mosquitto_pub` publishes it on the
store's `cmd` topic. One `mosquitto_sub` listens to the store's `reply` topic for the
whole demo; a reply is matched to its command by id (the token's `jti`), because the
hub's own commands (orders, catalog) are answered on the same topic."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def command_id(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


class Commands:
    def __init__(self, bin_dir: Path, key_file: Path, store: str, mqtt_port: int) -> None:
        self.bin_dir = bin_dir
        self.key_file = key_file
        self.store = store
        self.port = mqtt_port
        self._replies: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._reader = subprocess.Popen(
            ["mosquitto_sub", "-p", str(mqtt_port), "-q", "1", "-t", f"shopgate/{store}/reply"],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)  # let mosquitto_sub subscribe first: replies are not retained

    def _read(self) -> None:
        assert self._reader.stdout is not None
        for line in self._reader.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._arrived:
                self._replies[str(reply.get("id"))] = reply
                self._arrived.notify_all()

    def shell(self, cmd: str, args: dict[str, Any]) -> list[str]:
        """The two terminal lines an operator would type for this command."""
        return [
            f"$ shopgate-hub sign-command --key {self.key_file} --store {self.store} "
            f"--cmd {cmd} --args '{json.dumps(args, ensure_ascii=False)}'",
            f"$ mosquitto_pub -p {self.port} -t shopgate/{self.store}/cmd -q 1 -m <the command>",
        ]

    def sign(self, cmd: str, args: dict[str, Any]) -> str:
        return subprocess.run(
            [
                str(self.bin_dir / "shopgate-hub"),
                "sign-command",
                "--key",
                str(self.key_file),
                "--store",
                self.store,
                "--cmd",
                cmd,
                "--args",
                json.dumps(args),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def send(self, cmd: str, args: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        """Sign, publish, and return the agent's reply {id, ok, result | error}."""
        token = self.sign(cmd, args)
        subprocess.run(
            [
                "mosquitto_pub",
                "-p",
                str(self.port),
                "-t",
                f"shopgate/{self.store}/cmd",
                "-q",
                "1",
                "-m",
                token,
            ],
            check=True,
        )
        wanted = command_id(token)
        with self._arrived:
            if not self._arrived.wait_for(lambda: wanted in self._replies, timeout):
                raise SystemExit(f"demo: no reply to the {cmd} command within {timeout:.0f} s")
            return self._replies.pop(wanted)

    def close(self) -> None:
        self._reader.terminate()
        self._reader.wait(5)
