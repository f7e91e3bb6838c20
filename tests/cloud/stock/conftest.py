from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import postgres_database


@pytest.fixture(scope="module")
def shared_pg_url() -> Iterator[str]:
    # One database per module, emptied before each test: creating one takes ~0.3 s.
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    return request.getfixturevalue("shared_pg_url")
