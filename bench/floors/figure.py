"""One shape for "a figure beside its floor", in every benchmark's JSON."""

from __future__ import annotations

from typing import Any


def beside(
    name: str, value: float, unit: str, floor_name: str, floor_value: float, *, better: str
) -> dict[str, Any]:
    """`better`: "higher" (a rate: ratio = the share of the floor we reach) or "lower" (a
    latency: ratio = how many times the floor we take)."""
    ratio = value / floor_value if floor_value else None
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "floor": {"name": floor_name, "value": round(floor_value, 3)},
        "ratio": None if ratio is None else round(ratio, 3),
        "better": better,
    }
