"""`wgan score`: Inception Score, FID, KID, precision/recall and density/coverage of a generator checkpoint, an
image folder or an .npz of images.

The pipeline, one small step each: INPUT -> uint8 image batches (metrics/features.py) -> Inception features
(pool3, logits; images resized to 299x299 the tf1 or the clean way) -> the metrics of metrics/registry.py, against
reference statistics (metrics/references.py). With `repeats` K > 1 a checkpoint is scored on K independent sample
sets (seeds seed, seed + 1, ...) and each metric is reported as the mean and standard deviation over them.
Under torchrun every rank generates and extracts its share of the batches; the features are gathered in order.

`--nearest K` is a check of its own (nearest_check, below): a checkpoint's samples, each one's K nearest training
images of --ref (data/images.searched_images selects them as training did; metrics/nearest.py searches), drawn into
a PNG (outputs.write_neighbours), and nearest_ratio against held-out real images.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

import torch

from wgan_cli import checkpoint, fields, outputs, torchrun
from wgan_cli.config import NearestOrder, NearestSpace, ScoreRequest
from wgan_cli.data import images as datasets
from wgan_cli.data.prepared import is_prepared, usable_cpus
from wgan_cli.engine import pick_device
from wgan_cli.errors import DataError, UsageError, WeightsError
from wgan_cli.events import Note
from wgan_cli.metrics import fastpath, weights as inception_weights
from wgan_cli.metrics.inception import RESIZES
from wgan_cli.metrics.features import (ImageSource, Progress, array_source, extract, folder_source, generator_source,
                                       tensor_source)
from wgan_cli.metrics.inputs import MetricOptions
from wgan_cli.metrics.nearest import nearest_ratio, search
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
    if req.nearest is not None:
        validate_nearest(req)
        return requested
    if req.output is not None:
        raise UsageError(f"-o {req.output}: -o names the PNG of --nearest", "add --nearest K, or drop -o")
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


CPU_IMAGES_PER_S = 18   # the eager Inception network in fp32 on a 2-core CPU (docs/performance.md), before a measurement


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
    if req.nearest is not None:
        return nearest_check(req, progress, emit)
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
    if "nearest" in result:
        lines += nearest_lines(result)
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"{name.upper():4s} {why}")
    if "saved_stats" in result:
        lines.append(f"wrote reference statistics of {result['ref']} ({result['ref_n']} images, {resize}) "
                     f"to {result['saved_stats']}")
    return "\n".join(lines)


# ---- --nearest: the memorisation check -------------------------------------------------------------------------

NEAREST_EXAMPLE = "wgan score runs/fm/generator.safetensors --ref fashion-mnist --nearest 5 -o nearest.png"


def nearest_data(text: str) -> str:
    """--ref of --nearest -> the data set as `wgan train --dataset` names it: a built-in set (NAME or NAME:train),
    folder:PATH or a folder of images, or a prepared set. Sets of images without a training split of their own
    (a statistics file, an .npz, a test split) are refused."""
    hint = "give the data set the checkpoint trained on: a name (fashion-mnist), a folder of images or a prepared set"
    if text.startswith("folder:"):
        return text
    path = Path(os.path.expanduser(text))
    if path.exists():
        if path.is_dir():
            return str(path) if is_prepared(path) else f"folder:{path}"
        if path.suffix == ".safetensors" and is_stats_file(path):
            raise UsageError(f"--ref {text}: a statistics file holds no images for --nearest to search", hint)
        raise UsageError(f"--ref {text}: --nearest searches a data set's training images, not a file", hint)
    name, _, split = text.partition(":")
    if name in datasets.DATASETS:
        if split not in ("", "train"):
            raise UsageError(f"--ref {text}: --nearest searches the training images (the test split is what it "
                             "compares them with)", f"use --ref {name}")
        return name
    raise UsageError(f"--ref {text}: no such data set, file or folder",
                     f"data sets: {', '.join(datasets.DATASETS)}; or a folder of images, or a prepared set")


def validate_nearest(req: ScoreRequest) -> str:
    """The cheap checks of --nearest; returns the data set to search."""
    if req.input is None or not is_checkpoint_input(req.input) or \
            (Path(req.input).is_file() and is_stats_file(Path(req.input))):
        raise UsageError("--nearest compares a generator's samples with its training images: give a generator "
                         "checkpoint as INPUT", NEAREST_EXAMPLE)
    if req.ref is None:
        raise UsageError("--nearest searches the training images of --ref, which is missing",
                         "add --ref with the data set the checkpoint trained on, e.g. --ref fashion-mnist")
    if req.output is None:
        raise UsageError("--nearest draws its samples and their neighbours into a PNG: -o is missing",
                         "add -o nearest.png")
    if Path(req.output).suffix.lower() != ".png":
        raise UsageError(f"-o {req.output}: --nearest writes a PNG", "use a path ending in .png")
    for given, flag in ((req.metrics, "--metrics"), (req.save_stats, "--save-stats"),
                        (req.repeats > 1 or None, "--repeats")):
        if given is not None:
            raise UsageError(f"{flag} and --nearest are separate runs of `wgan score`", f"drop {flag} here, and "
                             "score the metrics in a run of their own")
    fields.check(req)
    if req.resize not in RESIZES:
        raise UsageError(f"--resize {req.resize}: unknown resize", f"choose one of: {', '.join(RESIZES)}")
    return nearest_data(req.ref)


def nearest_check(req: ScoreRequest, progress: Progress | None, emit: Callable[[Note], None]) -> dict:
    """--nearest: draw req.nearest_n samples, find each one's K nearest training images of --ref (and each held-out
    image's nearest), write the grid of the first rows (or the closest) to -o, and return nearest_ratio."""
    name = validate_nearest(req)
    outputs.check_output(req.output, "-o", {"INPUT": req.input, "--ref": req.ref})
    group = torchrun.join(pick_device(req.device))
    if group.world > 1:
        raise UsageError("--nearest runs in one process", "run it without torchrun")
    device = group.device
    G, meta = checkpoint.load_generator(req.input, ema=req.ema, device=device, task="image",
                                        command="wgan score --nearest")
    source = generator_source(G, req.nearest_n, req.seed, device, G.pixel_range, "")
    samples = torch.cat([b.cpu() for b in source.batches(req.batch_size)])           # uint8 (n, C, H, W)
    extra = meta.get("extra") or {}
    data = datasets.searched_images(name, req.data_dir, size=samples.shape[-1], recorded=extra,
                                    max_heldout=req.nearest_n, workers=min(4, usable_cpus()))
    n_train = len(data.train)
    if req.nearest > n_train:
        raise UsageError(f"--nearest {req.nearest}: there are {n_train} images to search ({data.train_from})",
                         f"choose --nearest {n_train} or fewer")
    pixel = req.nearest_space == NearestSpace.pixel
    if pixel and data.train.shape[1:] != samples.shape[1:]:
        raise UsageError(f"--nearest-space pixel: the samples are {tuple(samples.shape[1:])} (C, H, W), the images "
                         f"of {req.ref} {tuple(data.train.shape[1:])}", "use --nearest-space inception")
    if not data.own:
        emit(Note(f"{req.input} was not trained on {req.ref} (it records {extra.get('dataset') or 'no data set'}): "
                  f"searching {data.train_from}", "warning"))
    if len(data.heldout) == 0:
        emit(Note(f"{req.ref} has no held-out images here ({data.heldout_from}): nearest_ratio cannot be computed",
                  "warning"))
    result: dict = {"input": req.input, "ref": req.ref, "nearest": req.nearest, "space": req.nearest_space,
                    "device": str(device), "searched": data.train_from, "train_n": n_train,
                    "heldout": data.heldout_from, "heldout_n": len(data.heldout), "n": len(samples),
                    "own_data": data.own}
    if pixel:
        vectors = [x.flatten(1) for x in (samples, data.heldout, data.train)]   # uint8, scaled to [0, 1] in search
        scale = 1 / 255
    else:
        vectors, scale = nearest_features(req, device, progress, emit, result,
                                          [("samples", samples), ("held-out images", data.heldout),
                                           ("training images", data.train)]), 1.0
    queries, train = torch.cat(vectors[:2]), vectors[2]
    dist, idx = search(queries, train, req.nearest, scale=scale, device=device)   # (n + m, K)
    sample_d, heldout_d = dist[: len(samples), 0], dist[len(samples):, 0]
    if len(heldout_d):
        result.update(nearest_ratio(sample_d, heldout_d))
    else:
        result.update(nearest_ratio=None, nearest_ratio_se=None, sample_distance=sample_d.mean().item())
    order = sample_d.argsort(stable=True) if req.nearest_order == NearestOrder.closest else \
        torch.arange(len(samples))
    shown = order[: req.nearest_rows]   # all the samples, when there are fewer
    captions = [[f"sample {int(i)}"] + [f"{d:.3g} #{j}" for d, j in zip(dist[i].tolist(), idx[i].tolist())]
                for i in shown]
    nhwc = [0, 1, 3, 4, 2]   # (R, K, C, H, W) -> (R, K, H, W, C)
    outputs.write_neighbours(samples[shown].permute(0, 2, 3, 1).numpy(),
                             data.train[idx[shown]].permute(*nhwc).numpy(), captions, req.output)
    result.update(order=req.nearest_order, output=req.output,
                  rows=[{"sample": int(i), "neighbours": idx[i].tolist(), "distances": dist[i].tolist()}
                        for i in shown])
    return result


def nearest_features(req: ScoreRequest, device: torch.device, progress: Progress | None,
                     emit: Callable[[Note], None], result: dict, sets: list[tuple[str, torch.Tensor]]) -> list:
    """Inception pool3 features (N, 2048) of each uint8 image set, through the network `wgan score` uses."""
    total = sum(len(x) for _, x in sets)
    if device.type == "cpu":
        rate, measured = cpu_rate(req, device)
        if total > 5 * 60 * rate:
            emit(Note(f"{total} images through the Inception network on the CPU take about {total / rate / 60:.0f} "
                      f"minutes (about {rate:.0f} images/s {measured}); --nearest-space pixel is instant"))
    weights = inception_weights.resolve_weights(req.weights, want_logits=False)
    net = fastpath.wrap(inception_weights.load_network(weights, device), "auto" if req.compile else "off",
                        lambda text: emit(Note(text)))
    net.resize = req.resize
    result.update(weights=weights.source, resize=req.resize)
    feats = [extract(net, tensor_source(x, f"{len(x)} {label}"), req.batch_size, device, progress, label).pool3
             if len(x) else None for label, x in sets]
    width = next(f.shape[1] for f in feats if f is not None)   # the samples are never empty
    return [f if f is not None else torch.zeros((0, width)) for f in feats]


def nearest_lines(result: dict) -> list[str]:
    """The human output of --nearest."""
    space = "Inception pool3 features" if result["space"] == NearestSpace.inception else "pixels in [0, 1]"
    lines = []
    if result.get("nearest_ratio") is not None:
        m = result["heldout_n"]
        lines += [f"nearest_ratio {result['nearest_ratio']:.4f} +- {result['nearest_ratio_se']:.4f}  (mean distance "
                  f"to the nearest training image: {result['n']} samples {result['sample_distance']:.4g}, {m} "
                  f"held-out images {result['heldout_distance']:.4g}; {space}; ~1: as far as new real images, "
                  "well below 1: copies)",
                  f"samples nearer to a training image than every held-out image: "
                  f"{100 * result['closer_than_heldout']:.1f}%  (about {100 / (m + 1):.1f}% for new real images)"]
    else:
        why = "every held-out image is also a training image" if result["heldout_n"] else "no held-out images"
        lines.append(f"nearest_ratio unavailable: {why}; mean distance of {result['n']} samples to the "
                     f"nearest training image {result['sample_distance']:.4g} ({space})")
    lines += [f"searched {result['searched']}; held out: {result['heldout']}",
              f"wrote {result['output']}: {len(result['rows'])} samples ({result['order']}), each with its "
              f"{result['nearest']} nearest training images"]
    return lines
