"""The floor under a process's memory: a bare Python, then the same Python with the
third-party modules the process imports and nothing else, each step in a fresh process
(bench/access.py for the agent, bench/hub.py for the hub). The steps add one package at
a time, in the order of ORDER, so the breakdown says what each package costs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Ours: what is left after these is the floor (editable installs are not in site-packages
# anyway; this is for a non-editable install).
OWN = {"agent", "cloud", "runtime", "storerules", "shopgate_sim", "bench", "tests"}
# The big ones first, in the order issue 17 quotes them; the rest follow alphabetically.
ORDER = [
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "PIL",
    "escpos",
    "pydantic",
    "pydantic_core",
    "cryptography",
    "jwt",
    "jinja2",
    "yaml",
    "aiomqtt",
    "paho",
]

_RSS = "rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))"


def rss_kb(modules: list[str]) -> int:
    """VmRSS of a fresh Python after importing `modules` (and asyncio, as every service
    here is asyncio)."""
    code = (
        "import asyncio, importlib, sys\n"
        "for m in sys.stdin.read().split():\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception:\n"
        "        pass\n"
        f"{_RSS}\nprint(rss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=" ".join(modules), capture_output=True, text=True
    )
    return int(out.stdout.strip())


def imported_by(entries: list[str]) -> dict[str, list[str]]:
    """{top-level package: [every module of it]} that importing `entries` loads from
    site-packages: the third-party part of what the process holds."""
    code = (
        "import importlib, json, sys\n"
        "for m in sys.argv[1:]:\n"
        "    importlib.import_module(m)\n"
        "out = {}\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    f = getattr(mod, '__file__', None) or ''\n"
        "    if 'site-packages' in f or 'dist-packages' in f:\n"
        "        out.setdefault(name.split('.')[0], []).append(name)\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *entries], capture_output=True, text=True, check=True
    )
    found: dict[str, list[str]] = json.loads(out.stdout)
    # The venv's own path hooks load in every Python of it, bare included.
    hooks = ("__editable__", "_distutils_hack")
    return {k: sorted(v) for k, v in found.items() if k not in OWN and not k.startswith(hooks)}


def breakdown(entries: list[str], *, steps: bool = True) -> dict[str, Any]:
    """The bare Python, each package added (steps=False: all at once), then our own code
    imported too. "imports_mb" is the floor: the process's third-party imports alone."""
    packages = imported_by(entries)
    # One step per package of ORDER, then the small rest together: a process per step.
    groups = [(f"+ {p}", packages[p]) for p in ORDER if p in packages]
    rest = sorted(p for p in packages if p not in ORDER)
    if rest:
        groups.append(
            (f"+ {len(rest)} others ({', '.join(rest)})", [m for p in rest for m in packages[p]])
        )
    if not steps:
        groups = [(f"+ {len(packages)} packages", [m for _, g in groups for m in g])]
    bare = rss_kb([])
    rows = [{"step": "python + asyncio", "rss_mb": round(bare / 1024, 1), "added_mb": 0.0}]
    loaded: list[str] = []
    previous = bare
    for step, modules in groups:
        loaded += modules
        now = rss_kb(loaded)
        rows.append(
            {
                "step": step,
                "rss_mb": round(now / 1024, 1),
                "added_mb": round((now - previous) / 1024, 1),
            }
        )
        previous = now
    imports = previous
    own = rss_kb([*loaded, *entries])
    rows.append(
        {
            "step": f"+ our code ({', '.join(e for e in entries if e.split('.')[0] in OWN)})",
            "rss_mb": round(own / 1024, 1),
            "added_mb": round((own - imports) / 1024, 1),
        }
    )
    return {
        "python_mb": round(bare / 1024, 1),
        "imports_mb": round(imports / 1024, 1),
        "with_our_code_mb": round(own / 1024, 1),
        "steps": rows,
    }


def process_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def mapped_packages(pid: int) -> list[str]:
    """Top-level site-packages names whose compiled extensions process `pid` has mapped:
    what a running process loaded lazily that importing its entry modules does not show
    (pure-Python packages loaded lazily stay invisible here)."""
    found: set[str] = set()
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            for marker in ("/site-packages/", "/dist-packages/"):
                if marker in path and path.endswith(".so"):
                    first = path.split(marker, 1)[1].split("/")[0]
                    name = first.split(".")[0]
                    if name.isidentifier() and not name.endswith("libs"):
                        found.add(name)
    return sorted(found - OWN)
