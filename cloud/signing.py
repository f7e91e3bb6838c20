"""The hub's Ed25519 signing key, and the passes and commands it signs (CONTRACTS.md 2, 3).

Key files, as `write_keypair` lays them out in one folder:
- `hub-signing.pem`: the private key, PKCS#8 PEM, unencrypted, mode 0600;
- `hub-signing.pub.pem`: the public key (SubjectPublicKeyInfo PEM), what agents list in
  `access.keys`;
- `hub-signing.kid`: the key id, one line.

The default key id is the first 8 hex digits of SHA-256 over the *raw* 32-byte Ed25519
public key (not over its PEM or DER encoding), so it can be recomputed from the public key
alone, whatever its file format.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storerules.lifetimes import MAX_LIFETIME_S

ISSUER = "shopgate-hub"
PRIVATE_KEY_NAME = "hub-signing.pem"
PUBLIC_KEY_NAME = "hub-signing.pub.pem"
KID_NAME = "hub-signing.kid"
PASS_SCOPES = ("entry", "pickup", "staff")
Scope = Literal["entry", "pickup", "staff"]


class SigningError(ValueError):
    """A key file or a signing request that cannot be used; the message says why."""


class KeyExistsError(SigningError):
    """`write_keypair` found a key already there and was not told to replace it."""


@dataclass(frozen=True, slots=True)
class KeyFiles:
    private_key: Path
    public_key: Path
    kid_file: Path
    kid: str


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def default_kid(public_key: Ed25519PublicKey) -> str:
    """First 8 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:8]


def _check_kid(kid: str) -> str:
    kid = kid.strip()
    if not kid or any(c.isspace() for c in kid):
        raise SigningError(f"key id {kid!r} must be one word without spaces")
    return kid


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file created with `mode` and renamed over `path`, so a private
    key is never readable by others, not even for a moment, and a crash leaves no half key."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away; the mode is exact
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_keypair(
    out_dir: Path,
    kid: str | None = None,
    *,
    force: bool = False,
    key: Ed25519PrivateKey | None = None,
) -> KeyFiles:
    """Generate (or take) a key and write its three files into `out_dir`.

    Refuses with `KeyExistsError` when any of the files exists, unless `force`: replacing
    the hub's key locks out every agent that has not been given the new public key.
    """
    out_dir = Path(out_dir)
    files = KeyFiles(
        private_key=out_dir / PRIVATE_KEY_NAME,
        public_key=out_dir / PUBLIC_KEY_NAME,
        kid_file=out_dir / KID_NAME,
        kid="",
    )
    if not force:
        existing = [p for p in (files.private_key, files.public_key, files.kid_file) if p.exists()]
        if existing:
            raise KeyExistsError(
                f"{existing[0]} already exists; refusing to replace the signing key "
                "(use --force to replace it; agents then need the new public key)"
            )
    key = key or generate_key()
    kid = _check_kid(kid) if kid is not None else default_kid(key.public_key())
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_file(files.private_key, private_pem, 0o600)
    _write_file(files.public_key, public_pem, 0o644)
    _write_file(files.kid_file, f"{kid}\n".encode(), 0o644)
    return KeyFiles(files.private_key, files.public_key, files.kid_file, kid)


def kid_file_for(key_path: Path) -> Path:
    """The `.kid` file beside a key: hub-signing.pem -> hub-signing.kid."""
    return Path(key_path).with_suffix(".kid")


def load_private_key(path: Path, kid: str | None = None) -> tuple[Ed25519PrivateKey, str]:
    """Read an Ed25519 private key; its kid is `kid` if given, else the `.kid` file beside it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"{path}: no such key file") from None
    except OSError as e:
        raise SigningError(f"{path}: cannot read the key file ({e.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"{path}: the key is encrypted; an unencrypted key is needed") from None
    except ValueError:
        raise SigningError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    if kid is None:
        kid_path = kid_file_for(path)
        try:
            kid = kid_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SigningError(
                f"{path}: no key id given and {kid_path} does not exist (give --kid)"
            ) from None
        if not kid:
            raise SigningError(f"{kid_path} is empty (give --kid)")
    return key, _check_kid(kid)


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _check_ttl(ttl: int, scope: str) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise SigningError(f"ttl must be a positive number of seconds, not {ttl!r}")
    # The agent refuses a longer-lived token (storerules/lifetimes.py): minting one would
    # only hand out something that cannot open anything.
    cap = MAX_LIFETIME_S.get(scope)
    if cap is not None and ttl > cap:
        what = "commands" if scope == "ops" else f"{scope} passes"
        raise SigningError(
            f"ttl {ttl} s is too long: agents refuse {what} that live more than {cap} s"
        )
    return ttl


def _encode(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    try:
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": _check_kid(kid)})
    except TypeError as e:  # a value that JSON cannot carry
        raise SigningError(f"cannot encode the claims: {e}") from None


def mint_pass(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    store: str,
    scope: Scope,
    sub: str,
    door: str | None = None,
    orders: Iterable[str] | None = None,
    ttl: int = 300,
    now: float | None = None,
    jti: str | None = None,
    nbf: int | None = None,
) -> str:
    """A pass (CONTRACTS.md section 2). `orders` is required, non-empty, for scope pickup
    and refused for the other scopes; `now` (epoch seconds) is for tests."""
    if scope not in PASS_SCOPES:
        raise SigningError(f"scope must be one of {', '.join(PASS_SCOPES)}, not {scope!r}")
    if not store:
        raise SigningError("store must not be empty")
    if not sub:
        raise SigningError("sub must not be empty")
    order_ids = list(orders) if orders is not None else None
    if scope == "pickup":
        if not order_ids:
            raise SigningError("a pickup pass needs at least one order")
        if not all(isinstance(o, str) and o for o in order_ids):
            raise SigningError("order ids must be non-empty strings")
    elif order_ids:
        raise SigningError(f"orders are only for pickup passes, not {scope!r}")
    iat = _now(now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": store,
        "sub": sub,
        "scope": scope,
        "jti": jti or uuid.uuid4().hex,
        "iat": iat,
        "exp": iat + _check_ttl(ttl, scope),
    }
    if nbf is not None:
        claims["nbf"] = int(nbf)
    if door is not None:
        claims["door"] = door
    if scope == "pickup":
        claims["orders"] = order_ids
    return _encode(key, kid, claims)


def sign_command(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    store: str,
    cmd: str,
    args: dict[str, Any] | None = None,
    ttl: int = 60,
    now: float | None = None,
    jti: str | None = None,
    sub: str = ISSUER,
) -> str:
    """A signed remote command (CONTRACTS.md section 3): a pass-shaped JWT with scope
    "ops", `cmd` and `args`. `sub` names who asked (default: the hub itself)."""
    if not store:
        raise SigningError("store must not be empty")
    if not cmd:
        raise SigningError("cmd must not be empty")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise SigningError(f"args must be an object, not {type(args).__name__}")
    iat = _now(now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": store,
        "sub": sub,
        "scope": "ops",
        "jti": jti or uuid.uuid4().hex,
        "iat": iat,
        "exp": iat + _check_ttl(ttl, "ops"),
        "cmd": cmd,
        "args": args,
    }
    return _encode(key, kid, claims)


SYNC_SCOPE = "orders.sync"
RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "scope", "jti", "iat", "exp", "nbf"})


def sign_store_data(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    store: str,
    scope: str,
    claims: dict[str, Any],
    ttl: int = 120,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """Data the hub vouches for to one store (an order list for its sync), signed as a
    command is: `aud` = the store, a `scope` of its own so that it can never pass for a
    pass or a command, a fresh `jti`, `iat` and a short `exp`. `claims` are added beside."""
    if not store:
        raise SigningError("store must not be empty")
    if not scope or scope in PASS_SCOPES or scope == "ops":
        raise SigningError(f"scope {scope!r} is taken by passes and commands")
    clash = RESERVED_CLAIMS & set(claims)
    if clash:
        raise SigningError(f"claims may not set {', '.join(sorted(clash))}")
    iat = _now(now)
    return _encode(
        key,
        kid,
        {
            "iss": ISSUER,
            "aud": store,
            "sub": ISSUER,
            "scope": scope,
            "jti": jti or uuid.uuid4().hex,
            "iat": iat,
            "exp": iat + _check_ttl(ttl, scope),
            **claims,
        },
    )
