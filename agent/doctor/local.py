"""Checks of this machine: files the agent reads, the clock, the disk and journal, the
ports and GPIO chip it opens, its systemd unit. Blocking (files, subprocesses): the
runner calls them from a thread."""

from __future__ import annotations

import datetime as dt
import grp
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from agent.config.schema import AgentConfig
from agent.doctor.report import Check, failed, passed
from agent.rules.key_trust import KeyRuleError, parse_pem

SERVICE_USER = "shopgate"
UNIT = "shopgate-agent"
MIN_FREE_BYTES = 200 * 1024 * 1024
OUTBOX_LAG_S = 3600.0  # undelivered events older than this: the hub is not taking them


def _readable_by_service_user(path: Path) -> bool | None:
    """Whether the service user may read `path` (None: there is no such user here)."""
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None
    st = path.stat()
    if user.pw_uid == 0 or st.st_uid == user.pw_uid:
        return bool(st.st_mode & stat.S_IRUSR)
    groups = {g.gr_gid for g in grp.getgrall() if SERVICE_USER in g.gr_mem} | {user.pw_gid}
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _secret_files(cfg: AgentConfig) -> Iterator[tuple[str, Path]]:
    for k in cfg.access.keys:
        yield f"access.keys {k.kid}", k.pem_file
    if cfg.mqtt.password_file is not None:
        yield "mqtt.password_file", cfg.mqtt.password_file
    tls = cfg.mqtt.tls
    for what, path in (
        ("ca_file", tls.ca_file),
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
    ):
        if path is not None:
            yield f"mqtt.tls.{what}", path


def keys(cfg: AgentConfig) -> Check:
    problems: list[str] = []
    fixes: list[str] = []
    for what, path in _secret_files(cfg):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{what}: {path} is missing")
            fixes.append(f"put {path} back (enrollment writes it) or correct the path")
            continue
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f"{what}: cannot read {path} ({e.__class__.__name__})")
            fixes.append(f"chown root:{SERVICE_USER} {path} && chmod 0640 {path}")
            continue
        if _readable_by_service_user(path) is False:
            problems.append(f"{what}: the {SERVICE_USER} user cannot read {path}")
            fixes.append(f"chown root:{SERVICE_USER} {path} && chmod 0640 {path}")
        if what.startswith("access.keys"):
            try:
                parse_pem(text, what)
            except KeyRuleError as e:
                problems.append(str(e))
                fixes.append(f"replace {path} with the hub's Ed25519 public key (PEM)")
    if problems:
        return failed("keys", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return passed("keys", f"{len(cfg.access.keys)} hub key(s) and the broker files readable")


def clock() -> Check:
    if shutil.which("timedatectl") is None:
        return passed("clock", "not checked: no timedatectl on this machine")
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return passed("clock", f"not checked: timedatectl failed ({e.__class__.__name__})")
    value = out.stdout.strip()
    if out.returncode != 0 or value not in ("yes", "no"):
        return passed("clock", "not checked: systemd-timedated is not running here")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if value == "yes":
        return passed("clock", f"synchronized by NTP ({now})")
    return failed(
        "clock",
        f"not synchronized ({now}): passes are checked against this clock",
        "sudo timedatectl set-ntp true; check that UDP port 123 reaches an NTP server",
    )


def storage(cfg: AgentConfig) -> list[Check]:
    folder = cfg.storage.dir
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        return [
            failed(
                "storage",
                f"{folder} does not exist and this user cannot make it",
                f"sudo install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0750 {folder}",
            )
        ]
    usage = shutil.disk_usage(existing)
    free_mb = usage.free // (1024 * 1024)
    out = [
        passed("disk", f"{free_mb} MB free on the journal's disk")
        if usage.free >= MIN_FREE_BYTES
        else failed(
            "disk",
            f"only {free_mb} MB free on the journal's disk",
            "free space: sudo journalctl --vacuum-size=100M; remove old files under /var",
        )
    ]
    db = folder / "journal.db"
    if not db.exists():
        out.append(passed("journal", "no journal yet (the agent makes it at its first start)"))
        return out
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            verdict = [r[0] for r in con.execute("PRAGMA integrity_check")]
            depth, oldest = con.execute(
                "SELECT count(*), min(ts) FROM events WHERE delivered = 0"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        return [
            *out,
            failed(
                "journal",
                f"cannot read {db}: {e}",
                f"stop the agent, copy {db} aside and run: sqlite3 {db} 'PRAGMA integrity_check'",
            ),
        ]
    if verdict != ["ok"]:
        out.append(
            failed(
                "journal",
                f"{db} is damaged: {'; '.join(verdict[:3])}",
                "stop the agent, keep a copy of the file, then: sqlite3 journal.db .recover",
            )
        )
    else:
        out.append(passed("journal", f"{db} intact"))
    out.append(_outbox(depth, oldest))
    return out


def _outbox(depth: int, oldest: str | None) -> Check:
    if not depth:
        return passed("outbox", "every event delivered to the hub")
    age = None
    if oldest:
        try:
            then = dt.datetime.fromisoformat(oldest.replace("Z", "+00:00"))
            age = (dt.datetime.now(dt.UTC) - then).total_seconds()
        except ValueError:
            age = None
    if age is not None and age > OUTBOX_LAG_S:
        return failed(
            "outbox",
            f"{depth} event(s) not delivered, the oldest {int(age // 60)} min old",
            "see the hub check below; the events wait safely in the journal meanwhile",
        )
    return passed("outbox", f"{depth} event(s) on their way to the hub")


def _device_paths(cfg: AgentConfig) -> Iterator[tuple[str, Path]]:
    for d in cfg.devices:
        port = getattr(d, "port", None)
        if isinstance(port, Path):
            yield d.id, port
        connection_port = getattr(getattr(d, "connection", None), "port", None)
        if isinstance(connection_port, Path):
            yield d.id, connection_port
        path = getattr(d, "path", None)
        if isinstance(path, Path):
            yield d.id, path


def ports(cfg: AgentConfig) -> list[Check]:
    out = []
    for device, path in _device_paths(cfg):
        name = f"port {device}"
        if not path.exists():
            out.append(
                failed(
                    name,
                    f"{path} is missing",
                    "plug the device in (another USB socket, another cable) and check the udev "
                    "rule that names it (docs/install.md)",
                )
            )
        elif not stat.S_ISCHR(path.stat().st_mode):
            out.append(failed(name, f"{path} is not a device", "correct the port in the config"))
        elif not os.access(path, os.R_OK | os.W_OK):
            out.append(
                failed(
                    name,
                    f"no permission to open {path}",
                    f"sudo usermod -aG dialout,input {SERVICE_USER} (then restart the agent)",
                )
            )
        else:
            out.append(passed(name, f"{path} present"))
    return out


def gpio(cfg: AgentConfig) -> list[Check]:
    boards = [d for d in cfg.devices if d.kind == "gpio" and d.pin_factory != "mock"]
    if not boards:
        return []
    chips = sorted(Path("/dev").glob("gpiochip*"))
    if not chips:
        return [
            failed(
                "gpio",
                "no /dev/gpiochip*: this is not a Pi, or the kernel lacks GPIO",
                "run on the Pi, or set pin_factory: mock to test without hardware",
            )
        ]
    blocked = [str(c) for c in chips if not os.access(c, os.R_OK | os.W_OK)]
    if blocked:
        return [
            failed(
                "gpio",
                f"no permission to open {', '.join(blocked)}",
                f"sudo usermod -aG gpio {SERVICE_USER} (then restart the agent)",
            )
        ]
    return [passed("gpio", f"{', '.join(str(c) for c in chips)} open to this user")]


def service() -> Check:
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return passed("service", "not checked: systemd is not running this machine")
    out = subprocess.run(
        ["systemctl", "is-active", UNIT], capture_output=True, text=True, timeout=5
    )
    state = out.stdout.strip() or "unknown"
    if state == "active":
        return passed("service", f"{UNIT} is active")
    return failed(
        "service",
        f"{UNIT} is {state}",
        f"sudo systemctl enable --now {UNIT}; see why it stopped: journalctl -u {UNIT} -n 50",
    )
