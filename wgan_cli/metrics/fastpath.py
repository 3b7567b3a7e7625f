"""The FID Inception network at the machine's speed: the same function, compiled.

`FastInception(net, mode, note)` is called like the network (uint8 images -> (pool3, logits)). Its fast path is
`torch.compile` (inductor) of the network's pool3 with the weights frozen as constants (BatchNorm folded into the
convolutions, oneDNN's prepacked weight layouts on the CPU), channels_last, for one fixed batch size (a shorter
last batch is padded, so nothing is compiled twice). Resizing and the logits layer stay eager.

When it compiles (`mode`): "off" never (`wgan score --no-compile`); "on" always; "auto" when the time it saves
on the images still to score is more than compiling costs. The first batch of a pass is scored eagerly and timed
(no work is lost); the compile's cost and the speed-up come from what was recorded on this machine
(`compile-costs.json` in the cache, per device, torch version, threads and batch size: the first compile's and a
cached start's cost in eager-image times, the compiled/eager speed-up, the last eager and compiled images/s), or
before the first compile here from the reference measurement (REFERENCE, docs/performance.md). Costs are kept
relative to the eager rate, so a slower (or busier) machine is expected to compile more slowly too.

Compiled code persists in the cache (inductor's FX graph cache under `<cache>/inductor`, unless
$TORCHINDUCTOR_CACHE_DIR says otherwise): a machine pays the full compile once, later runs a cached start. A
compile that fails (no C++ compiler, an unsupported platform) falls back to eager with one note, and is recorded
so that "auto" does not try again with the same torch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from wgan_cli import files
from wgan_cli.errors import OutputError
from wgan_cli.metrics.inception import FIDInception
from wgan_cli.metrics.weights import cache_dir

MODES = ("auto", "on", "off")
COSTS_FILE = "compile-costs.json"
CACHE_SUBDIR = "inductor"


@dataclass(frozen=True)
class Reference:
    """What compiling cost and gained where it was measured (benchmarks/inception_speed.py; docs/performance.md)."""
    compile_images: float    # the first compile, in the time the eager network takes per image there
    cached_share: float      # a cached start's seconds over the first compile's
    speedup: float           # compiled images/s over eager images/s
    host_compile_s: float    # the first compile in seconds: the prior on a GPU, where compiling is host work that
    #                          does not scale with the device's speed (not measured on a GPU yet)


# 2-core x86-64 CPU, torch 2.14.1, 2 threads (docs/performance.md): a 38 s first compile at 8 eager images/s and
# 29 images/s compiled (one other job on the cores); a cached start took 155 s where the first compile took 419 s
REFERENCE = Reference(compile_images=38 * 8, cached_share=155 / 419, speedup=29 / 8, host_compile_s=38.0)


def costs_path() -> Path:
    return cache_dir() / COSTS_FILE


def machine_key(device: torch.device, batch: int) -> str:
    """Everything the recorded costs depend on."""
    if device.type == "cuda":
        where = f"cuda {torch.cuda.get_device_name(device)}"
    else:
        where = f"{device.type} {platform.machine()} {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    return f"{where} | torch {torch.__version__} | batch {batch}"


def read_costs(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded(device: torch.device, batch: int, path: Path | None = None) -> dict:
    """This machine's measured costs for batches of `batch` (empty when never measured)."""
    entry = read_costs(path or costs_path()).get(machine_key(device, batch))
    return entry if isinstance(entry, dict) else {}


def record(path: Path, device: torch.device, batch: int, **values) -> None:
    """Merge `values` into this machine's entry; a cache that cannot be written only costs a guess next time."""
    data = read_costs(path)
    key = machine_key(device, batch)
    entry = data.get(key) if isinstance(data.get(key), dict) else {}
    entry.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in values.items()})
    data[key] = entry
    try:
        files.write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except OutputError:
        pass


def inductor_cache_dir() -> Path:
    """The persistent compile cache: $TORCHINDUCTOR_CACHE_DIR, else <wgan cache>/inductor (set for inductor here)."""
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / CACHE_SUBDIR)
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def cannot_compile(device: torch.device) -> str | None:
    """Why compiling cannot work here, found cheaply, or None."""
    if device.type == "cpu":
        cxx = os.environ.get("CXX") or "c++"
        if not any(shutil.which(c) for c in (cxx, "g++", "clang++")):
            return "no C++ compiler found (inductor needs g++ or clang++ for the CPU)"
    if device.type not in ("cpu", "cuda"):
        return f"not supported on {device.type}"
    return None


def should_compile(remaining: int, batch: int, eager_batch_s: float, entry: dict,
                   device_type: str = "cpu") -> tuple[bool, float]:
    """(compile?, expected compile seconds) for `remaining` images, given the eager time of a batch just measured.
    Compiling pays when remaining * (1/eager - 1/compiled) images/s exceeds its cost.

    Costs and speed-up are recorded relative to the eager rate of the same run (the compile in eager-image times,
    compiled over eager images/s), and applied to the eager rate measured now: on a machine whose load changes,
    the rates of two moments do not compare, their ratios within one run do."""
    eager_ips = batch / eager_batch_s
    speedup = entry.get("speedup") or REFERENCE.speedup
    if entry.get("cached_images") is not None:          # a cached start measured here
        cost_images = entry["cached_images"]
    elif entry.get("compile_images") is not None:       # compiled here once: the cache holds it now
        cost_images = entry["compile_images"] * REFERENCE.cached_share
    elif device_type == "cpu":                          # nothing measured here: the reference
        cost_images = REFERENCE.compile_images
    else:                                               # a GPU: host seconds, whatever the device's speed
        cost_images = REFERENCE.host_compile_s * eager_ips
    cost = cost_images / eager_ips
    saved = remaining / eager_ips * (1 - 1 / speedup)
    return speedup > 1 and saved > cost, cost


class FastInception:
    """The network, called as the network is; `begin(n, batch)` before a pass over n images lets "auto" decide,
    `end()` after it records the rates measured."""

    def __init__(self, net: FIDInception, mode: str = "auto", note: Callable[[str], None] | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown compile mode {mode!r}: one of {', '.join(MODES)}")
        self.net, self.mode, self.note = net, mode, note or (lambda text: None)
        self.costs = costs_path()     # where this machine's measured costs are kept
        self.device = net.Conv2d_1a_3x3.conv.weight.device
        self.compiled = None          # the compiled pool3, for batches of exactly self.batch images
        self.batch = 0
        self.failed = False
        self.remaining = 0            # images left in this pass
        self.pending = False          # the next batch is the pass's first: decide there
        self.compile_next = None      # "auto" decided to compile on the next batch (expected seconds)
        self.timing = {"eager": [0, 0.0], "fast": [0, 0.0]}   # images, seconds (compile time excluded)

    @property
    def resize(self) -> str:
        return self.net.resize

    @resize.setter
    def resize(self, value: str) -> None:
        self.net.resize = value

    @property
    def fc(self):
        return self.net.fc

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def begin(self, n: int, batch: int) -> None:
        """A pass over `n` images in batches of `batch` starts."""
        self.remaining = n
        if self.compiled is not None and batch != self.batch:
            self.compiled = None      # another batch size: decide (and compile) again
        if self.compiled is None:
            self.batch = batch
        self.pending = self.mode != "off" and not self.failed and self.compiled is None
        self.compile_next = None

    def end(self) -> None:
        rates = {f"{k}_ips": n / s for k, (n, s) in self.timing.items() if n and s > 0}
        if "eager_ips" in rates and "fast_ips" in rates:   # both measured in this pass: their ratio compares
            rates["speedup"] = rates["fast_ips"] / rates["eager_ips"]
        if rates and self.batch:
            record(self.costs, self.device, self.batch, **rates)

    def __call__(self, images: torch.Tensor):
        x = self.net.input(images)                    # (B, 3, 299, 299) channels_last
        b = len(x)
        self.remaining -= b                           # images left after this batch
        if self.pending:
            self.pending = False
            feats = self.first_batch(x)
        elif self.compile_next is not None:           # "auto" decided to compile: on this batch, padded
            expected_s, self.compile_next = self.compile_next, None
            feats = self.compile(self.padded(x), expected_s)
            feats = feats[:b] if feats is not None else self.eager(x)
        elif self.compiled is not None:
            feats, seconds = self.timed(self.compiled, self.padded(x))
            self.add("fast", self.batch, seconds)
            feats = feats[:b]
        else:
            feats = self.eager(x)
        return feats, self.net.head(feats)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """A shorter batch padded with zeros to the compiled size: one compiled graph serves the whole pass."""
        if len(x) == self.batch:
            return x
        pad = x.new_zeros((self.batch - len(x),) + x.shape[1:])
        return torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)

    def eager(self, x: torch.Tensor) -> torch.Tensor:
        feats, seconds = self.timed(self.net.pool3, x)
        self.add("eager", len(x), seconds)
        return feats

    def first_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The pass's first batch: compile on it ("on"), or score it eagerly, timed, and compile from the next
        batch on if that pays for the images left ("auto")."""
        self.batch = len(x)
        entry = recorded(self.device, self.batch, self.costs)
        if self.mode == "on":
            feats = self.compile(x)
            return feats if feats is not None else self.eager(x)
        if entry.get("failed") == torch.__version__:
            self.failed = True
            self.note(f"not compiling the Inception network: it failed here before ({entry.get('error')}); "
                      f"delete {self.costs} to try again")
            return self.eager(x)
        feats, seconds = self.timed(self.net.pool3, x)   # useful work, and this machine's eager rate
        self.add("eager", self.batch, seconds)
        go, cost = should_compile(self.remaining, self.batch, seconds, entry, self.device.type)
        if go and self.remaining > 0:
            self.compile_next = cost
        return feats

    def timed(self, fn, x):
        t0 = time.perf_counter()
        out = fn(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out, time.perf_counter() - t0

    def add(self, kind: str, n: int, seconds: float) -> None:
        self.timing[kind][0] += n
        self.timing[kind][1] += seconds

    def compile(self, x: torch.Tensor, expected_s: float | None = None) -> torch.Tensor | None:
        """Compile for batches of len(x) and run x through it (the compile happens there); None if it failed."""
        why = cannot_compile(self.device)
        if why is not None:
            self.failed = True
            self.note(f"not compiling the Inception network: {why}; scoring eagerly")
            return None
        cache = inductor_cache_dir()
        about = f"about {expected_s:.0f} s, " if expected_s is not None else ""
        self.note(f"compiling the Inception network for this machine ({about}once: cached in {cache})")
        hits = cache_hits()
        t0 = time.perf_counter()
        try:
            fn = torch.compile(self.net.pool3, backend="inductor", dynamic=False, options={"freezing": True})
            feats = fn(x)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except Exception as e:   # inductor raises many types (a missing compiler, an unsupported op or platform)
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            why = f"{type(e).__name__}: {text}" if text else type(e).__name__
            self.failed = True
            self.note(f"compiling the Inception network failed ({why}); scoring eagerly")
            record(self.costs, self.device, len(x), failed=torch.__version__, error=why)
            torch._dynamo.reset()
            return None
        seconds = time.perf_counter() - t0
        self.compiled = fn
        cached = cache_hits() > hits
        eager_n, eager_s = self.timing["eager"]
        eager_ips = eager_n / eager_s if eager_n and eager_s > 0 else recorded(self.device, len(x), self.costs).get(
            "eager_ips")
        kind = "cached" if cached else "compile"
        values = {f"{kind}_s": seconds}
        if eager_ips:
            values[f"{kind}_images"] = seconds * eager_ips   # the cost in eager-image times (see should_compile)
        record(self.costs, self.device, len(x), **values)
        return feats


def wrap(net, mode: str = "auto", note: Callable[[str], None] | None = None):
    """The FID Inception network on its fast path; any other network (a test's stand-in) as it is."""
    return FastInception(net, mode, note) if isinstance(net, FIDInception) else net


def cache_hits() -> int:
    """Inductor's FX graph cache hits so far in this process (0 where torch does not count them)."""
    try:
        from torch._dynamo.utils import counters
        return int(counters["inductor"]["fxgraph_cache_hit"])
    except Exception:   # a private counter: absent in some torch versions
        return 0
