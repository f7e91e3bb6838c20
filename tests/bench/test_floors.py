"""The benchmarks' floors run and report in the one shape (bench/floors/figure.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.floors import import_rss, pg_insert, sqlite_insert, tb_gateway
from bench.floors.figure import beside, is_figure
from tests.support.hub import make_events
from tests.support.postgres import postgres_database


def test_a_figure_carries_its_floor_the_ratio_and_whether_the_target_is_met() -> None:
    f = beside("x", 3.0, "ms", "bare", 1.5, better="lower", target_ratio=2.5)
    assert f["floor"] == {"name": "bare", "value": 1.5} and f["ratio"] == 2.0
    assert f["met"] is True and is_figure(f)
    rate = beside("y", 40.0, "/s", "peer", 80.0, better="higher", target_ratio=1.0)
    assert rate["ratio"] == 0.5 and rate["met"] is False
    assert beside("z", 1.0, "ms", "bare", 1.0, better="lower")["met"] is None


def test_a_figure_without_a_measured_floor_is_not_the_shape() -> None:
    assert not is_figure(beside("x", 3.0, "ms", "bare", 0.0, better="lower"))
    assert not is_figure({"name": "x", "value": 3.0, "unit": "ms"})


def test_the_sqlite_floor_measures_durable_commits(tmp_path: Path) -> None:
    single = sqlite_insert.single_commits(tmp_path, n=20)
    grouped = sqlite_insert.grouped(tmp_path, rows=2000, per_commit=500)
    assert single["p50_ms"] > 0 and grouped["rows_per_s"] > 0


def test_the_thingsboard_equivalent_stores_every_event(tmp_path: Path) -> None:
    result = tb_gateway.storage_rate(tmp_path, 3000, install=False)
    assert result["events"] == 3000 and result["events_per_s"] > 0
    if result["peer"] == "equivalent":
        assert result["why"]  # the fallback says why the real peer did not run


def test_the_postgresql_floor_stores_the_rows_both_ways() -> None:
    with postgres_database() as url:
        batches = [make_events(first, 100) for first in range(1, 301, 100)]
        result = asyncio.run(pg_insert.insert_rates(url, batches, in_flight=2))
    assert result["rows"] == 300 and result["batch"] == 100
    assert result["insert_rows_per_s"] > 0 and result["copy_rows_per_s"] > 0


def test_the_import_floor_grows_with_each_package() -> None:
    found = import_rss.breakdown(["yaml"], steps=True)
    assert [s["step"] for s in found["steps"]][:2] == ["python + asyncio", "+ yaml"]
    assert found["python_mb"] < found["imports_mb"] <= found["with_our_code_mb"] + 1
