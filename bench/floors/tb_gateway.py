"""The peer of the agent's journal: ThingsBoard IoT Gateway's SQLite event storage
(thingsboard-gateway 3.8.5, `SQLiteEventStorage`), the store-and-forward buffer of the
most used open-source edge gateway, fed the same events in the same run.

It is installed into a throwaway virtual environment under the bench cache
(`.run/bench-cache/`, or `$SHOPGATE_BENCH_CACHE`) the first time it is needed; it is not a
dependency of shopgate. The storage is measured in that venv's Python, in a child
process: `put()` every event (it only queues them) and time until the storage's writer
thread has them all in its database (batches of up to 1,000 per commit, WAL with
synchronous=NORMAL: not fsynced per batch, so not durable across a power cut, where the
journal acknowledges an append only after its fsync).

Where the package cannot be installed (no registry reachable, a build failure), the
fallback is a documented equivalent: the same design with the standard library, one
writer thread draining a queue into the same table in batches of up to 1,000 under the
same pragmas, and the result says which one ran and why.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

VERSION = "3.8.5"
REPO = Path(__file__).resolve().parents[2]
EVENT = {
    "type": "access.granted",
    "ts": "2026-01-01T00:00:00.000Z",
    "data": {"door": "front", "subject": "courier-1234", "reason": "granted", "scope": "pickup"},
}


def cache_dir() -> Path:
    return Path(os.environ.get("SHOPGATE_BENCH_CACHE") or REPO / ".run" / "bench-cache")


def venv_python(install: bool = True) -> tuple[Path | None, str]:
    """(the throwaway venv's python, "") or (None, why not)."""
    venv = cache_dir() / f"thingsboard-gateway-{VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python, ""
    if not install:
        return None, "not installed yet (a full `make bench` installs it)"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"thingsboard-gateway=={VERSION}"],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not create the venv: {e}"
    if done.returncode != 0:
        tail = " ".join(line for line in done.stderr.splitlines()[-3:] if line.strip())
        return None, f"pip install thingsboard-gateway=={VERSION} failed: {tail}"
    marker.touch()
    return python, ""


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def _wait_stored(db: Path, events: int, start: float) -> float:
    while _stored(db) < events:
        if time.perf_counter() - start > 300:
            raise RuntimeError("the storage did not write every event in 300 s")
        time.sleep(0.005)
    return time.perf_counter() - start


def _run_thingsboard(folder: Path, events: int) -> dict[str, Any]:
    """In the throwaway venv's Python: thingsboard_gateway is importable there only."""
    import logging

    from thingsboard_gateway.storage.sqlite.sqlite_event_storage import SQLiteEventStorage
    from thingsboard_gateway.tb_utility.tb_logger import TbLogger

    logging.setLoggerClass(TbLogger)  # the storage logs at its own TRACE level
    log = logging.getLogger("bench-storage")
    log.setLevel(logging.ERROR)
    config = {"data_file_path": f"{folder}/", "writing_batch_size": 1000, "size_limit": 4096}
    storage = SQLiteEventStorage(config, log, threading.Event())
    messages = [json.dumps({**EVENT, "seq": n}) for n in range(events)]
    start = time.perf_counter()
    for m in messages:
        storage.put(m)
    elapsed = _wait_stored(folder / "data.db", events, start)
    storage.stop()
    return {"events": events, "events_per_s": events / elapsed, "peer": f"thingsboard {VERSION}"}


def _run_equivalent(folder: Path, events: int) -> dict[str, Any]:
    """The same design as SQLiteEventStorage with the standard library (see module doc)."""
    db = folder / "data.db"
    con = sqlite3.connect(db, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-20000"):
        con.execute(f"PRAGMA {pragma}")
    con.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "timestamp INTEGER NOT NULL, message TEXT NOT NULL)"
    )
    con.execute("CREATE INDEX idx_timestamp ON messages (timestamp)")
    con.commit()
    pending: queue.Queue[str] = queue.Queue()
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            batch = []
            now = int(time.time() * 1000)
            while len(batch) < 1000:
                try:
                    batch.append((now, pending.get(timeout=0.01)))
                except queue.Empty:
                    break
            if batch:
                con.executemany("INSERT INTO messages (timestamp, message) VALUES (?, ?)", batch)
                con.commit()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    messages = [json.dumps({**EVENT, "seq": n}) for n in range(events)]
    start = time.perf_counter()
    for m in messages:
        pending.put_nowait(m)
    elapsed = _wait_stored(db, events, start)
    done.set()
    thread.join()
    con.close()
    return {"events": events, "events_per_s": events / elapsed, "peer": "equivalent"}


def storage_rate(folder: Path, events: int, *, install: bool = True) -> dict[str, Any]:
    """Events per second into ThingsBoard gateway's SQLite storage, or into the
    equivalent when it cannot be installed ("peer" and "why" say which and why)."""
    folder.mkdir(parents=True, exist_ok=True)
    python, why = venv_python(install)
    if python is not None:
        out = subprocess.run(
            [str(python), __file__, str(folder), str(events)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode == 0:
            return json.loads(out.stdout)
        why = f"the storage failed in its venv: {out.stderr.strip().splitlines()[-1:]}"
    result = _run_equivalent(folder, events)
    result["why"] = why
    return result


if __name__ == "__main__":
    print(json.dumps(_run_thingsboard(Path(sys.argv[1]), int(sys.argv[2]))))
