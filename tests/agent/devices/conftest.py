"""Fixtures for the device driver tests (helpers live in tests/support/pty_devices.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.pty_devices import Events


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def port_path(tmp_path: Path) -> AsyncIterator[Path]:
    yield tmp_path / "ttyDEVICE"
