"""Every benchmark with a floor runs in its tiny smoke mode and prints its figures beside
their floors, in the one shape (bench/floors/figure.py): a bench that loses its floor, or
prints a ratio that does not follow from its figure and floor, fails here, not in a
5-minute `make bench`. The four run at once: most of their time is waiting on processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.floors.figure import is_figure

REPO = Path(__file__).resolve().parents[2]
# bench -> the floors its figures must stand beside (words of the floors' names)
BENCHES = {
    "journal.py": ["bare sqlite3 insert", "ThingsBoard"],
    "mqtt_rtt.py": ["bare paho"],
    "hub.py": ["aiohttp hello-world", "third-party imports alone"],
    "access.py": ["third-party imports alone", "python + asyncio"],
}
EXTRA_ARGS = {"hub.py": ["--skip-pg"]}  # PostgreSQL's floor: test_floors.py


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(REPO / "bench" / name), "--smoke", *EXTRA_ARGS.get(name, [])],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in BENCHES
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    yield done


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_each_figure_stands_beside_its_floor(
    bench: str, outputs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    run = outputs[bench]
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout)["figures"]
    assert figures and all(is_figure(f) for f in figures), figures
    for f in figures:
        assert f["ratio"] == pytest.approx(f["value"] / f["floor"]["value"], rel=0.01, abs=0.002)
    floors = " | ".join(f["floor"]["name"] for f in figures)
    for word in BENCHES[bench]:
        assert word in floors, f"{bench}: no floor named {word!r} in {floors}"


def test_a_target_ratio_says_whether_it_was_met(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    hub = json.loads(outputs["hub.py"].stdout)["figures"]
    cpu = next(f for f in hub if f["name"].startswith("hub CPU per signed push"))
    assert cpu["target_ratio"] == 8.0
    assert cpu["met"] == (cpu["ratio"] <= 8.0)
