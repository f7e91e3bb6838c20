from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import Keys, make_keys
from tests.support.sim import SimHandle, start_sim


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def keys(run_dir: Path) -> Keys:
    return make_keys(run_dir)


@pytest.fixture
def sim(run_dir: Path) -> Iterator[SimHandle]:
    with start_sim(run_dir) as handle:
        yield handle
