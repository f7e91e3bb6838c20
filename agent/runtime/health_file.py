"""The running agent's own view of its links, in a small file beside the journal.

`shopgate-agent doctor` reads it instead of connecting as the store: the broker gives a
store's username one session at a time (use_username_as_clientid), so a diagnostic
logging in as the store would throw the running agent off the broker. The agent rewrites
the file every few seconds; one older than STALE_S, or whose pid is gone, is not read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

NAME = "health.json"
STALE_S = 30.0


def write(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically (blocking: run it in a thread)."""
    tmp = path.with_name(f".{path.name}.tmp")
    body = json.dumps({**data, "pid": os.getpid(), "written_at": time.time()})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
    os.replace(tmp, path)


def read_fresh(path: Path, *, now: float | None = None) -> dict[str, Any] | None:
    """The running agent's last health report, or None when no agent is running."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    at = data.get("written_at")
    if not isinstance(at, int | float) or (now or time.time()) - at > STALE_S:
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
