from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.clock import Clock
from agent.journal import Journal


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
async def journal(db_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(db_path, "demo-001", Clock())
    yield j
    await j.close()
