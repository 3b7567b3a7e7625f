"""The FID Inception network at the machine's speed: the same function, compiled.

`FastInception(net, mode, note)` is called like the network (uint8 images -> (pool3, logits)). Its fast path is
`torch.compile` (inductor) of the network's pool3 with the weights frozen as constants (BatchNorm folded into the
convolutions, `settings`), channels_last, for one fixed batch size (a shorter last batch is padded, so nothing is
compiled twice). Resizing and the logits layer stay eager.

When it compiles (`mode`): "off" never (`wgan score --no-compile`); "on" always; "auto" when the time it saves
on the images still to score is more than compiling costs. The first batch of a pass is scored eagerly and timed
(no work is lost); the compile's cost and the speed-up come from what was recorded on this machine
(`compile-costs.json` in the cache, per device, torch version, threads and batch size: the first compile's and a
cached start's cost in eager-image times, the compiled/eager speed-up, the last eager and compiled images/s), or
before the first compile here from the reference measurement (REFERENCE, docs/performance.md). Costs are kept
relative to the eager rate, so a slower (or busier) machine is expected to compile more slowly too.

On a CPU with more than one thread, each batch is split into equal chunks scored at once by one-thread workers
(`Split`), compiled or eager: a 299x299 network is many short parallel regions, and one thread per chunk keeps
every core busy where two threads on one image wait on each other at every region's end (docs/performance.md).
There the compiled graph is built for one chunk, with inductor's C++ wrapper, so a worker holds the interpreter
lock only to start a chunk.

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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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


# 2-core x86-64 CPU, torch 2.14.1, 2 threads as two one-thread workers, nothing else running (docs/performance.md):
# a 46.2 s first compile and a 15.4 s cached start, at 18.06 eager images/s and 25.57 images/s compiled
REFERENCE = Reference(compile_images=46.2 * 18.06, cached_share=15.4 / 46.2, speedup=25.57 / 18.06,
                      host_compile_s=46.2)


def costs_path() -> Path:
    return cache_dir() / COSTS_FILE


def machine_key(device: torch.device, batch: int, workers: int | None = None) -> str:
    """Everything the recorded costs depend on (`workers`: the CPU split, by default one per thread)."""
    if device.type == "cuda":
        where = f"cuda {torch.cuda.get_device_name(device)}"
    else:
        threads = torch.get_num_threads()
        workers = threads if workers is None else workers
        where = f"{device.type} {platform.machine()} {os.cpu_count()} cores, {threads} threads"
        if workers > 1:
            where += f" as {workers} one-thread workers"
    return f"{where} | torch {torch.__version__} | batch {batch}"


def read_costs(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded(device: torch.device, batch: int, path: Path | None = None, workers: int | None = None) -> dict:
    """This machine's measured costs for batches of `batch` (empty when never measured)."""
    entry = read_costs(path or costs_path()).get(machine_key(device, batch, workers))
    return entry if isinstance(entry, dict) else {}


def record(path: Path, device: torch.device, batch: int, workers: int | None = None, **values) -> None:
    """Merge `values` into this machine's entry; a cache that cannot be written only costs a guess next time."""
    data = read_costs(path)
    key = machine_key(device, batch, workers)
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


class Split:
    """Batches scored as chunks at once by `n` worker threads of one intra-op thread each (a CPU).

    torch's intra-op thread count belongs to each thread, but a thread takes the process-wide one when it first
    asks for it: each worker asks, then sets one thread, and all are started before the process-wide count is put
    back, so nothing else changes."""

    def __init__(self, n: int):
        self.n = n
        threads = torch.get_num_threads()
        started = threading.Barrier(n + 1)
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="wgan-inception", initializer=one_thread)
        for _ in range(n):
            self.pool.submit(started.wait)   # every worker started (and set to one thread) before going on
        started.wait()
        torch.set_num_threads(threads)

    def unit(self, batch: int) -> int:
        """The chunk for batches of `batch` images: as even as n workers allow."""
        return -(-batch // self.n)

    def one(self, fn, x: torch.Tensor) -> torch.Tensor:
        """fn(x) on one worker (where a graph compiled for one thread must be compiled)."""
        return self.pool.submit(infer, fn, x).result()

    def map(self, fn, chunks) -> torch.Tensor:
        """fn over the chunks at once, the results' rows in order."""
        futures = [self.pool.submit(infer, fn, c) for c in chunks]
        return torch.cat([f.result() for f in futures])


def one_thread() -> None:
    torch.get_num_threads()   # torch sets a thread's count from the process-wide one on its first use: now
    torch.set_num_threads(1)


def infer(fn, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():   # a worker thread does not share its caller's inference mode
        return fn(x)


_splits: dict[int, Split] = {}
_splits_lock = threading.Lock()


def split_for(device: torch.device, workers: int | None = None) -> Split | None:
    """The workers a pass on `device` splits its batches over: one per intra-op thread on a CPU with more than
    one (shared by every network in the process); None on a GPU or with one thread."""
    n = torch.get_num_threads() if workers is None else workers
    if device.type != "cpu" or n < 2:
        return None
    with _splits_lock:
        if n not in _splits:
            _splits[n] = Split(n)
        return _splits[n]


class FastInception:
    """The network, called as the network is; `begin(n, batch)` before a pass over n images lets "auto" decide,
    `end()` after it records the rates measured. `workers` overrides the CPU split (1: none)."""

    def __init__(self, net: FIDInception, mode: str = "auto", note: Callable[[str], None] | None = None,
                 workers: int | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown compile mode {mode!r}: one of {', '.join(MODES)}")
        self.net, self.mode, self.note = net, mode, note or (lambda text: None)
        self.costs = costs_path()     # where this machine's measured costs are kept
        self.device = net.Conv2d_1a_3x3.conv.weight.device
        self.split = split_for(self.device, workers)
        self.workers = self.split.n if self.split else 1
        self.compiled = None          # the compiled pool3, for inputs of exactly self.unit images
        self.batch = 0                # the pass's batch size
        self.unit = 0                 # the compiled graph's: the batch, or one worker's chunk of it
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
            self.set_batch(batch)
        self.pending = self.mode != "off" and not self.failed and self.compiled is None
        self.compile_next = None

    def set_batch(self, batch: int) -> None:
        self.batch = batch
        self.unit = self.split.unit(batch) if self.split else batch

    def end(self) -> None:
        rates = {f"{k}_ips": n / s for k, (n, s) in self.timing.items() if n and s > 0}
        if "eager_ips" in rates and "fast_ips" in rates:   # both measured in this pass: their ratio compares
            rates["speedup"] = rates["fast_ips"] / rates["eager_ips"]
        if rates and self.batch:
            record(self.costs, self.device, self.batch, self.workers, **rates)

    def __call__(self, images: torch.Tensor):
        feats = self.pool3(self.net.input(images))    # the input: (B, 3, 299, 299) channels_last
        return feats, self.net.head(feats)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """The pool3 features of resized images, on the path decided for this pass."""
        b = len(x)
        self.remaining -= b                           # images left after this batch
        if self.pending:
            self.pending = False
            return self.first_batch(x)
        if self.compile_next is not None:             # "auto" decided to compile: on this batch
            expected_s, self.compile_next = self.compile_next, None
            feats = self.compile(x, expected_s)
            return feats if feats is not None else self.eager(x)
        if self.compiled is not None:
            feats, seconds = self.timed(self.run_compiled, self.padded(x))
            self.add("fast", len(feats), seconds)
            return feats[:b]
        return self.eager(x)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """x padded with zeros to a whole number of compiled units: one compiled graph serves the whole pass."""
        size = -(-len(x) // self.unit) * self.unit
        if len(x) == size:
            return x
        pad = x.new_zeros((size - len(x),) + x.shape[1:])
        return torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)

    def run_compiled(self, x: torch.Tensor) -> torch.Tensor:
        if self.split is None:
            return self.compiled(x)
        return self.split.map(self.compiled, x.split(self.unit))

    def eager(self, x: torch.Tensor) -> torch.Tensor:
        feats, seconds = self.timed(self.run_eager, x)
        self.add("eager", len(x), seconds)
        return feats

    def run_eager(self, x: torch.Tensor) -> torch.Tensor:
        if self.split is None or len(x) < 2:
            return self.net.pool3(x)
        return self.split.map(self.net.pool3, x.tensor_split(min(self.split.n, len(x))))

    def first_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The pass's first batch: compile on it ("on"), or score it eagerly, timed, and compile from the next
        batch on if that pays for the images left ("auto")."""
        self.set_batch(len(x))
        entry = recorded(self.device, self.batch, self.costs, self.workers)
        if self.mode == "on":
            feats = self.compile(x)
            return feats if feats is not None else self.eager(x)
        if entry.get("failed") == torch.__version__:
            self.failed = True
            self.note(f"not compiling the Inception network: it failed here before ({entry.get('error')}); "
                      f"delete {self.costs} to try again")
            return self.eager(x)
        feats, seconds = self.timed(self.run_eager, x)   # useful work, and this machine's eager rate
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
        """Compile for inputs of self.unit images and run x through it (the compile happens on its first unit);
        None if compiling failed."""
        why = cannot_compile(self.device)
        if why is not None:
            self.failed = True
            self.note(f"not compiling the Inception network: {why}; scoring eagerly")
            return None
        cache = inductor_cache_dir()
        about = f"about {expected_s:.0f} s, " if expected_s is not None else ""
        self.note(f"compiling the Inception network for this machine ({about}once: cached in {cache})")
        hits = cache_hits()
        n, x = len(x), self.padded(x)
        t0 = time.perf_counter()
        try:
            fn = inductor(self.net.pool3, settings(split=self.split is not None))
            first = self.split.one(fn, x[:self.unit]) if self.split else fn(x[:self.unit])
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except Exception as e:   # inductor raises many types (a missing compiler, an unsupported op or platform)
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            why = f"{type(e).__name__}: {text}" if text else type(e).__name__
            self.failed = True
            self.note(f"compiling the Inception network failed ({why}); scoring eagerly")
            record(self.costs, self.device, self.batch, self.workers, failed=torch.__version__, error=why)
            torch._dynamo.reset()
            return None
        seconds = time.perf_counter() - t0
        self.compiled = fn
        cached = cache_hits() > hits
        eager_n, eager_s = self.timing["eager"]
        eager_ips = (eager_n / eager_s if eager_n and eager_s > 0
                     else recorded(self.device, self.batch, self.costs, self.workers).get("eager_ips"))
        kind = "cached" if cached else "compile"
        values = {f"{kind}_s": seconds}
        if eager_ips:
            values[f"{kind}_images"] = seconds * eager_ips   # the cost in eager-image times (see should_compile)
        record(self.costs, self.device, self.batch, self.workers, **values)
        rest = x[self.unit:]
        if len(rest) == 0:
            return first[:n]
        feats, seconds = self.timed(self.run_compiled, rest)
        self.add("fast", len(rest), seconds)
        return torch.cat([first, feats])[:n]


def settings(split: bool) -> dict:
    """Inductor's settings for the network: the weights frozen as constants (BatchNorm folded into the
    convolutions); on the CPU, weights not prepacked into oneDNN's own tensors, which cannot be pickled and would
    keep the graph out of the compile cache (measured no faster); with one-thread workers (`split`) the C++
    wrapper, which runs a whole graph without the interpreter lock (the workers would otherwise take turns between
    kernels)."""
    return {"freezing": True, "cpp.weight_prepack": False, **({"cpp_wrapper": True} if split else {})}


def inductor(fn, patch: dict):
    """`torch.compile` (inductor, static shapes) of fn, every call made with inductor's settings patched.

    torch.compile's own options do not do it: freezing is decided before they apply (the graph would take the
    weights as inputs: nothing folded, nothing prepacked), and inductor's settings belong to the thread that sets
    them, so a call in a worker thread would not see its caller's. Whichever call compiles (or recompiles) sees
    them in its own thread."""
    compiled = torch.compile(fn, backend="inductor", dynamic=False)

    def call(x):
        from torch._inductor import config

        with config.patch(patch):
            return compiled(x)

    return call


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
