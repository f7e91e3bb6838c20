"""Fixtures for the config loader tests: a store folder with a real hub public key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from tests.agent.config.config_files import public_pem


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hub.pub.pem").write_bytes(public_pem())
    return tmp_path


@pytest.fixture
def problems(store_dir: Path) -> Callable[..., list[str]]:
    """Write YAML to store_dir/agent.yaml and return the problems load_config reports,
    each as `LINE: key: message` (the file name is checked elsewhere)."""

    def run(text: str, environ: dict[str, str] | None = None) -> list[str]:
        file = store_dir / "agent.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        try:
            load_config(file, environ=environ or {})
        except ConfigError as e:
            assert all(str(p).startswith(f"{file}:") for p in e.problems)
            return [str(p).removeprefix(f"{file}:") for p in e.problems]
        return []

    return run
