"""Reference statistics for FID and KID: what `--ref` names (a dataset split, a folder, an .npz, or a statistics
file from `--save-stats`) turned into RefStats (mu, sigma and up to KID_KEEP pool3 features).

Dataset splits come from the image-data registry (data/images.py: the same data directory as `wgan train`); their
statistics are computed once per weights and cached as .safetensors under ~/.cache/wgan/stats/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from wgan_cli import files
from wgan_cli.data import images as datasets
from wgan_cli.errors import DataError, OutputError, UsageError
from wgan_cli.metrics.features import Progress, array_source, extract, folder_source, tensor_source
from wgan_cli.metrics.scores import RefStats, statistics
from wgan_cli.metrics.weights import Weights, cache_dir

STATS_FORMAT = "wgan-stats"
KID_KEEP = 10_000          # pool3 features kept in a statistics file for KID (a fixed random subset beyond that)


def ref_stats(features: torch.Tensor, source: str, keep: int = KID_KEEP) -> RefStats:
    """mu, sigma over all features; KID's features are all of them, or a fixed random `keep` of them."""
    mu, sigma = statistics(features)
    kept = features
    if len(features) > keep:
        kept = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:keep]]
    return RefStats(mu, sigma, kept.contiguous(), len(features), source)


def save_stats(path: Path, stats: RefStats, weights_id: str) -> Path:
    tensors = {"mu": stats.mu, "sigma": stats.sigma}
    if stats.features is not None:
        tensors["features"] = stats.features
    meta = {"format": STATS_FORMAT, "version": 1, "n": stats.n, "source": stats.source, "weights": weights_id,
            "resize": "tf1-bilinear-299"}
    return files.write_safetensors(path, {k: v.contiguous() for k, v in tensors.items()},
                                   {STATS_FORMAT: json.dumps(meta)}, "choose a writable path")


def is_stats_file(path: Path) -> bool:
    return files.header_metadata(path, STATS_FORMAT) is not None


def load_stats(path: Path, weights_id: str | None = None) -> tuple[RefStats, str | None]:
    """A statistics file -> (RefStats, warning or None)."""
    meta = files.header_metadata(path, STATS_FORMAT)
    if meta is None or meta.get("format") != STATS_FORMAT:
        raise DataError(f"{path}: not a reference-statistics file written by `wgan score --save-stats`",
                        "give a dataset split (fashion-mnist:train), a folder, an .npz, or a --save-stats file")
    try:
        t = load_file(str(path))
    except Exception as e:   # damaged file: safetensors raises several types
        raise DataError(f"{path}: cannot read statistics ({e})", "recreate it with --save-stats") from None
    d = t["mu"].shape[0] if "mu" in t and t["mu"].ndim == 1 else -1
    if d < 1 or "sigma" not in t or t["sigma"].shape != (d, d) or \
            ("features" in t and t["features"].shape[1:] != (d,)):
        raise DataError(f"{path}: statistics of inconsistent shapes", "recreate it with --save-stats")
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


def stats_cache_path(spec: RefSpec, weights_id: str) -> Path:
    return cache_dir() / "stats" / f"{spec.dataset}-{spec.split}-{weights_id}.safetensors"


def resolve_ref(spec: RefSpec, net, weights: Weights, batch_size: int, device: torch.device,
                progress: Progress | None = None, notes: list | None = None,
                data_dir: str | None = None) -> RefStats:
    """The reference's statistics: read from a file or the cache, or computed from its images."""
    notes = notes if notes is not None else []
    if spec.kind == "stats":
        stats, warning = load_stats(spec.path, weights.id)
        if warning:
            notes.append(warning)
        return stats
    if spec.kind == "split":
        cached = stats_cache_path(spec, weights.id)
        if cached.is_file():
            try:
                return load_stats(cached, weights.id)[0]
            except DataError:
                cached.unlink(missing_ok=True)   # damaged cache entry: recompute
        images = datasets.load_split(spec.dataset, spec.split, data_dir)
        source = tensor_source(images, f"dataset {spec.text} ({len(images)} images)")
    elif spec.kind == "array":
        source = array_source(spec.path)
    else:
        source = folder_source(spec.path)
    if source.n < 2:
        raise DataError(f"--ref {spec.text}: {source.n} image(s); a reference needs at least 2", "")
    stats = ref_stats(extract(net, source, batch_size, device, progress, "reference").pool3, spec.text)
    if spec.kind == "split":
        try:
            save_stats(stats_cache_path(spec, weights.id), stats, weights.id)
        except OutputError as e:
            notes.append(f"could not cache the reference statistics: {e.message}")
    return stats
