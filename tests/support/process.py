"""What every test handle on a real subprocess shares: its log, a clean stop (SIGTERM,
or another signal) that fails the test if the program does not exit in time, and use
as a context manager."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Self


class ProcessHandle:
    proc: subprocess.Popen[bytes]
    log_path: Path
    name = "process"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Signal the program and wait for it; kills it (and raises) after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TimeoutError(f"{self.name} did not stop within {timeout} s") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
