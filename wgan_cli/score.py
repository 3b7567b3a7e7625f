"""`wgan score`: Inception Score, FID and KID of a generator checkpoint, an image folder or an .npz of images.

The pipeline, one small step each: INPUT -> uint8 image batches (ImageSource) -> Inception features (pool3,
logits) -> the metrics of scores.METRICS. References (a dataset split, a folder, an .npz, or a statistics file)
become RefStats (mu, sigma and up to KID_KEEP pool3 features); dataset splits are computed once per weights and
cached as .safetensors under ~/.cache/wgan/stats/.

Image datasets: REF_READERS maps a dataset name to `reader(split) -> uint8 (N, C, H, W)`; add an entry to
score another dataset split (the image-data module plugs in here).
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import struct
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from wgan_cli.errors import DataError, OutputError, UsageError, WeightsError
from wgan_cli.data.images import to_uint8
from wgan_cli.metrics import inception
from wgan_cli.metrics.scores import METRICS, Features, MetricOptions, RefStats, statistics

STATS_FORMAT = "wgan-stats"
KID_KEEP = 10_000          # pool3 features kept in a statistics file for KID (a fixed random subset beyond that)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
Progress = Callable[[int, int, str], None]


# ---- dataset splits -----------------------------------------------------------------------------------------
REINSTALL = "reinstall the dataset (apt-get install dataset-fashion-mnist)"


def read_idx_images(path: Path) -> torch.Tensor:
    """An IDX3 .gz file of uint8 images (MNIST / Fashion-MNIST layout) -> (N, 1, H, W) uint8."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})", REINSTALL) from None
    if len(raw) < 16 or struct.unpack(">I", raw[:4])[0] != 0x803:
        raise DataError(f"{path}: not an IDX3 image file", REINSTALL)
    n, h, w = struct.unpack(">III", raw[4:16])
    if len(raw) != 16 + n * h * w:
        raise DataError(f"{path}: truncated ({len(raw) - 16} pixel bytes, header promises {n * h * w})", REINSTALL)
    return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, 1, h, w)


def fashion_mnist_dir() -> Path:
    return Path(os.environ.get("WGAN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def read_fashion_mnist(split: str) -> torch.Tensor:
    files = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}
    if split not in files:
        raise UsageError(f"fashion-mnist has no split {split!r}", "use fashion-mnist:train or fashion-mnist:test")
    path = fashion_mnist_dir() / files[split]
    if not path.is_file():
        raise DataError(f"{path}: Fashion-MNIST is not installed",
                        "apt-get install dataset-fashion-mnist, or set WGAN_FASHION_MNIST_DIR")
    return read_idx_images(path)


def dataset_reader(name: str) -> Callable[[str], torch.Tensor]:
    """A split of a `wgan train` dataset, found (or downloaded) where `wgan train` finds it: $WGAN_DATA_DIR,
    default ./data, plus the system locations data/images.py knows."""

    def read(split: str) -> torch.Tensor:
        from wgan_cli.data import images

        root = Path(os.environ.get("WGAN_DATA_DIR", "data"))
        if name in ("mnist",):
            train, test, _ = images.load_mnist_like(name, root, download=True)
        elif name == "svhn":
            train, test, _ = images.load_svhn(root, download=True)
        else:
            train, test, _ = images.load_cifar(name, root, download=True)
        chosen = {"train": train, "test": test}.get(split)
        if chosen is None:
            raise UsageError(f"{name} has no split {split!r}", f"use {name}:train or {name}:test")
        return torch.from_numpy(chosen.images)

    return read


REF_READERS: dict[str, Callable[[str], torch.Tensor]] = {
    "fashion-mnist": read_fashion_mnist,
    **{name: dataset_reader(name) for name in ("mnist", "cifar10", "cifar100", "svhn")},
}


# ---- image sources ------------------------------------------------------------------------------------------
@dataclass
class ImageSource:
    n: int
    batches: Callable[[int], Iterator[torch.Tensor]]   # batch_size -> uint8 (B, C, H, W) batches, in order
    description: str
    background: bool = True   # produce batches in a thread (decoding files overlaps with inference)


def tensor_source(images: torch.Tensor, description: str) -> ImageSource:
    return ImageSource(len(images), lambda bs: (images[i: i + bs] for i in range(0, len(images), bs)), description)


def as_nchw(arr: np.ndarray, path: Path) -> torch.Tensor:
    """uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> (N, C, H, W)."""
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (got {arr.dtype})",
                        "quantise first: uint8 = floor((x + 1) * 127.995) for tanh outputs")
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    elif not (arr.ndim == 4 and arr.shape[1] in (1, 3)):
        raise DataError(f"{path}: expected images of shape (N, H, W, C) or (N, C, H, W) with 1 or 3 channels, "
                        f"got {arr.shape}", "save the array under the key 'images'")
    return torch.from_numpy(np.ascontiguousarray(arr))


def read_array(path: Path) -> torch.Tensor:
    try:   # numpy's np.load refuses object arrays by default: nothing here can run code
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            with np.load(path) as z:
                if "images" not in z.files:
                    raise DataError(f"{path}: no array named 'images' (found: {', '.join(z.files) or 'none'})",
                                    "np.savez(path, images=uint8_array)")
                arr = z["images"]
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read ({e})", "give an .npz written by numpy.savez") from None
    return as_nchw(arr, path)


def folder_source(path: Path) -> ImageSource:
    """Images of one size in a folder (sorted names); decoded lazily, batch by batch."""
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no images in this folder", f"put {', '.join(sorted(IMAGE_SUFFIXES))} files there")
    with Image.open(files[0]) as first:
        size, mode = first.size, ("L" if first.mode in ("L", "1", "I;16") else "RGB")

    def decode(p: Path) -> np.ndarray:
        try:
            with Image.open(p) as im:
                if im.size != size:
                    raise DataError(f"{p}: size {im.size} differs from {size} ({files[0].name})",
                                    "score images of one size")
                return np.asarray(im.convert(mode))
        except OSError as e:
            raise DataError(f"{p}: cannot decode ({e})", "remove or re-save the file") from None

    def batches(bs: int):
        for i in range(0, len(files), bs):
            yield as_nchw(np.stack([decode(p) for p in files[i: i + bs]]), path)

    return ImageSource(len(files), batches, f"{len(files)} images in {path}")


def generator_source(G, n: int, seed: int, device: torch.device, output: str, description: str) -> ImageSource:
    """n samples, drawn from the seed; class-conditional generators get balanced labels in shuffled order."""

    def batches(bs: int):
        gen = torch.Generator(device=device).manual_seed(seed)
        n_classes = getattr(G, "n_classes", None)
        labels = None
        if n_classes:
            labels = (torch.arange(n, device=device) % n_classes)[torch.randperm(n, generator=gen, device=device)]
        with torch.inference_mode():
            for i in range(0, n, bs):
                m = min(bs, n - i)
                z = torch.randn(m, G.z_dim, device=device, generator=gen)
                x = G(z, labels[i: i + m]) if labels is not None else G(z)
                yield to_uint8(x, output)

    return ImageSource(n, batches, description, background=False)   # already on the device


def generator_output(G, meta: dict) -> str:
    return getattr(G, "output", None) or meta.get("model", {}).get("output", "tanh")


# ---- features ---------------------------------------------------------------------------------------------
def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Produce the next items in a background thread (image decoding overlaps with inference)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in items:
                q.put(item)
        except BaseException as e:   # re-raised in the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


@contextmanager
def exact_matmul(device: torch.device):
    """fp32 everywhere: TF32 convolutions (cuDNN's default) would move FID by more than our tolerance."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def extract(net, source: ImageSource, batch_size: int, device: torch.device,
            progress: Progress | None = None, label: str = "features") -> Features:
    """Run the network over every batch; features come back to the CPU as float32."""
    pool3, logits = [], []
    done = 0
    if progress:
        progress(0, source.n, label)
    batches = prefetch(source.batches(batch_size)) if source.background else source.batches(batch_size)
    with torch.inference_mode(), exact_matmul(device):
        for images in batches:
            f, lg = net(images.to(device, non_blocking=True))
            pool3.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
            done += len(images)
            if progress:
                progress(done, source.n, label)
    if done != source.n:
        raise DataError(f"{source.description}: expected {source.n} images, read {done}", "")
    return Features(torch.cat(pool3), torch.cat(logits) if logits else None)


# ---- reference statistics ---------------------------------------------------------------------------------
def ref_stats(features: torch.Tensor, source: str, keep: int = KID_KEEP) -> RefStats:
    """mu, sigma over all features; KID's features are all of them, or a fixed random `keep` of them."""
    mu, sigma = statistics(features)
    kept = features
    if len(features) > keep:
        kept = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:keep]]
    return RefStats(mu, sigma, kept.contiguous(), len(features), source)


def save_stats(path: Path, stats: RefStats, weights_id: str) -> Path:
    from safetensors.torch import save_file

    tensors = {"mu": stats.mu, "sigma": stats.sigma}
    if stats.features is not None:
        tensors["features"] = stats.features
    meta = {"format": STATS_FORMAT, "version": 1, "n": stats.n, "source": stats.source, "weights": weights_id,
            "resize": "tf1-bilinear-299"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata={STATS_FORMAT: json.dumps(meta)})
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write statistics to {path}: {e.strerror}", "choose a writable path") from None
    return path


def safetensors_metadata(path: Path) -> dict:
    """The header's __metadata__ (cheap: no tensor read); {} when it is not a safetensors file."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * 1024 * 1024 or n + 8 > path.stat().st_size:
                return {}
            return json.loads(f.read(n)).get("__metadata__") or {}
    except (OSError, ValueError, struct.error):
        return {}


def load_stats(path: Path, weights_id: str | None = None) -> tuple[RefStats, str | None]:
    """A statistics file -> (RefStats, warning or None)."""
    from safetensors.torch import load_file

    meta = json.loads(safetensors_metadata(path).get(STATS_FORMAT, "null") or "null")
    if not isinstance(meta, dict) or meta.get("format") != STATS_FORMAT:
        raise DataError(f"{path}: not a reference-statistics file written by `wgan score --save-stats`",
                        "give a dataset split (fashion-mnist:train), a folder, an .npz, or a --save-stats file")
    try:
        t = load_file(str(path))
    except Exception as e:   # damaged file: safetensors raises several types
        raise DataError(f"{path}: cannot read statistics ({e})", "recreate it with --save-stats") from None
    d = t["mu"].shape[0] if t["mu"].ndim == 1 else -1
    if d < 1 or t["sigma"].shape != (d, d) or ("features" in t and t["features"].shape[1:] != (d,)):
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
    if split and name in REF_READERS:
        return RefSpec("split", text, dataset=name, split=split)
    if split:
        raise UsageError(f"--ref {text}: unknown dataset {name!r}",
                         f"datasets: {', '.join(sorted(REF_READERS))} (as NAME:SPLIT), or a path")
    raise DataError(f"--ref {text}: no such file or folder", "give a dataset split such as fashion-mnist:train, "
                    "a folder of images, an .npz, or a statistics file")


def stats_cache_path(spec: RefSpec, weights_id: str) -> Path:
    return inception.cache_dir() / "stats" / f"{spec.dataset}-{spec.split}-{weights_id}.safetensors"


def resolve_ref(spec: RefSpec, net, weights: inception.Weights, batch_size: int, device: torch.device,
                progress: Progress | None = None, notes: list | None = None) -> RefStats:
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
        images = REF_READERS[spec.dataset](spec.split)
        source = tensor_source(images, f"dataset {spec.text} ({len(images)} images)")
    elif spec.kind == "array":
        images = read_array(spec.path)
        source = tensor_source(images, f"{len(images)} images in {spec.path}")
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


# ---- the command ------------------------------------------------------------------------------------------
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


@dataclass
class Plan:
    source: ImageSource | None
    ref: RefSpec | None
    metrics: list[str]
    unavailable: dict = field(default_factory=dict)


def parse_metrics(text: str | None) -> list[str] | None:
    if text is None or text.strip() in ("", "all"):
        return None
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric {unknown[0]!r}", f"choose from: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def input_source(req: ScoreRequest, device: torch.device) -> ImageSource:
    path = Path(req.input)
    if path.is_dir():
        return folder_source(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", "give a generator checkpoint, a folder of images or an .npz")
    if path.suffix in (".npz", ".npy"):
        images = read_array(path)
        return tensor_source(images, f"{len(images)} images in {path}")
    if path.suffix == ".safetensors" and STATS_FORMAT in safetensors_metadata(path):
        raise UsageError(f"{path}: a statistics file cannot be scored", "give it as --ref instead")
    from wgan_cli.sample import load_generator

    G, meta = load_generator(path, ema=req.ema, device=device, task="image", command="wgan score")
    return generator_source(G, req.n, req.seed, device, generator_output(G, meta),
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


def choose_metrics(requested: list[str] | None, has_ref: bool, has_logits: bool) -> tuple[list[str], dict]:
    wanted = requested if requested is not None else [m for m in METRICS if has_ref or not METRICS[m].needs_ref]
    unavailable = {}
    if not has_logits and "is" in wanted:
        unavailable["is"] = ("unavailable: the Inception weights found have no logits layer (pool3 only); "
                             f"IS needs {inception.HUB_NAMES[0]} (see `wgan score --help`)")
    return [m for m in wanted if m not in unavailable], unavailable


def score(req: ScoreRequest, progress: Progress | None = None, notes: list | None = None) -> dict:
    """Run the whole command; returns the result dict printed by the CLI."""
    from wgan_cli.engine import pick_device

    notes = notes if notes is not None else []
    requested = validate(req)
    device = pick_device(req.device)
    ref_spec = parse_ref(req.ref) if req.ref else None
    source = input_source(req, device) if req.input else None
    weights = inception.resolve_weights(req.weights, want_logits=bool(requested and "is" in requested))
    metrics, unavailable = choose_metrics(requested, ref_spec is not None, weights.has_logits)
    for name, why in unavailable.items():
        notes.append(f"{name.upper()} {why}")
    if source is not None and not metrics:
        if requested is None and ref_spec is None:
            raise UsageError("only FID and KID can be computed with the weights found (no logits layer for IS), "
                             "and they need a reference", "add --ref fashion-mnist:train (or a folder or .npz)")
        raise WeightsError("none of the requested metrics can be computed with the weights found",
                           inception._ways_hint())
    if source is not None and source.n < 2:
        raise DataError(f"{req.input}: {source.n} image(s); the scores need at least 2", "score more images")
    if source is not None and "is" in metrics and req.splits > source.n:
        raise UsageError(f"--splits {req.splits} is more than the {source.n} images", "lower --splits")
    net = inception.load_network(weights, device)
    result: dict = {"input": req.input, "ref": req.ref, "weights": weights.source, "device": str(device)}
    ref = None
    if ref_spec is not None:
        ref = resolve_ref(ref_spec, net, weights, req.batch_size, device, progress, notes)
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


def plain_progress(stream=None, every_s: float = 5.0) -> Progress:
    """Progress lines on stderr, at most one every `every_s` seconds, and one at the end of each pass."""
    stream = stream or sys.stderr
    state = {"t": 0.0, "start": {}}

    def show(done: int, total: int, label: str) -> None:
        now = time.perf_counter()
        start = state["start"].setdefault(label, now)
        if done == 0 or (done < total and now - state["t"] < every_s):
            return
        state["t"] = now
        rate = done / max(now - start, 1e-9)
        print(f"{label}: {done}/{total} images ({rate:.1f} img/s)", file=stream, flush=True)

    return show


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
