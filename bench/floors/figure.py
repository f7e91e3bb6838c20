"""One shape for "a figure beside its floor", in every benchmark's JSON (bench/README.md)."""

from __future__ import annotations

from typing import Any, Literal

Better = Literal["higher", "lower"]


def beside(
    name: str,
    value: float,
    unit: str,
    floor_name: str,
    floor_value: float,
    *,
    better: Better,
    target_ratio: float | None = None,
) -> dict[str, Any]:
    """`better`: "higher" (a rate: ratio = the share of the floor we reach, the target a
    least share) or "lower" (a latency, a cost: ratio = how many times the floor we take,
    the target a most). `met` is None when there is no target."""
    ratio = value / floor_value if floor_value else None
    met = None
    if target_ratio is not None and ratio is not None:
        met = ratio >= target_ratio if better == "higher" else ratio <= target_ratio
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "floor": {"name": floor_name, "value": round(floor_value, 3)},
        "ratio": None if ratio is None else round(ratio, 3),
        "better": better,
        "target_ratio": target_ratio,
        "met": met,
    }


def is_figure(item: Any) -> bool:
    """Whether `item` has the shape above: what tests/bench checks every bench prints."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and isinstance(item.get("value"), int | float)
        and isinstance(item.get("unit"), str)
        and isinstance(item.get("floor"), dict)
        and isinstance(item["floor"].get("name"), str)
        and isinstance(item["floor"].get("value"), int | float)
        and item["floor"]["value"] > 0
        and isinstance(item.get("ratio"), int | float)
        and item.get("better") in ("higher", "lower")
        and "target_ratio" in item
    )
