"""SIGKILL in the middle of a stream of appends loses nothing that was acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.clock import Clock
from agent.journal import Journal

WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(path: Path, acks_before_kill: int) -> dict[int, int]:
    """Start the writer, kill -9 it once it has acknowledged that many appends; every
    acknowledged (seq, n) it printed before dying."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    acked: dict[int, int] = {}
    deadline = time.monotonic() + 20
    try:
        assert proc.stdout is not None
        while len(acked) < acks_before_kill:
            line = proc.stdout.readline()
            assert line, f"writer died: {proc.stderr.read().decode() if proc.stderr else ''}"
            seq, n = map(int, line.split())
            acked[seq] = n
            assert time.monotonic() < deadline, "writer too slow"
        proc.send_signal(signal.SIGKILL)  # mid-stream: appends are in flight right now
        rest, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in rest.decode().splitlines():  # acknowledged just before the kill landed
        if line.count(" ") == 1 and line.endswith(tuple("0123456789")):
            seq, n = map(int, line.split())
            acked[seq] = n
    assert proc.returncode == -signal.SIGKILL
    return acked


async def test_every_acknowledged_event_survives_sigkill_and_no_seq_is_reused(
    db_path: Path,
) -> None:
    acked = run_and_kill(db_path, 2000)
    acked.update(run_and_kill(db_path, 1000))  # killed twice: recovery of a recovered file

    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        stored = {e.seq: e for e in await j.events_after(0, 1_000_000)}
        state = await j.load_state()
        after = await j.append("sale.completed", {"after": "crash"})

    for seq, n in acked.items():
        assert seq in stored, f"acknowledged seq {seq} lost"
        assert stored[seq].data == {"n": n}
    assert after.seq > max(acked)
    assert state.last_seq >= max(acked)
    # Each event's setting was written in its transaction: the two agree after the crash.
    assert state.settings["last"] == stored[max(stored)].data["n"]
