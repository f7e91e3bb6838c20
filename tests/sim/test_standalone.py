"""The simulator stands on its own: none of its modules imports the agent or the hub, so a
misreading of a protocol or a bug above the codecs cannot be shared by both ends."""

from __future__ import annotations

import subprocess
import sys

IMPORT_ALL_WITHOUT_AGENT = """
import importlib, pkgutil, sys
sys.modules["agent"] = None  # any `import agent...` now raises ImportError
sys.modules["cloud"] = None
import shopgate_sim
for m in pkgutil.iter_modules(shopgate_sim.__path__):
    importlib.import_module("shopgate_sim." + m.name)
"""


def test_every_simulator_module_imports_without_the_agent() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_AGENT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
