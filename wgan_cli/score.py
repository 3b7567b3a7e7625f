"""`wgan score`: Inception Score, FID and KID of a generator checkpoint, an image folder or an .npz of images.

The pipeline, one small step each: INPUT -> uint8 image batches (metrics/features.py) -> Inception features
(pool3, logits) -> the metrics of metrics/scores.py, against reference statistics (metrics/references.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from wgan_cli import checkpoint
from wgan_cli.engine import pick_device
from wgan_cli.errors import DataError, UsageError, WeightsError
from wgan_cli.metrics import weights as inception_weights
from wgan_cli.metrics.features import ImageSource, Progress, array_source, extract, folder_source, generator_source
from wgan_cli.metrics.references import is_stats_file, parse_ref, resolve_ref, save_stats
from wgan_cli.metrics.scores import METRICS, MetricOptions, choose_metrics, parse_metrics

LOGITS_HINT = f"; IS needs {inception_weights.HUB_NAMES[0]} (see `wgan score --help`)"


@dataclass
class ScoreRequest:
    input: str | None = None
    ref: str | None = None
    metrics: str | None = None            # "is,fid,kid"; None: all that the weights and the reference allow
    n: int = 50_000
    splits: int = 10
    batch_size: int = 50
    device: str = "auto"
    seed: int = 0
    weights: str | None = None
    save_stats: str | None = None
    ema: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    data_dir: str | None = None           # where dataset splits are found: --data-dir, $WGAN_DATA_DIR, ./data


def input_source(req: ScoreRequest, device: torch.device) -> ImageSource:
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
    return generator_source(G, req.n, req.seed, device, G.output,
                            f"generator {path} ({req.n} samples, seed {req.seed})")


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
    if req.n < 2:
        raise UsageError(f"--n must be at least 2 (got {req.n})", "the standard is --n 50000")
    if req.splits < 1:
        raise UsageError(f"--splits must be at least 1 (got {req.splits})", "the standard is 10")
    if req.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {req.batch_size})", "try 50")
    return requested


def score(req: ScoreRequest, progress: Progress | None = None, notes: list | None = None) -> dict:
    """Run the whole command; returns the result dict printed by the CLI."""
    notes = notes if notes is not None else []
    requested = validate(req)
    device = pick_device(req.device)
    ref_spec = parse_ref(req.ref) if req.ref else None
    source = input_source(req, device) if req.input else None
    weights = inception_weights.resolve_weights(req.weights, want_logits=bool(requested and "is" in requested))
    metrics, unavailable = choose_metrics(requested, ref_spec is not None, weights.has_logits, LOGITS_HINT)
    for name, why in unavailable.items():
        notes.append(f"{name.upper()} {why}")
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
    net = inception_weights.load_network(weights, device)
    result: dict = {"input": req.input, "ref": req.ref, "weights": weights.source, "device": str(device)}
    ref = None
    if ref_spec is not None:
        ref = resolve_ref(ref_spec, net, weights, req.batch_size, device, progress, notes, req.data_dir)
        result["ref_n"] = ref.n
        if req.save_stats:
            save_stats(Path(req.save_stats), ref, weights.id)
            result["saved_stats"] = req.save_stats
    if source is None:
        return result
    if ref is not None and ref.features is None and "kid" in metrics:
        metrics.remove("kid")
        unavailable["kid"] = "unavailable: the reference statistics file holds no features"
    t0 = time.perf_counter()
    feats = extract(net, source, req.batch_size, device, progress, "input")
    seconds = time.perf_counter() - t0
    if ref is not None and ref.mu.shape[0] != feats.pool3.shape[1]:
        raise DataError(f"{req.ref}: statistics of {ref.mu.shape[0]}-D features, the network gives "
                        f"{feats.pool3.shape[1]}-D", "recompute the reference with this network")
    opts = MetricOptions(req.splits, req.kid_subsets, req.kid_subset_size, req.seed)
    values: dict = {}
    for name in metrics:
        values.update(METRICS[name].fn(feats, ref, opts))
    result.update({"n": source.n, "metrics": values, "unavailable": unavailable,
                   "images_per_s": round(source.n / max(seconds, 1e-9), 2)})
    if "is" in metrics:
        result["splits"] = req.splits
    return result


def format_result(result: dict) -> str:
    """One human line per metric."""
    m = result.get("metrics", {})
    lines = []
    if "is" in m:
        lines.append(f"IS   {m['is']:.4f} +- {m['is_std']:.4f}  ({result['n']} images, {result.get('splits')} splits)")
    if "fid" in m:
        lines.append(f"FID  {m['fid']:.4f}  ({result['n']} images vs {result['ref']}, {result['ref_n']} images)")
    if "kid" in m:
        lines.append(f"KID  {m['kid']:.6f} +- {m['kid_std']:.6f}  (subsets of {m['kid_subset_size']})")
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"{name.upper():4s} {why}")
    if "saved_stats" in result:
        lines.append(f"wrote reference statistics of {result['ref']} ({result['ref_n']} images) "
                     f"to {result['saved_stats']}")
    return "\n".join(lines)
