"""The benchmarks' floors run and report in the one shape (bench/floors/figure.py)."""

from __future__ import annotations

from pathlib import Path

from bench.floors import sqlite_insert
from bench.floors.figure import beside


def test_a_figure_carries_its_floor_and_the_ratio() -> None:
    f = beside("x", 3.0, "ms", "bare", 1.5, better="lower")
    assert f["floor"] == {"name": "bare", "value": 1.5} and f["ratio"] == 2.0


def test_the_sqlite_floor_measures_durable_commits(tmp_path: Path) -> None:
    single = sqlite_insert.single_commits(tmp_path, n=20)
    grouped = sqlite_insert.grouped(tmp_path, rows=2000, per_commit=500)
    assert single["p50_ms"] > 0 and grouped["rows_per_s"] > 0
