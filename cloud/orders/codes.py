"""Pickup codes: the digits a courier types or scans at the door (CONTRACTS section 2).

A code is unique among its store's pending orders; the database holds that with a partial
unique index, and `new_pickup_code` picks one not among those the caller read as taken.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection

CODE_LENGTH = 6
# Drawn at random, not in sequence: a courier must not guess the next order's code.
Draw = Callable[[int], int]


class NoFreeCode(Exception):
    """Every code is taken by a pending order of the store."""


def new_pickup_code(
    taken: Collection[str], *, length: int = CODE_LENGTH, draw: Draw = secrets.randbelow
) -> str:
    """A `length`-digit code not in `taken`; `draw(n)` gives a number below n."""
    space = 10**length
    if len(taken) >= space:
        raise NoFreeCode(f"all {space} pickup codes are taken by pending orders")
    # A few random tries find a free code while few are taken; then walk from a random
    # start, which always ends (some code is free).
    for _ in range(32):
        code = f"{draw(space):0{length}d}"
        if code not in taken:
            return code
    start = draw(space)
    for step in range(space):
        code = f"{(start + step) % space:0{length}d}"
        if code not in taken:
            return code
    raise NoFreeCode(f"all {space} pickup codes are taken by pending orders")
