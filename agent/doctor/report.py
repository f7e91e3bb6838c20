"""One finding of the doctor, and how a list of them is shown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"checks": [asdict(c) for c in checks]}, ensure_ascii=False)


def as_text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"     fix: {c.fix}")
    bad = sum(not c.ok for c in checks)
    lines.append("all checks passed" if not bad else f"{bad} of {len(checks)} checks failed")
    return "\n".join(lines)


def exit_status(checks: list[Check]) -> int:
    return 0 if all(c.ok for c in checks) else 1
