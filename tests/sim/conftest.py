from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sim import SimHandle, start_sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """One simulator per test module: tests read state deltas, never absolute counts."""
    handle = start_sim(tmp_path_factory.mktemp("sim"))
    yield handle
    rc = handle.stop()
    assert rc == 0, handle.log()


@pytest.fixture
def fresh_sim(tmp_path: Path) -> Iterator[SimHandle]:
    handle = start_sim(tmp_path)
    yield handle
    handle.stop()
