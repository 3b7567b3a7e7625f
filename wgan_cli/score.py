"""`wgan score`: Inception Score, FID, KID, precision/recall and density/coverage of a generator checkpoint, an
image folder or an .npz of images.

The pipeline, one small step each: INPUT -> uint8 image batches (metrics/features.py) -> Inception features
(pool3, logits; images resized to 299x299 the tf1 or the clean way) -> the metrics of metrics/registry.py, against
reference statistics (metrics/references.py). With `repeats` K > 1 a checkpoint is scored on K independent sample
sets (seeds seed, seed + 1, ...) and each metric is reported as the mean and standard deviation over them.
Under torchrun every rank generates and extracts its share of the batches; the features are gathered in order.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch

from wgan_cli import checkpoint, fields, outputs, torchrun
from wgan_cli.config import ScoreRequest
from wgan_cli.engine import pick_device
from wgan_cli.errors import DataError, UsageError, WeightsError
from wgan_cli.events import Note
from wgan_cli.metrics import fastpath, weights as inception_weights
from wgan_cli.metrics.inception import RESIZES
from wgan_cli.metrics.features import ImageSource, Progress, array_source, extract, folder_source, generator_source
from wgan_cli.metrics.inputs import MetricOptions
from wgan_cli.metrics.references import is_stats_file, parse_ref, resolve_ref, save_stats
from wgan_cli.metrics.registry import METRICS, choose_metrics, compute, parse_metrics

LOGITS_HINT = f"; IS needs {inception_weights.HUB_NAMES[0]} (see `wgan score --help`)"


def is_checkpoint_input(text: str) -> bool:
    path = Path(text)
    return not path.is_dir() and path.suffix == ".safetensors"


def input_source(req: ScoreRequest, device: torch.device, seed: int | None = None) -> ImageSource:
    """The images to score; a checkpoint's samples are drawn from `seed` (default: req.seed)."""
    seed = req.seed if seed is None else seed
    path = Path(req.input)
    if path.is_dir():
        return folder_source(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", "give a generator checkpoint, a folder of images or an .npz")
    if path.suffix in (".npz", ".npy"):
        return array_source(path)
    if path.suffix == ".safetensors" and is_stats_file(path):
        raise UsageError(f"{path}: a statistics file cannot be scored", "give it as --ref instead")
    G, meta = checkpoint.load_generator(path, ema=req.ema, device=device, task="image", command="wgan score")
    return generator_source(G, req.n, seed, device, G.pixel_range, f"generator {path} ({req.n} samples, seed {seed})")


def validate(req: ScoreRequest) -> list[str] | None:
    """Cheap checks before anything heavy (weights, data, the network)."""
    requested = parse_metrics(req.metrics)
    if req.input is None and req.save_stats is None:
        raise UsageError("nothing to score: give INPUT, or --ref with --save-stats",
                         "wgan score samples.npz --ref fashion-mnist:test")
    if req.save_stats is not None:
        if req.ref is None:
            raise UsageError("--save-stats needs --ref (the images to summarise)",
                             "wgan score --ref fashion-mnist:train --save-stats fm.safetensors")
        if not req.save_stats.endswith(".safetensors"):
            raise UsageError(f"--save-stats {req.save_stats}: statistics are written as .safetensors",
                             "use a path ending in .safetensors")
    if requested and req.ref is None and any(METRICS[m].needs_ref for m in requested):
        needs = [m for m in requested if METRICS[m].needs_ref]
        raise UsageError(f"{', '.join(needs)} compare against reference images: --ref is missing",
                         "add --ref fashion-mnist:train (or a folder, .npz, or statistics file)")
    fields.check(req)
    if req.resize not in RESIZES:
        raise UsageError(f"--resize {req.resize}: unknown resize", f"choose one of: {', '.join(RESIZES)}")
    if req.repeats > 1 and req.input is not None and not is_checkpoint_input(req.input):
        raise UsageError(f"--repeats {req.repeats} needs a generator checkpoint: {req.input} is one fixed set of "
                         "images", "score a checkpoint (each repeat draws its own samples), or drop --repeats")
    return requested


CPU_IMAGES_PER_S = 10   # the eager Inception network in fp32 on a 2-core CPU (docs/score.md), before a measurement


def cpu_rate(req: ScoreRequest, device: torch.device) -> tuple[float, str]:
    """Images/s to expect on this CPU: what the last run here measured, else the reference machine's."""
    entry = fastpath.recorded(device, req.batch_size)
    measured = (entry.get("fast_ips") if req.compile else None) or entry.get("eager_ips")
    if measured:
        return measured, "measured on this machine"
    speedup = fastpath.REFERENCE.speedup if req.compile else 1.0
    return CPU_IMAGES_PER_S * speedup, "on 2 cores"


def score(req: ScoreRequest, progress: Progress | None = None, sink: Callable[[Note], None] | None = None) -> dict:
    """Run the whole command; returns the result dict printed by the CLI. `sink` is given a Note event, as soon as
    it is known, for what the user should know (metrics that cannot be computed, a long CPU run, a cache problem)."""
    emit = sink or (lambda event: None)
    requested = validate(req)
    if req.save_stats:   # before hours of feature extraction, not after
        outputs.check_output(req.save_stats, "--save-stats", {"INPUT": req.input, "--ref": req.ref})
    group = torchrun.join(pick_device(req.device))   # alone, or this rank of a torchrun job
    device = group.device
    progress = progress if group.is_writer else None
    ref_spec = parse_ref(req.ref) if req.ref else None
    source = input_source(req, device) if req.input else None
    want_logits = bool(requested and "is" in requested)   # downloaded once per node
    weights = group.per_node(lambda: inception_weights.resolve_weights(req.weights, want_logits=want_logits))
    metrics, unavailable = choose_metrics(requested, ref_spec is not None, weights.has_logits, LOGITS_HINT)
    for name, why in unavailable.items():
        emit(Note(f"{name.upper()} {why}", "warning"))
    if source is not None and not metrics:
        if requested is None and ref_spec is None:
            raise UsageError("only FID and KID can be computed with the weights found (no logits layer for IS), "
                             "and they need a reference", "add --ref fashion-mnist:train (or a folder or .npz)")
        raise WeightsError("none of the requested metrics can be computed with the weights found",
                           inception_weights.ways_hint())
    if source is not None and source.n < 2:
        raise DataError(f"{req.input}: {source.n} image(s); the scores need at least 2", "score more images")
    if source is not None and "is" in metrics and req.splits > source.n:
        raise UsageError(f"--splits {req.splits} is more than the {source.n} images", "lower --splits")
    drawn = req.input is not None and Path(req.input).suffix == ".safetensors"   # samples from a checkpoint
    total = req.n * req.repeats
    rate, measured = cpu_rate(req, device) if device.type == "cpu" else (0.0, "")
    if drawn and device.type == "cpu" and total > 5 * 60 * rate * group.world:
        sets = f" ({req.repeats} sets of {req.n})" if req.repeats > 1 else ""
        emit(Note(f"{total} samples{sets} through the Inception network on the CPU take about "
                  f"{total / rate / group.world / 60:.0f} minutes (about {rate:.0f} images/s {measured}); "
                  "--n 1000 gives a quick (upward-biased) estimate, a GPU the standard 50,000"))
    net = fastpath.wrap(inception_weights.load_network(weights, device), "auto" if req.compile else "off",
                        lambda text: emit(Note(text)))
    net.resize = req.resize
    result: dict = {"input": req.input, "ref": req.ref, "weights": weights.source, "device": str(device),
                    "resize": req.resize}
    ref = None
    if ref_spec is not None:
        ref = resolve_ref(ref_spec, net, weights, req.batch_size, device, progress, emit, req.data_dir, req.resize,
                          group)
        result["ref_n"] = ref.n
        if req.save_stats:
            group.agree(lambda: save_stats(Path(req.save_stats), ref, weights.id, req.resize), here=group.is_writer)
            result["saved_stats"] = req.save_stats
    if source is None:
        return result
    if ref is not None and ref.features is None:
        for name in [m for m in metrics if METRICS[m].needs_features]:
            metrics.remove(name)
            unavailable[name] = "unavailable: the reference statistics file holds no features"
    runs, seconds = [], 0.0
    for i in range(req.repeats):
        seed = req.seed + i
        if i > 0:
            source = input_source(req, device, seed)
        t0 = time.perf_counter()
        label = "input" if req.repeats == 1 else f"input {i + 1}/{req.repeats}"
        feats = extract(net, source, req.batch_size, device, progress, label, group)
        seconds += time.perf_counter() - t0
        opts = MetricOptions(req.splits, req.kid_subsets, req.kid_subset_size, seed, str(device))
        runs.append(compute(metrics, feats, ref, opts, req.ref))
    result.update({"n": source.n, "metrics": runs[0], "unavailable": unavailable,
                   "images_per_s": round(source.n * req.repeats / max(seconds, 1e-9), 2)})
    if req.repeats > 1:
        counts = {k for k, v in runs[0].items() if isinstance(v, int)}   # subset sizes, N and k: the same in each
        spread = {k: mean_std(r[k] for r in runs) for k in runs[0] if k not in counts}
        result.update(repeats=req.repeats, seeds=[req.seed + i for i in range(req.repeats)],
                      metrics={k: runs[0][k] if k in counts else spread[k][0] for k in runs[0]},
                      metrics_std={k: v[1] for k, v in spread.items()}, per_repeat=runs)
    if "is" in metrics:
        result["splits"] = req.splits
    if "pr" in metrics or "dc" in metrics:
        result["manifold_features"] = MANIFOLD_FEATURES
    return result


MANIFOLD_FEATURES = "inception-pool3"   # not VGG16's fc2, which most published precision/recall numbers use


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation (numpy's default, ddof=0) over the repeats."""
    v = [float(x) for x in values]
    mean = sum(v) / len(v)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))


def format_result(result: dict) -> str:
    """One human line per metric; with repeats, each number is the mean +- the std over the repeats."""
    m, sd = result.get("metrics", {}), result.get("metrics_std")
    resize = f"{result.get('resize', 'tf1')} resize"
    if sd is not None:
        seeds = result["seeds"]
        over = f", mean +- std over {result['repeats']} sample sets, seeds {seeds[0]}..{seeds[-1]}"

        def num(key: str, fmt: str) -> str:
            return f"{m[key]:{fmt}} +- {sd[key]:{fmt}}"
    else:
        over = ""

        def num(key: str, fmt: str) -> str:
            return f"{m[key]:{fmt}}"
    lines = []
    if "is" in m:
        spread = "" if sd is not None else f" +- {m['is_std']:.4f}"
        lines.append(f"IS   {num('is', '.4f')}{spread}  ({result['n']} images, {result.get('splits')} splits{over})")
    if "fid" in m:
        lines.append(f"FID  {num('fid', '.4f')}  ({result['n']} images vs {result['ref']}, {result['ref_n']} images, "
                     f"{resize}{over})")
    if "kid" in m:
        spread = "" if sd is not None else f" +- {m['kid_std']:.6f}"
        lines.append(f"KID  {num('kid', '.6f')}{spread}  (subsets of {m['kid_subset_size']}{over})")
    pool3 = "Inception pool3 features, not VGG16: not comparable with VGG16-based numbers"
    if "precision" in m:
        lines.append(f"PR   precision {num('precision', '.4f')}  recall {num('recall', '.4f')}  "
                     f"(k={m['pr_k']}, {m['pr_n']} generated vs {m['pr_n']} reference images; {pool3}{over})")
    if "density" in m:
        lines.append(f"DC   density {num('density', '.4f')}  coverage {num('coverage', '.4f')}  "
                     f"(k={m['dc_k']}, {m['dc_n']} generated vs {m['dc_n']} reference images; {pool3}{over})")
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"{name.upper():4s} {why}")
    if "saved_stats" in result:
        lines.append(f"wrote reference statistics of {result['ref']} ({result['ref_n']} images, {resize}) "
                     f"to {result['saved_stats']}")
    return "\n".join(lines)
