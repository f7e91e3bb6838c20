"""The store services run in an in-process agent on a fresh simulator per test: tests fault
its devices (stuck compartments, jams, paper out) and count what they did (unlocks, vends,
printed jobs), so no two tests share one (it has no reset)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sim import SimHandle, start_sim


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_sim(tmp_path) as handle:
        yield handle
