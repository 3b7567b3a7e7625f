"""In-training evaluation: FID / IS / KID (and precision/recall, density/coverage) of the current generator every N
iterations, as an engine Callback.

    cb, notes = eval_callback(every=5000, n=10_000, metrics="fid,is", ref="fashion-mnist:train",
                              device=engine.device, generator=lambda engine: engine.G, pixel_range="tanh",
                              on_best=lambda engine, metrics: save_best(engine.step))
    fit(engine, callbacks=[..., cb])

Each evaluation draws the same noise (a fixed seed, its own torch.Generator: the engine's RNG and therefore
bit-exact resume are untouched), yields `Evaluated(step, {"fid": ..., "is": ..., "is_std": ...})`, and calls
`on_best(engine, metrics)` whenever FID improves; events that on_best returns (e.g. Saved) are passed on.
The weights are resolved and the reference is checked when the callback is made (before training starts), and
`notes` says then which requested metrics the weights cannot give (IS needs the logits layer); the network is
loaded and the reference statistics computed (or read from the cache) at the first evaluation. Under torchrun
every rank generates and extracts its share of the images (the callback is collective); only rank 0 calls
`on_best`.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from wgan_cli.distributed import LOCAL
from wgan_cli.engine import Callback, Engine
from wgan_cli.errors import UsageError
from wgan_cli.events import Evaluated, Note
from wgan_cli.metrics import fastpath, weights as inception_weights
from wgan_cli.metrics.features import extract, generator_source
from wgan_cli.metrics.inputs import MetricOptions, RefStats
from wgan_cli.metrics.references import parse_ref, resolve_ref
from wgan_cli.metrics.registry import METRICS, choose_metrics, compute, parse_metrics

OnBest = Callable[[Engine, dict], Iterable | None]


def eval_callback(*, every: int, n: int, metrics: str | Iterable[str] = "fid,is", ref: str | RefStats | None,
                  device: torch.device | str, generator: Callable[[Engine], torch.nn.Module],
                  pixel_range: str = "tanh", on_best: OnBest | None = None, batch_size: int = 100, seed: int = 0,
                  splits: int = 10, weights: str | None = None, best_fid: float = math.inf,
                  data_dir: str | None = None, compile: bool = True) -> tuple[Callback, list[Note]]:
    """`generator(engine)` returns the generator to score at that moment (the EMA copy where one is kept);
    `compile` False runs the Inception network eagerly (else compiled where it pays, metrics/fastpath.py)."""
    names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics)) or ["fid", "is"]
    if ref is None and any(METRICS[m].needs_ref for m in names):
        raise UsageError("--eval-metrics fid/kid need a reference", "pass the training set as the reference")
    if n < 2 or (("is" in names) and n < splits):
        raise UsageError(f"--eval-n {n} is too small", f"use at least {max(2, splits)} (10000 is usual)")
    device = torch.device(device)
    spec = parse_ref(ref) if isinstance(ref, str) else None
    found = inception_weights.resolve_weights(weights, want_logits="is" in names)
    names, unavailable = choose_metrics(names, ref is not None, found.has_logits)
    opts = MetricOptions(splits=splits, seed=seed, device=str(device))
    said: list[str] = []
    state = {"net": None, "ref": ref if isinstance(ref, RefStats) else None, "best": best_fid}

    def evaluate(engine, final: bool):
        group = getattr(engine, "dist", LOCAL)   # the engine's ranks (a stand-in engine: one process)
        if state["net"] is None:   # compiled where it pays (metrics/fastpath.py); what it says comes out as Notes
            state["net"] = fastpath.wrap(inception_weights.load_network(found, device), "auto" if compile else "off",
                                         said.append)
        notes: list = []
        if spec is not None and state["ref"] is None:
            state["ref"] = resolve_ref(spec, state["net"], found, batch_size, device, sink=notes.append,
                                       data_dir=data_dir, group=group)
        yield from notes
        source = generator_source(generator(engine), n, seed, device, pixel_range,
                                  f"generator at iteration {engine.step}", balanced=False)
        feats = extract(state["net"], source, batch_size, device, group=group)
        for text in said:
            yield Note(f"eval: {text}", "info")
        said.clear()
        values = compute(names, feats, state["ref"], opts)
        yield Evaluated(step=engine.step, metrics=values)
        if "fid" in values and values["fid"] < state["best"]:
            state["best"] = values["fid"]
            if on_best is not None and group.is_writer:
                yield from on_best(engine, values) or ()

    warnings = [Note(f"eval: {k.upper()} {why}", "warning") for k, why in unavailable.items()]
    return Callback(evaluate, every=every, collective=True), warnings
