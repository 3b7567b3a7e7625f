"""Allowed ranges of numbers: `Range`, and `check_value`, which refuses a value outside one. The records' options
declare their ranges with their fields (config.py, checked by fields.check); `sample` and `textgen --ckpt` check
their few arguments here directly.

A value from any source - a flag, a preset, a configuration file - goes through the same check, before anything is
read or created on disk: not a number, NaN, infinity or out of range is a UsageError (exit code 2) whose message
gives the range. None means "the default" and is not checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wgan_cli.errors import UsageError


def is_number(v) -> bool:
    """An int or a float, and not a bool (which Python counts as an int): what a numeric option or a logged
    value may be."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False        # lo itself is excluded
    hi_open: bool = False        # hi itself is excluded
    integer: bool = False
    example: str = ""

    def contains(self, v) -> bool:
        if not is_number(v):
            return False
        if self.integer and not isinstance(v, int):
            return False
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"{kind} in {left}{_num(self.lo)}, {_num(self.hi)}{right}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return kind


def _num(x: float) -> str:
    if isinstance(x, int) and x >= 2**20 and (x & (x - 1) == 0 or (x + 1) & x == 0):
        return f"2^{x.bit_length() - 1}" if x & (x - 1) == 0 else f"2^{x.bit_length()} - 1"
    return f"{x:g}" if isinstance(x, float) else str(x)


SEED = Range(0, 2**63 - 1, integer=True, example="--seed 0")
COUNT = Range(1, 2**40, integer=True)                       # iterations, cadences
BATCH = Range(1, 2**24, integer=True)
WIDTH = Range(1, 2**16, integer=True)
SAMPLES = Range(1, 10**8, integer=True)
# a GIF stores each frame's time in hundredths of a second: above 100 fps it would round to 0 (no frame time)
FPS = Range(0.1, 100, example="--fps 16")
TRUNCATION = Range(0.05, example="--truncation 1.0")        # api.TRUNCATION_MIN: below it nearly every draw is redrawn


def check_value(name: str, value, allowed: Range, example: str = "") -> None:
    """One option's value (a tuple: each element) against its range; `example` (else the range's) is the hint."""
    if value is None:
        return
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if not allowed.contains(v):
            shown = " ".join(map(_shown, values))
            each = "each value " if len(values) > 1 else ""
            example = example or allowed.example
            raise UsageError(f"{name} {shown}: {each}must be {allowed.describe()}",
                             f"for example {example}" if example else f"see `--help` for {name}")


def _shown(v) -> str:
    return f"{v}" if is_number(v) else repr(v)
