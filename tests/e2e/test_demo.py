"""`make demo` end to end: `python -m demo` starts its own broker, hub, simulator and
agent, plays the whole story (door, courier, remote unlock, a Meituan order with its pick
slip, the locker, the catalog, the vending machine and its jam, the stock ledger and the
dashboard), exits 0 and leaves no process behind. The story asserts each step itself;
this test checks what a user reads and what the store journaled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.journal.view import JournalView

REPO = Path(__file__).resolve().parents[2]


def processes_with_run_dir(run_dir: Path) -> list[str]:
    wanted = f"SHOPGATE_RUN={run_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone meanwhile, or not ours
    return found


def test_the_demo_plays_the_whole_story_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "SHOPGATE_RUN": str(tmp_path)}
    env.pop("SHOPGATE_MERCHANT_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"

    # What the user reads, scene by scene.
    assert "-> REFUSED: bad_signature" in out and "ALARM: door.forced" in out
    assert "printer-1 printed its pick slip" in out
    slip = [line for line in out.splitlines() if line.startswith("   | ")]
    assert "   | 美团外卖" in slip and "   | #27" in slip
    assert any("绿箭口香糖" in line and "x2" in line for line in slip)
    code = next(line.split()[-1] for line in slip if "取货码" in line)
    assert f'QR code on the slip: ["{code}"]' in out
    assert f"the courier types {code} at the door" in out
    assert "rider types #31 and 8415 -> 门已打开 (opened: True)" in out
    assert "the customer takes it and shuts the compartment -> locker.closed" in out
    assert '"slot": 3, "barcode": "6901028075022", "order": null, "by": "shopgate-hub"' in out
    assert "-> vend.failed (jammed): refund ¥2.00 requested" in out
    assert "GET /api/v1/stores/demo-001/stock/6923450657713: 23 on hand" in out
    assert "Meituan was told 'gum' = 23" in out
    assert "log in with the merchant token demo-merchant-token" in out
    assert "lands on /dashboard/stores/demo-001" in out
    assert "/api/v1/openapi.json  (the hub's API: OpenAPI 3.1" in out

    # What the store journaled: the locker and the good vend moved stock, the jam did not.
    journal = JournalView(tmp_path / "agent" / "journal.db")
    [opened] = journal.events("locker.opened")
    assert opened["data"]["slot"] == 3 and opened["data"]["locker"] == "locker-1"
    assert [e["data"]["slot"] for e in journal.events("locker.closed")] == [3]
    assert [e["data"]["slot"] for e in journal.events("vend.completed")] == [4]
    [failed] = journal.events("vend.failed")
    assert failed["data"]["slot"] == 5 and failed["data"]["fault"] == "jammed"
    assert failed["data"]["refund"] == {"amount": 2.0, "order": None, "payment": None}
    moves = [
        (e["data"]["barcode"], e["data"]["delta"], e["data"]["reason"])
        for e in journal.events("stock.changed")
    ]
    assert moves == [("6901028075022", -1, "locker"), ("6923450657713", -1, "vend")]
    # One pick slip per platform order: #27 (the code) and #31 (the rider at the poster).
    assert [j["kind"] for j in journal.print_jobs()] == ["pick_slip", "pick_slip"]

    assert processes_with_run_dir(tmp_path) == []
