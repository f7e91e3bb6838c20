"""Config files for the loader tests: a small valid config and real hub key files."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# A small valid config; tests change lines of it and assert the line numbers reported.
BASE = """\
store:
  id: shop-1
storage:
  dir: data
access:
  keys:
    - kid: k1
      pem_file: keys/hub.pub.pem
hub:
  url: https://hub.test
  token: tok-0123456789abcdef
mqtt: {url: "mqtt://broker.test"}
devices:
  - id: bus
    kind: lockbus
    port: /dev/ttyUSB0
    boards: [1]
  - id: scan
    kind: scanner
    port: /dev/ttyACM0
doors:
  - id: front
    lock: {type: lockboard, device: bus, board: 1, channel: 1}
    contact: {type: lock_feedback}
    scanner: scan
"""


def public_pem() -> bytes:
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)
