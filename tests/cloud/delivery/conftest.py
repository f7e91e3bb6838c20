"""Fixtures for the hub's order delivery tests: a real mosquitto and a hub signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.mqtt.harness import Keys, make_keys
from tests.support.broker import BrokerHandle, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    handle = start_broker(tmp_path)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path)
