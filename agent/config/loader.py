"""Load and check the agent's YAML config (runtime/config/loader.py does the reading, with
line numbers): the schema, then the cross references, the hub key files, the hub's
address and the revoked keys. Every problem at once, each with its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.config.schema import AgentConfig, reference_problems
from agent.config.trust import hub_problems, revocation_problems
from runtime.config import loader
from runtime.config.yamltree import Loc


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The validated config in `path`, or ConfigError listing every problem found.

    `environ` (default: os.environ) supplies `${VAR}` values. Relative paths in the
    config resolve against the folder of `path`.
    """
    return loader.load_model(
        path,
        AgentConfig,
        lambda cfg: [
            *reference_problems(cfg),
            *_key_file_problems(cfg),
            *hub_problems(cfg),
            *revocation_problems(cfg),
        ],
        environ,
    )


def _key_file_problems(cfg: AgentConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    kids: dict[str, int] = {}
    for i, key in enumerate(cfg.access.keys):
        if key.kid in kids:
            out.append((("access", "keys", i, "kid"), f"duplicate key id {key.kid!r}"))
        kids[key.kid] = i
        message = _public_key_problem(key.pem_file)
        if message:
            out.append((("access", "keys", i, "pem_file"), message))
    return out


def _public_key_problem(pem_file: Path) -> str | None:
    try:
        pem = pem_file.read_bytes()
    except OSError as e:
        return f"cannot read key file {pem_file}: {e.strerror or e}"
    try:
        key = load_pem_public_key(pem)
    except Exception:  # cryptography raises several exception types for bad input
        if b"PRIVATE KEY-----" in pem:
            return (
                f"{pem_file} holds a private key; give the hub's public key "
                "(hub-signing.pub.pem) and keep the private key on the hub"
            )
        return f"{pem_file} is not a PEM public key (-----BEGIN PUBLIC KEY-----)"
    if not isinstance(key, Ed25519PublicKey):
        kind = type(key).__name__.lstrip("_").removesuffix("PublicKey")
        return f"{pem_file} holds a public key of type {kind}; hub keys are Ed25519"
    return None


def check_config_main(path: Path) -> int:
    """`shopgate-agent check-config`: print `ok` (0) or one line per problem (2)."""
    return loader.check_config_main(path, load_config)
