"""Access latency, idle memory and start-up time of the real agent. Prints JSON.

The agent runs as its own process with journaling on (fsync per decision). This
script plays the hardware on pseudo-terminals: it writes a scanned pass on the
scanner's line and times until the lock board receives the OPEN frame, answering
every frame as a board would. That span (scan line written -> lock frame read back)
contains the agent's own span (scan line read -> lock frame written) plus two pty hops,
so it is an upper bound of the target's measure. The agent's own figure for that span
(from ScanRead.read_ns to the frame's write) is read from its log at shutdown.

Targets (2-core machine): p50 <= 0.5 ms, p99 <= 2 ms over >= 2,000 scans; idle RSS
<= 60 MB; start to READY <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tty
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench.floors

from agent.devices.protocols import lockboard as lb  # noqa: E402
from bench.floors import import_rss  # noqa: E402
from bench.floors.figure import beside  # noqa: E402
from cloud.signing import load_private_key, mint_pass, write_keypair  # noqa: E402

# What `shopgate-agent run` imports; escpos is imported when the printer driver opens
# (config.yaml has a printer), so the floor names it too.
AGENT_ENTRIES = ["agent.cli", "agent.app", "runtime.logging", "escpos.printer"]


def open_pty(link: Path) -> int:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    link.symlink_to(os.ttyname(slave))
    return master  # the slave fd stays open (leaked on purpose) so the pty never hangs up


class Board:
    """Answers lock board frames on the bus pty; notes when an OPEN frame arrives."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = lb.RequestDecoder()
        self.opens: list[int] = []

    def pump(self, timeout: float) -> None:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return
        now = time.perf_counter_ns()
        data = os.read(self.fd, 4096)
        for req in self.decoder.feed(data):
            if isinstance(req, lb.FrameError):
                continue
            if isinstance(req, lb.OpenLock):
                self.opens.append(now)
                reply = lb.encode_reply(lb.LockStatus(req.board, req.lock, True), to=req)
            elif isinstance(req, lb.QueryLock):
                reply = lb.encode_reply(lb.LockStatus(req.board, req.lock, True), to=req)
            else:
                reply = lb.encode_reply(lb.BoardStatus(req.board, (True,) * 24), to=req)
            os.write(self.fd, reply)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="tiny run: the JSON's shape only")
    args = ap.parse_args()
    if args.smoke:
        args.scans = 20
    run = Path(tempfile.mkdtemp(prefix="shopgate-bench-"))
    (run / "sim").mkdir()
    write_keypair(run / "keys", "demo")
    key, kid = load_private_key(run / "keys" / "hub-signing.pem")
    bus = Board(open_pty(run / "sim" / "lockbus-1"))
    scanner = open_pty(run / "sim" / "scanner-front")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(run / "notify.sock"))
    env = {**os.environ, "SHOPGATE_RUN": str(run), "NOTIFY_SOCKET": str(run / "notify.sock")}
    exe = Path(sys.executable).with_name("shopgate-agent")
    t_start = time.perf_counter()
    proc = subprocess.Popen(
        [
            str(exe),
            "run",
            "--config",
            str(REPO / "config.yaml"),
            "--log-level",
            "INFO",
            "--log-format",
            "json",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=open(run / "agent.log", "wb"),
    )
    notify.settimeout(0.001)
    ready_s = None
    while ready_s is None:
        bus.pump(0.001)
        try:
            if b"READY=1" in notify.recv(4096):
                ready_s = time.perf_counter() - t_start
        except TimeoutError:
            pass
        if proc.poll() is not None or time.perf_counter() - t_start > 20:
            raise SystemExit(
                f"agent did not become ready:\n{(run / 'agent.log').read_text()[-2000:]}"
            )
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline:
        bus.pump(0.01)
    rss_kb = import_rss.process_rss_kb(proc.pid)
    lazily = [m for m in import_rss.mapped_packages(proc.pid) if m not in AGENT_ENTRIES]

    now = time.time()
    passes = [
        mint_pass(
            key,
            kid,
            store="demo-001",
            scope="entry",
            sub=f"c{i}",
            jti=uuid.uuid4().hex,
            ttl=3600,
            now=now,
        )
        for i in range(args.scans + 50)
    ]
    latencies: list[float] = []
    for i, p in enumerate(passes):
        before = len(bus.opens)
        t0 = time.perf_counter_ns()
        os.write(scanner, p.encode() + b"\r\n")
        limit = time.perf_counter() + 2
        while len(bus.opens) == before and time.perf_counter() < limit:
            bus.pump(0.002)
        if len(bus.opens) == before:
            raise SystemExit(
                f"scan {i} did not open the door:\n{(run / 'agent.log').read_text()[-2000:]}"
            )
        if i >= 50:  # warm-up
            latencies.append((bus.opens[-1] - t0) / 1e6)
        for _ in range(3):  # let the agent finish journaling door.unlocked before the next scan
            bus.pump(0.0005)
    proc.terminate()
    t_stop = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - t_stop < 10:
        bus.pump(0.01)
    # The floor after the scans, so that its processes do not share the CPU with them.
    rss_floor = import_rss.breakdown(AGENT_ENTRIES + lazily, steps=not args.smoke)
    inside = {}
    for line in (run / "agent.log").read_text().splitlines():
        if '"access_latency"' in line:
            inside = json.loads(line)["access_latency"]
    print(
        json.dumps(
            {
                "bench": "access",
                "scans": len(latencies),
                # the target's measure, taken by the agent: scan line read -> lock frame written
                "agent_read_to_frame_ms": inside,
                # outside bound: scan written to the pty -> frame read back from the bus pty
                "scan_to_lock_frame_ms": {
                    "p50": round(statistics.median(latencies), 3),
                    "p99": round(percentile(latencies, 99), 3),
                    "max": round(max(latencies), 3),
                    "mean": round(statistics.fmean(latencies), 3),
                },
                "targets_ms": {"p50": 0.5, "p99": 2.0},
                "idle_rss_mb": round(rss_kb / 1024, 1),
                "rss_floor": rss_floor,
                "start_to_ready_s": round(ready_s, 3),
                "stop_s": round(time.perf_counter() - t_stop, 3),
                "exit_code": proc.returncode,
                "figures": [
                    beside(
                        "agent idle RSS, demo config",
                        rss_kb / 1024,
                        "MB",
                        "python + the agent's third-party imports alone",
                        rss_floor["imports_mb"],
                        better="lower",
                    ),
                    beside(
                        "agent idle RSS, demo config",
                        rss_kb / 1024,
                        "MB",
                        "python + asyncio alone",
                        rss_floor["python_mb"],
                        better="lower",
                    ),
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
