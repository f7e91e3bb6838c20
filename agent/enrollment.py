"""`shopgate-agent enroll CODE --hub URL`: a bare install becomes a configured store
(CONTRACTS section 9).

The agent makes its own Ed25519 key pair, sends the public half with the code, and gets
back who it is, the hub's keys, its credentials and its config. Everything is written
into a fresh folder first, checked by loading it as the agent would, and only then
moved into place: a refused code, an unreachable hub or a config that does not load
leaves nothing behind. Secrets are 0600 (the agent's key) or 0640 root:shopgate.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from agent.config import ConfigError, load_config
from agent.config.trust import is_loopback

PROG = "shopgate-agent enroll"
DEFAULT_CONFIG_DIR = Path("/etc/shopgate")
DEFAULT_STATE_DIR = Path("/var/lib/shopgate")
SERVICE_USER = "shopgate"
TIMEOUT_S = 20.0


class EnrollError(Exception):
    """Enrollment did not happen; the message says why and what to do."""


def check_hub_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnrollError(f"--hub {url!r} is not a URL like https://hub.example.com")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise EnrollError(
            f"--hub {url}: use https (the store's credentials come back over this link); "
            "plain http only for a hub on this machine"
        )
    return url.strip().rstrip("/")


def redeem(hub: str, code: str, public_pem: str) -> dict[str, Any]:
    """The hub's bundle for this code, or EnrollError with the hub's reason."""
    body = json.dumps({"code": code, "public_key": public_pem}).encode()
    request = urllib.request.Request(
        f"{hub}/api/v1/enroll",
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(
            request, timeout=TIMEOUT_S, context=ssl.create_default_context()
        ) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise EnrollError(_refusal(e)) from None
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise EnrollError(f"cannot reach the hub at {hub}: {reason}") from None
    except ValueError:
        raise EnrollError(
            f"the hub at {hub} did not answer with JSON: is it a shopgate hub?"
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("store"), dict):
        raise EnrollError(f"the hub at {hub} sent an answer this agent cannot read")
    return answer


def _refusal(e: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(e.read()).get("error", {})
        code, message = error.get("code", ""), error.get("message", "")
    except (ValueError, AttributeError, OSError):
        code, message = "", ""
    if e.code == 429:
        wait = e.headers.get("Retry-After", "?")
        return f"the hub refused: too many wrong codes from this address; try again in {wait} s"
    if code in ("unknown_code", "used_code", "expired_code"):
        return f"the hub refused the code ({code}): {message}"
    return f"the hub answered {e.code}{f' ({code})' if code else ''}: {message or e.reason}"


def compose(
    bundle: dict[str, Any], hub: str, state_dir: Path
) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    """(config, {relative file name: (text, mode)}) from the hub's bundle."""
    files: dict[str, tuple[str, int]] = {}
    config: dict[str, Any] = dict(bundle.get("config") or {})
    config["store"] = bundle["store"]
    config["storage"] = {"dir": str(state_dir)}
    keys = []
    for k in bundle.get("keys") or []:
        name = f"keys/hub-{k['kid']}.pub.pem"
        files[name] = (k["pem"], 0o644)
        keys.append({"kid": k["kid"], "pem_file": name})
    config["access"] = {**(config.get("access") or {}), "keys": keys}
    config["hub"] = {"url": hub, "token": bundle.get("token") or ""}
    m = bundle.get("mqtt") or {}
    mqtt: dict[str, Any] = {"url": m.get("url"), "topic_root": m.get("topic_root", "shopgate")}
    if m.get("username"):
        mqtt["username"] = m["username"]
    if m.get("password"):
        files["mqtt.pw"] = (m["password"] + "\n", 0o640)
        mqtt["password_file"] = "mqtt.pw"
    if m.get("ca_pem"):
        files["mqtt-ca.pem"] = (m["ca_pem"], 0o644)
        mqtt["tls"] = {"ca_file": "mqtt-ca.pem"}
    config["mqtt"] = mqtt
    return config, files


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)  # whatever the umask took away


def _give_to_service_user(path: Path, mode: int) -> None:
    """As root: private files to shopgate, group-readable ones to root:shopgate."""
    if os.geteuid() != 0:
        return
    try:
        uid = pwd.getpwnam(SERVICE_USER).pw_uid
        gid = grp.getgrnam(SERVICE_USER).gr_gid
    except KeyError:
        return  # no service user here (a development machine)
    os.chown(path, uid if mode == 0o600 else 0, gid)


def enroll(
    code: str, hub: str, config_dir: Path, state_dir: Path | None = None, force: bool = False
) -> Path:
    hub = check_hub_url(hub)
    target = config_dir / "config.yaml"
    if target.exists() and not force:
        raise EnrollError(f"{target} exists: this store is enrolled (--force replaces it)")
    if state_dir is None:
        state_dir = DEFAULT_STATE_DIR if config_dir == DEFAULT_CONFIG_DIR else config_dir / "state"
    key = Ed25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    bundle = redeem(hub, code, public_pem.decode())
    config, files = compose(bundle, hub, state_dir.resolve())
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    files["agent-key.pem"] = (private_pem.decode(), 0o600)
    files["config.yaml"] = (
        "# Written by `shopgate-agent enroll`; docs/config.md lists every key.\n"
        + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
        0o640,
    )
    config_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".enroll-", dir=config_dir))
    try:
        for name, (text, mode) in files.items():
            _write(staging / name, text, mode)
        try:
            load_config(staging / "config.yaml", environ={})
        except ConfigError as e:
            raise EnrollError(
                f"the config the hub sent for store {bundle['store'].get('id')} does not "
                f"load; fix the store's config at the hub and make a new code:\n{e}"
            ) from None
        for name, (_, mode) in files.items():
            dest = config_dir / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, dest)
            _give_to_service_user(dest, mode)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def enroll_main(
    code: str, hub: str, config_dir: Path | None, state_dir: Path | None, force: bool
) -> int:
    try:
        path = enroll(code, hub, config_dir or DEFAULT_CONFIG_DIR, state_dir, force=force)
    except EnrollError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{PROG}: cannot write {where}{e.strerror or e}", file=sys.stderr)
        return 2
    cfg = load_config(path)
    print(f"enrolled as store {cfg.store.id}: {path}")
    print("start it: sudo systemctl enable --now shopgate-agent; check: shopgate-agent doctor")
    return 0
