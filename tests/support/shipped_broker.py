"""Start mosquitto with THE SHIPPED config, deploy/mosquitto/mosquitto.conf, for a test.

    broker = start_shipped_broker(tmp_path, users={"demo-001": "pw", "shopgate-hub": "pw"})
    broker.store                 # the listener stores reach (not bound to loopback)
    broker.local                 # the plain loopback listener (the hub on the broker host)
    broker.connect_kwargs(broker.store)   # aiomqtt.Client host/port/tls for it
    broker.stop()

The file is used as shipped and rewritten ONLY where a test must differ: each listener's
port becomes a free one (its bind address stays as shipped), and the files it names
(password file, ACL, persistence folder, certificates) become the test's own: a password
file made with `mosquitto_passwd -b`, the shipped ACL, and a certificate authority made
in the test (tests/support/certs.py). Logging to a file in the test's folder is appended.
So a test on this broker fails when the shipped config regresses.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.broker import (
    ACL_FILE,
    REPO,
    START_ATTEMPTS,
    BrokerHandle,
    PortTaken,
    _spawn,
    _wait_listening,
    free_port,
)
from tests.support.certs import Issued, TestCA

SHIPPED_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class Listener:
    shipped_port: int
    address: str | None  # the bind address as shipped; None: every address
    port: int  # the test's port
    options: dict[str, str] = field(default_factory=dict)  # the listener's own lines

    @property
    def tls(self) -> bool:
        return "certfile" in self.options

    @property
    def loopback_only(self) -> bool:
        return self.address is not None and self.address in LOOPBACK


@dataclass
class ShippedBroker:
    handle: BrokerHandle
    listeners: list[Listener]
    settings: dict[str, str]  # the global lines, as shipped
    ca_file: Path
    ca: TestCA | None  # None when the certificates came from elsewhere (certs_dir)

    @property
    def store(self) -> Listener:
        """The listener stores connect to: the one not bound to loopback."""
        (found,) = [li for li in self.listeners if not li.loopback_only]
        return found

    @property
    def local(self) -> Listener:
        (found,) = [li for li in self.listeners if li.loopback_only]
        return found

    def url(self, listener: Listener, host: str = "127.0.0.1") -> str:
        return f"{'mqtts' if listener.tls else 'mqtt'}://{host}:{listener.port}"

    def tls_context(self, cert: Issued | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if cert is not None:
            context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        return context

    def connect_kwargs(
        self, listener: Listener, host: str = "127.0.0.1", cert: Issued | None = None
    ) -> dict[str, Any]:
        """hostname, port and tls_context for an aiomqtt.Client on `listener`."""
        tls = self.tls_context(cert) if listener.tls else None
        return {"hostname": host, "port": listener.port, "tls_context": tls}

    @property
    def log(self) -> str:
        return self.handle.log

    def stop(self) -> None:
        self.handle.stop()


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (for reaching a listener from
    "outside"); empty when it has none."""
    found: set[str] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            found.add(s.getsockname()[0])
        except OSError:
            pass
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)


def start_shipped_broker(
    tmp_path: Path,
    *,
    users: dict[str, str],
    uncomment: tuple[str, ...] = (),
    certs_dir: Path | None = None,
) -> ShippedBroker:
    """`uncomment`: options the shipped file has commented out (`# require_certificate
    true`) to switch on as written there, for a test of that option. `certs_dir`: use
    its ca.crt, broker.crt and broker.key instead of a CA made here."""
    for attempt in range(START_ATTEMPTS):
        try:
            return _start_shipped_broker(tmp_path, users, uncomment, certs_dir)
        except PortTaken:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _start_shipped_broker(
    tmp_path: Path, users: dict[str, str], uncomment: tuple[str, ...], certs_dir: Path | None
) -> ShippedBroker:
    base = tmp_path / "shipped-broker"
    base.mkdir(parents=True, exist_ok=True)
    ca: TestCA | None = None
    if certs_dir is None:
        ca = TestCA.make(base / "certs")
        server = ca.issue("broker", hosts=["127.0.0.1", "localhost", *host_addresses()])
        certs_dir = ca.dir
    else:
        server = Issued(certs_dir / "broker.crt", certs_dir / "broker.key")
    passwd = base / "passwd"
    passwd.write_text("")
    passwd.chmod(0o600)
    for name, password in users.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), name, password], check=True, capture_output=True
        )
    paths = {
        "password_file": str(passwd),
        "acl_file": str(ACL_FILE),
        "persistence_location": f"{base}/",
        "certfile": str(server.cert_file),
        "keyfile": str(server.key_file),
        "cafile": str(certs_dir / "ca.crt"),
    }
    out: list[str] = []
    listeners: list[Listener] = []
    settings: dict[str, str] = {}
    for raw in SHIPPED_CONF.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") and line.lstrip("# ").split(" ")[0] in uncomment:
            line = line.lstrip("# ")
        if not line or line.startswith("#"):
            out.append(raw)
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "listener":
            shipped_port, *address = value.split()
            listener = Listener(int(shipped_port), address[0] if address else None, free_port())
            listeners.append(listener)
            out.append(" ".join(["listener", str(listener.port), *address]))
            continue
        if key in paths:
            value = paths[key]
        (listeners[-1].options if listeners else settings)[key] = value
        out.append(f"{key} {value}")
    if not listeners:
        raise RuntimeError(f"{SHIPPED_CONF} has no listener")
    out += [
        f"log_dest file {base}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        out.append("user root")  # else mosquitto drops to `mosquitto`, who can't read tmp_path
    conf = base / "mosquitto.conf"
    conf.write_text("\n".join(out) + "\n")
    proc = _spawn(conf, base)
    for listener in listeners:
        _wait_listening("127.0.0.1", listener.port, proc, base)
    handle = BrokerHandle("127.0.0.1", listeners[0].port, base, conf, proc, dict(users))
    return ShippedBroker(handle, listeners, settings, certs_dir / "ca.crt", ca)
