"""Reference statistics for FID and KID: what `--ref` names (a dataset split, a folder, an .npz, or a statistics
file from `--save-stats`) turned into RefStats (mu, sigma and up to KID_KEEP pool3 features).

Dataset splits come from the image-data registry (data/images.py: the same data directory as `wgan train`); their
statistics are computed once per weights and resize and cached as .safetensors under ~/.cache/wgan/stats/.

A statistics file records the resize its images went through ("tf1" or "clean", inception.preprocess): features of
one resize are never compared with features of the other (FIDs across the two differ by more than rounding), so a
file of the other resize is refused. Files written before the resize was a choice hold "tf1-bilinear-299".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

from wgan_cli import files
from wgan_cli.data import images as datasets
from wgan_cli.distributed import LOCAL, Group
from wgan_cli.errors import DataError, OutputError, UsageError
from wgan_cli.events import Note
from wgan_cli.metrics.features import Progress, array_source, extract, folder_source, tensor_source
from wgan_cli.metrics.inputs import RefStats
from wgan_cli.metrics.scores import statistics
from wgan_cli.metrics.weights import Weights, cache_dir

STATS_FORMAT = "wgan-stats"
KID_KEEP = 10_000          # pool3 features kept in a statistics file for KID, pr, dc (a fixed random subset beyond)
RESIZE_NAMES = {"tf1": "tf1-bilinear-299", "clean": "clean-pil-bicubic-299"}   # as a statistics file records them


def check_finite(path_or_source, **tensors) -> None:
    """Reference statistics with NaN or infinity would make every score meaningless: refused."""
    bad = [name for name, t in tensors.items() if t is not None and not torch.isfinite(t).all()]
    if bad:
        raise DataError(f"{path_or_source}: reference {', '.join(bad)} hold NaN or infinite values",
                        "recompute the reference statistics from images (--save-stats)")


def ref_stats(features: torch.Tensor, source: str, keep: int = KID_KEEP) -> RefStats:
    """mu, sigma over all features; KID's features are all of them, or a fixed random `keep` of them."""
    check_finite(source, features=features)
    mu, sigma = statistics(features)
    kept = features
    if len(features) > keep:
        kept = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:keep]]
    return RefStats(mu, sigma, kept.contiguous(), len(features), source)


def save_stats(path: Path, stats: RefStats, weights_id: str, resize: str = "tf1") -> Path:
    tensors = {"mu": stats.mu, "sigma": stats.sigma}
    if stats.features is not None:
        tensors["features"] = stats.features
    meta = {"format": STATS_FORMAT, "version": 1, "n": stats.n, "source": stats.source, "weights": weights_id,
            "resize": RESIZE_NAMES[resize]}
    return files.write_safetensors(path, {k: v.contiguous() for k, v in tensors.items()},
                                   {STATS_FORMAT: json.dumps(meta)}, "choose a writable path")


def is_stats_file(path: Path) -> bool:
    return files.header_metadata(path, STATS_FORMAT) is not None


def stats_resize(meta: dict) -> str:
    """"tf1" or "clean": the resize a statistics file's images went through (its metadata's name for it)."""
    recorded = meta.get("resize", RESIZE_NAMES["tf1"])
    return next((k for k, v in RESIZE_NAMES.items() if recorded in (k, v)), str(recorded))


def load_stats(path: Path, weights_id: str | None = None, resize: str | None = None) -> tuple[RefStats, str | None]:
    """A statistics file -> (RefStats, warning or None). With `resize`, a file of another resize is refused."""
    meta = files.header_metadata(path, STATS_FORMAT)
    if meta is None or meta.get("format") != STATS_FORMAT:
        raise DataError(f"{path}: not a reference-statistics file written by `wgan score --save-stats`",
                        "give a dataset split (fashion-mnist:train), a folder, an .npz, or a --save-stats file")
    if resize is not None and stats_resize(meta) != resize:
        raise UsageError(f"{path} holds statistics of images resized with {stats_resize(meta)}, not {resize}: "
                         "the two FIDs are not comparable",
                         f"use --resize {stats_resize(meta)}, or recompute the reference with --resize {resize} "
                         "--save-stats")
    try:
        t = load_file(str(path))
    except Exception as e:   # damaged file: safetensors raises several types
        raise DataError(f"{path}: cannot read statistics ({e})", "recreate it with --save-stats") from None
    d = t["mu"].shape[0] if "mu" in t and t["mu"].ndim == 1 else -1
    if d < 1 or "sigma" not in t or t["sigma"].shape != (d, d) or \
            ("features" in t and t["features"].shape[1:] != (d,)):
        raise DataError(f"{path}: statistics of inconsistent shapes", "recreate it with --save-stats")
    check_finite(path, mu=t["mu"], sigma=t["sigma"], features=t.get("features"))
    if not isinstance(meta.get("n"), int) or isinstance(meta.get("n"), bool) or meta["n"] < 2:
        raise DataError(f"{path}: the statistics file gives no valid image count", "recreate it with --save-stats")
    warning = None
    if weights_id and meta.get("weights") != weights_id:
        warning = (f"{path} was computed with Inception weights {meta.get('weights')}, these are {weights_id} "
                   "(same network from another source: differences ~1e-6)")
    return RefStats(t["mu"], t["sigma"], t.get("features"), int(meta["n"]), meta.get("source", str(path))), warning


@dataclass
class RefSpec:
    kind: str          # "split" | "folder" | "array" | "stats"
    text: str
    dataset: str = ""
    split: str = ""
    path: Path | None = None


def parse_ref(text: str) -> RefSpec:
    path = Path(text)
    if path.exists():
        if path.is_dir():
            return RefSpec("folder", text, path=path)
        if path.suffix in (".npz", ".npy"):
            return RefSpec("array", text, path=path)
        if path.suffix == ".safetensors":
            return RefSpec("stats", text, path=path)
        raise UsageError(f"--ref {text}: unknown file type {path.suffix or '(none)'}",
                         "use a dataset split, a folder of images, an .npz/.npy, or a statistics .safetensors")
    name, _, split = text.partition(":")
    if split and name in datasets.split_names():
        return RefSpec("split", text, dataset=name, split=split)
    if split:
        raise UsageError(f"--ref {text}: unknown dataset {name!r}",
                         f"datasets: {', '.join(datasets.split_names())} (as NAME:SPLIT), or a path")
    raise DataError(f"--ref {text}: no such file or folder", "give a dataset split such as fashion-mnist:train, "
                    "a folder of images, an .npz, or a statistics file")


def stats_cache_path(spec: RefSpec, weights_id: str, resize: str = "tf1") -> Path:
    suffix = "" if resize == "tf1" else f"-{resize}"   # tf1 keeps the name it had before the resize was a choice
    return cache_dir() / "stats" / f"{spec.dataset}-{spec.split}-{weights_id}{suffix}.safetensors"


def resolve_ref(spec: RefSpec, net, weights: Weights, batch_size: int, device: torch.device,
                progress: Progress | None = None, sink: Callable[[Note], None] | None = None,
                data_dir: str | None = None, resize: str = "tf1", group: Group = LOCAL) -> RefStats:
    """The reference's statistics: read from a file or the cache, or computed from its images (with `net`, whose
    resize must be `resize`; under torchrun by all ranks together, unless every rank finds them cached; each node
    caches them once). What the user should know (other weights, a cache not written) goes to `sink` as a Note."""
    emit = sink or (lambda event: None)
    if spec.kind == "stats":
        stats, warning = load_stats(spec.path, weights.id, resize)
        if warning:
            emit(Note(warning, "warning"))
        return stats
    if spec.kind == "split":
        cached, found = stats_cache_path(spec, weights.id, resize), None
        if cached.is_file():
            try:
                found = load_stats(cached, weights.id, resize)[0]
            except (DataError, UsageError):
                cached.unlink(missing_ok=True)   # damaged (or foreign) cache entry: recompute
        if group.all_true(found is not None):
            return found
        images = datasets.load_split(spec.dataset, spec.split, data_dir)
        source = tensor_source(images, f"dataset {spec.text} ({len(images)} images)")
    elif spec.kind == "array":
        source = array_source(spec.path)
    else:
        source = folder_source(spec.path)
    if source.n < 2:
        raise DataError(f"--ref {spec.text}: {source.n} image(s); a reference needs at least 2", "")
    stats = ref_stats(extract(net, source, batch_size, device, progress, "reference", group).pool3, spec.text)
    if spec.kind == "split" and group.local_rank == 0:
        try:
            save_stats(stats_cache_path(spec, weights.id, resize), stats, weights.id, resize)
        except OutputError as e:
            emit(Note(f"could not cache the reference statistics: {e.message}", "warning"))
    return stats
