"""`shopgate-agent` as installers run it: exit codes and one-line messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import zxingcpp
from PIL import Image

from tests.support.agent import DEMO_CONFIG, make_keys

EXE = str(Path(sys.executable).with_name("shopgate-agent"))


def run(*args: str, env_run: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **({"SHOPGATE_RUN": str(env_run)} if env_run else {})}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=30)


def test_check_config_ok_for_the_demo_store(tmp_path: Path):
    make_keys(tmp_path)
    r = run("check-config", "--config", str(DEMO_CONFIG), env_run=tmp_path)
    assert (r.returncode, r.stdout) == (0, "ok\n")


def test_check_config_lists_every_problem_with_file_line_and_key(tmp_path: Path):
    make_keys(tmp_path)
    bad = tmp_path / "bad.yaml"
    text = DEMO_CONFIG.read_text()
    bad.write_text(
        text.replace("unlock_seconds: 5", "unlock_seconds: soon").replace(
            "held_open_seconds", "held_opne_seconds"
        )
    )
    r = run("check-config", "--config", str(bad), env_run=tmp_path)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert len(lines) == 2, lines
    assert (
        lines[0].startswith(f"{bad}:") and "doors.0.unlock_seconds: expected a number" in lines[0]
    )
    assert "held_opne_seconds" in lines[1] and "held_open_seconds" in lines[1]  # did you mean


def test_check_config_names_a_missing_device(tmp_path: Path):
    make_keys(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DEMO_CONFIG.read_text().replace("scanner: scanner-front", "scanner: scanner-back")
    )
    r = run("check-config", "--config", str(bad), env_run=tmp_path)
    assert r.returncode == 2
    assert (
        "doors.0.scanner" in r.stdout and "scanner-back" in r.stdout and "scanner-front" in r.stdout
    )


def test_door_qr_holds_the_hub_url_of_the_door(tmp_path: Path):
    make_keys(tmp_path)
    out = tmp_path / "front.png"
    r = run(
        "door-qr",
        "--config",
        str(DEMO_CONFIG),
        "--door",
        "front",
        "--out",
        str(out),
        env_run=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    decoded = [b.text for b in zxingcpp.read_barcodes(Image.open(out))]
    assert decoded == ["http://127.0.0.1:8080/s/demo-001/front"]


def test_door_qr_for_an_unknown_door_says_which_doors_exist(tmp_path: Path):
    make_keys(tmp_path)
    r = run(
        "door-qr",
        "--config",
        str(DEMO_CONFIG),
        "--door",
        "back",
        "--out",
        str(tmp_path / "x.png"),
        env_run=tmp_path,
    )
    assert r.returncode == 2 and "front" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_arguments_exit_2_with_one_line():
    r = run("run")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--config" in r.stderr
    assert run("--help").returncode == 0


def test_hash_answer_prints_a_hash_the_config_accepts():
    from storerules.answers import answer_matches

    r = run("hash-answer", "四十二")
    assert r.returncode == 0 and answer_matches("四十二", [r.stdout.strip()])
