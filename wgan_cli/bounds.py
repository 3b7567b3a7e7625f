"""The allowed range of every numeric option, checked on the records (TrainConfig, RunOptions, Toy/Image/
TextOptions) and on the arguments of `sample`, `score` and `textgen --ckpt`.

A value from any source - a flag, a preset, a configuration file - goes through the same check, before anything is
read or created on disk: not a number, NaN, infinity or out of range is a UsageError (exit code 2) whose message
gives the range. None means "the default" and is not checked here.
"""

from __future__ import annotations

import dataclasses
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
BATCH = Range(1, 2**24, integer=True, example="--batch-size 64")
WIDTH = Range(1, 2**16, integer=True, example="--dim 64")
SAMPLES = Range(1, 10**8, integer=True)

# field -> range, per record; the flag is the field's kebab-case name unless FLAGS says otherwise
TRAIN = {
    "gp_weight": Range(0, example="--lambda 10"),
    "n_critic": Range(1, 10_000, integer=True, example="--n-critic 5"),
    "lr": Range(0, lo_open=True, example="--lr 1e-4"),
    "betas": Range(0, 1, hi_open=True, example="--betas 0.5 0.9"),
    "clip_value": Range(0, lo_open=True, example="--clip-value 0.01"),
    "batch_size": BATCH,
    "gen_batch_size": dataclasses.replace(BATCH, example="--gen-batch-size 128"),
    "iters": dataclasses.replace(COUNT, example="--iters 1000"),
    "seed": SEED,
    "ema_decay": Range(0, 1, hi_open=True, example="--ema-decay 0.999"),
    "ac_weight_real": Range(0),
    "ac_weight_fake": Range(0),
    "weight_decay_d": Range(0),
}
RUN = {"log_every": dataclasses.replace(COUNT, example="--log-every 100"),
       "save_every": dataclasses.replace(COUNT, example="--save-every 1000")}
TOY = {"dim": WIDTH, "depth": Range(1, 1024, integer=True, example="--depth 3"),
       "plot_every": dataclasses.replace(COUNT, example="--plot-every 500"), "n_eval": Range(2, 10**7, integer=True)}
IMAGE = {"dim": WIDTH, "size": Range(1, 4096, integer=True, example="--size 32"),
         "sample_every": dataclasses.replace(COUNT, example="--sample-every 1000"),
         "eval_every": dataclasses.replace(COUNT, example="--eval-every 1000"),
         "n_val": Range(1, 10**8, integer=True, example="--n-val 1000"),
         "eval_n": Range(2, 10**8, integer=True, example="--eval-n 10000"),
         "workers": Range(0, 1024, integer=True, example="--workers 4"),
         "arch_seed": dataclasses.replace(SEED, example="--arch-seed 7"),
         "train_images": Range(1, 2**40, integer=True, example="--train-images 1000"),
         "val_share": Range(0, 0.5, example="--val-share 0.1"),
         "memory_budget": Range(0, 2**20, example="--memory-budget 4")}
TEXT = {"seq_len": Range(4, 4096, integer=True, example="--seq-len 32"),
        "vocab_size": Range(2, 32767, integer=True, example="--vocab-size 2048"),
        "max_lines": Range(2, 2**40, integer=True, example="--max-lines 10000000"),
        "heldout": Range(1, 10**8, integer=True, example="--heldout 5000"), "dim": WIDTH,
        "eval_every": dataclasses.replace(COUNT, example="--eval-every 1000"), "n_eval": Range(1, 10**7, integer=True)}
RECORDS = {"TrainConfig": TRAIN, "RunOptions": RUN, "ToyOptions": TOY, "ImageOptions": IMAGE, "TextOptions": TEXT}
FLAGS = {"gp_weight": "--lambda"}


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def check_value(name: str, value, allowed: Range) -> None:
    """One option's value (a tuple: each element) against its range."""
    if value is None:
        return
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if not allowed.contains(v):
            shown = " ".join(map(_shown, values))
            each = "each value " if len(values) > 1 else ""
            raise UsageError(f"{name} {shown}: {each}must be {allowed.describe()}",
                             f"for example {allowed.example}" if allowed.example else f"see `--help` for {name}")


def _shown(v) -> str:
    return f"{v}" if is_number(v) else repr(v)


def check_record(record) -> None:
    """Every bounded field of a TrainConfig, RunOptions or Toy/Image/TextOptions."""
    for name, allowed in RECORDS.get(type(record).__name__, {}).items():
        check_value(flag(name), getattr(record, name, None), allowed)


def check_training(*records) -> None:
    """The records of a training command (toy, train, textgen), before anything is read or written."""
    for record in records:
        check_record(record)
