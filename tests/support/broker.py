"""Start a real mosquitto on a free loopback port for a test.

    broker = start_broker(tmp_path)                      # anonymous clients allowed
    broker = start_broker(tmp_path, acl=True, users={"demo-001": "pw", "shopgate-hub": "pw"})
    ...
    broker.restart()                                     # same port, same persistence
    broker.stop()

With `acl=True` the broker uses the shipped deploy/mosquitto/aclfile and a password file
made with `mosquitto_passwd -b`, so the tests exercise the real deployment rules. Like
the deployed config it sets `set_tcp_nodelay true` and keeps persistence (retained
messages and persistent sessions survive `restart()`). Its log is `<dir>/mosquitto.log`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ACL_FILE = REPO / "deploy" / "mosquitto" / "aclfile"
START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise RuntimeError("mosquitto is not installed (make setup installs it)")
    return found


def free_port() -> int:
    # All addresses, not only loopback: a broker listening on 0.0.0.0 needs the port free
    # everywhere. Another process may still take it before the broker binds: callers
    # retry on PortTaken.
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class PortTaken(RuntimeError):
    """The free port picked for a broker was taken before the broker bound it."""


START_ATTEMPTS = 5


@dataclass
class BrokerHandle:
    host: str
    port: int
    dir: Path
    conf: Path
    proc: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.proc = _spawn(self.conf, self.dir)
        _wait_listening(self.host, self.port, self.proc, self.dir)


def start_broker(
    tmp_path: Path, *, acl: bool = False, users: dict[str, str] | None = None
) -> BrokerHandle:
    for attempt in range(START_ATTEMPTS):
        try:
            return _start_broker(tmp_path, acl=acl, users=users)
        except PortTaken:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _start_broker(tmp_path: Path, *, acl: bool, users: dict[str, str] | None) -> BrokerHandle:
    base = tmp_path / "broker"
    base.mkdir(parents=True, exist_ok=True)
    users = dict(users or {})
    port = free_port()
    lines = [
        f"listener {port} 127.0.0.1",
        "set_tcp_nodelay true",
        "persistence true",
        f"persistence_location {base}/",
        f"log_dest file {base}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # else mosquitto drops to `mosquitto`, who can't read tmp_path
    if acl or users:
        passwd = base / "passwd"
        passwd.write_text("")
        passwd.chmod(0o600)
        for name, password in users.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), name, password],
                check=True,
                capture_output=True,
            )
        lines += ["allow_anonymous false", f"password_file {passwd}"]
    else:
        lines.append("allow_anonymous true")
    if acl:
        lines.append(f"acl_file {ACL_FILE}")
    conf = base / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = _spawn(conf, base)
    _wait_listening("127.0.0.1", port, proc, base)
    return BrokerHandle("127.0.0.1", port, base, conf, proc, users)


def _spawn(conf: Path, base: Path) -> subprocess.Popen[bytes]:
    out = (base / "mosquitto.out").open("ab")
    return subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
    )


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], base: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            out = (base / "mosquitto.out").read_text(errors="replace")
            log = (base / "mosquitto.log").read_text(errors="replace")
            if "Address already in use" in out + log:
                # Cleared so a later failure of the retried start is read on its own.
                for name in ("mosquitto.out", "mosquitto.log"):
                    (base / name).unlink(missing_ok=True)
                raise PortTaken(f"port {port} was taken before mosquitto bound it")
            raise RuntimeError(f"mosquitto exited with {proc.returncode}:\n{out}\n{log}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"mosquitto did not listen on {host}:{port}") from None
            time.sleep(0.01)
