"""A folder of photos: preparation rate, and training speed from the prepared folder against an in-memory array.

It makes (once; kept in --photos) a folder of synthetic photos: mostly 1600x1200 JPEGs (smooth colour fields with
noise, ~300 KB each), and in every 8: a portrait JPEG stored sideways with EXIF orientation 6, a 1024x768 RGBA
PNG, a 640x480 grayscale JPEG, an 800x800 CMYK JPEG and a 3000x2000 JPEG. Then, in one run:

  decode CPU   CPU seconds per photo (time.process_time, so other work on shared cores does not count) of
               data/decode.py against the old per-draw decoding (full decode, convert, bicubic resize, crop), on
               --cpu-sample photos, interleaved
  prepare      `wgan prepare`'s path (data/prepared.py) with --workers processes: images/s (wall clock)
  first use    load_image_data("folder:PHOTOS") on an empty cache: seconds until the first batch (prepares)
  second use   the same again: seconds until the first batch (reads the cached set, no decoding)
  training     generator iterations/s of the same nets (dcgan, --dim, batch 64, n_critic 5) drawing from
                 array     an in-memory uint8 array of the same shape (what MNIST/CIFAR use)
                 prepared  the prepared folder, held on the device (it fits the memory budget)
                 mapped    the prepared folder read from its memory map by DataLoader workers (--memory-budget 0)
               interleaved (one block of each, repeated) so a noisy machine slows all alike; medians reported.

    python benchmarks/prepared_folder.py                      # 640 photos, 32 px, CPU (the numbers in docs/data.md)
    python benchmarks/prepared_folder.py --device cuda --size 64
    python benchmarks/prepared_folder.py --tiny --json out.json   # CI smoke test (seconds)
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import time_block  # noqa: E402   the one timing loop of the benchmarks

from wgan_cli import models  # noqa: E402
from wgan_cli.config import TrainConfig, resolve_train  # noqa: E402
from wgan_cli.data.decode import Decoding  # noqa: E402
from wgan_cli.data.images import load_image_data  # noqa: E402
from wgan_cli.data.prepared import list_folder, prepare  # noqa: E402
from wgan_cli.data.samplers import DeviceImages  # noqa: E402
from wgan_cli.engine import Engine  # noqa: E402

KINDS = ["landscape", "portrait-exif6", "rgba-png", "gray", "landscape", "cmyk", "large", "landscape"]


def make_photo(args) -> None:
    """One synthetic photo: a smooth random colour field (bicubic from 12x16) plus sensor-like noise."""
    from PIL import Image

    path, i, w, h = args
    rng = np.random.default_rng(i)
    kind = KINDS[i % len(KINDS)]
    if kind == "portrait-exif6":
        w, h = h, w   # stored sideways: 1600 wide, shown 1200 wide after the EXIF rotation
    elif kind == "rgba-png":
        w, h = max(8, w * 16 // 25), max(8, h * 16 // 25)
    elif kind == "gray":
        w, h = max(8, w * 2 // 5), max(8, h * 2 // 5)
    elif kind == "cmyk":
        w = h
    elif kind == "large":
        w, h = w * 15 // 8, h * 5 // 3
    field = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.asarray(field).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if kind == "portrait-exif6":
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(path / f"{i:05d}.jpg", quality=90, exif=exif.tobytes())
    elif kind == "rgba-png":
        alpha = Image.fromarray(rng.integers(128, 255, (h, w), dtype=np.uint8))
        im.putalpha(alpha)
        im.save(path / f"{i:05d}.png", compress_level=1)
    elif kind == "gray":
        im.convert("L").save(path / f"{i:05d}.jpg", quality=90)
    elif kind == "cmyk":
        im.convert("CMYK").save(path / f"{i:05d}.jpg", quality=90)
    else:
        im.save(path / f"{i:05d}.jpg", quality=90)


def make_photos(folder: Path, n: int, width: int, height: int, workers: int) -> None:
    done = folder / ".complete"
    if done.exists() and done.read_text() == f"{n} {width} {height}":
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(make_photo, [(folder, i, width, height) for i in range(n)], chunksize=8)
    done.write_text(f"{n} {width} {height}")


def old_decode(data: bytes, size: int) -> np.ndarray:
    """What a folder's draw did before prepared sets: a full decode, convert, bicubic resize, centre crop."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def decode_cpu(files: list[Path], size: int, rounds: int) -> dict:
    """CPU seconds per photo of the new and the old decoding, interleaved file by file."""
    from wgan_cli.data.decode import decode

    blobs = [f.read_bytes() for f in files]
    spent = {"new": 0.0, "old": 0.0}
    how = Decoding(size)
    for _ in range(rounds):
        for b in blobs:
            t0 = time.process_time()
            decode(b, how)
            t1 = time.process_time()
            old_decode(b, size)
            t2 = time.process_time()
            spent["new"] += t1 - t0
            spent["old"] += t2 - t1
    n = len(blobs) * rounds
    return {k: n / v for k, v in spent.items()}   # photos per CPU second


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=640, help="photos in the folder")
    p.add_argument("--photo-size", type=int, nargs=2, default=[1600, 1200], metavar=("W", "H"))
    p.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "wgan-bench-photos",
                   help="where the photos are made (kept for later runs)")
    p.add_argument("--size", type=int, default=32, help="training image size")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="decoding processes and DataLoader workers")
    p.add_argument("--cpu-sample", type=int, default=64, help="photos timed for the decode CPU comparison")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="generator iterations per timed block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="a few small photos, 1 iteration: a smoke test")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    if a.tiny:
        a.n, a.photo_size, a.dim, a.batch_size, a.iters, a.repeats, a.warmup = 16, [160, 120], 4, 8, 1, 1, 0
        a.cpu_sample = 8
        a.photos = a.photos.with_name(a.photos.name + "-tiny")
    device = torch.device(a.device)
    t0 = time.perf_counter()
    make_photos(a.photos, a.n, *a.photo_size, max(1, a.workers))
    made_s = time.perf_counter() - t0
    size_mb = sum(f.stat().st_size for f in a.photos.iterdir() if f.name[0] != ".") / 2**20
    work = Path(tempfile.mkdtemp(prefix="wgan-bench-"))
    old_cache = os.environ.get("WGAN_CACHE_DIR")
    os.environ["WGAN_CACHE_DIR"] = str(work / "cache")
    try:
        # CPU cost per photo, new decoding against the old one (one process, interleaved)
        source = list_folder(a.photos)
        step = max(1, len(source.items) // a.cpu_sample)
        per_cpu_s = decode_cpu([Path(f) for f in source.items[::step][: a.cpu_sample]], a.size, 1)
        # the preparation rate, as `wgan prepare` runs it
        t0 = time.perf_counter()
        explicit = prepare(source, work / "explicit", Decoding(a.size), workers=a.workers)
        prep_s = time.perf_counter() - t0
        # first and second use of folder:PATH, until the first batch is drawn
        load = dict(size=a.size, device=device, batch_size=a.batch_size, workers=a.workers)
        gen = torch.Generator(device=device).manual_seed(0)
        uses = []
        for _ in range(2):
            t0 = time.perf_counter()
            data = load_image_data(f"folder:{a.photos}", None, **load)
            data.train.sample(a.batch_size, gen)
            uses.append(time.perf_counter() - t0)
        mapped = load_image_data(f"folder:{a.photos}", None, memory_budget=0, **load)
        # training: the same nets on three samplers, interleaved
        n, c = data.n_train, data.channels
        rng = np.random.default_rng(0)
        array = DeviceImages(torch.from_numpy(rng.integers(0, 256, (n, c, a.size, a.size), dtype=np.uint8)).to(device),
                             None)
        spec = {"arch": "dcgan", "dim": a.dim, "size": a.size, "channels": c, "z_dim": 128, "critic_norm": "none",
                "variant": "default"}
        G, D = models.build_seeded(spec, 0)
        cfg = resolve_train(TrainConfig(batch_size=a.batch_size, iters=10**9, seed=0))
        samplers = {"array": array, "prepared": data.train, "mapped": mapped.train}
        engines = {k: Engine(copy.deepcopy(G), copy.deepcopy(D), s, cfg, device) for k, s in samplers.items()}
        for e in engines.values():
            for _ in range(a.warmup):
                e.iteration()
        times = {k: [] for k in engines}
        for _ in range(a.repeats):
            for k, e in engines.items():
                times[k].append(time_block(e.iteration, a.iters, device))
        for e in engines.values():
            e.read_stats()
        mapped.train.close()
    finally:
        if old_cache is None:
            os.environ.pop("WGAN_CACHE_DIR", None)
        else:
            os.environ["WGAN_CACHE_DIR"] = old_cache
        shutil.rmtree(work, ignore_errors=True)
    it_s = {k: 1.0 / statistics.median(v) for k, v in times.items()}
    result = {
        "photos": a.n, "photo_mb": round(size_mb, 1), "made_s": round(made_s, 1), "size": a.size,
        "prepared": explicit.manifest["count"], "skipped": explicit.manifest["skipped_counts"],
        "prepare_s": round(prep_s, 2), "prepare_images_s": round(a.n / prep_s, 1), "workers": a.workers,
        "decode_per_cpu_s": {k: round(v, 1) for k, v in per_cpu_s.items()},
        "decode_new_vs_old": round(per_cpu_s["new"] / per_cpu_s["old"], 2),
        "first_use_s": round(uses[0], 2), "second_use_s": round(uses[1], 3),
        "train_it_s": {k: round(v, 3) for k, v in it_s.items()},
        "prepared_vs_array": round(it_s["prepared"] / it_s["array"], 3),
        "mapped_vs_array": round(it_s["mapped"] / it_s["array"], 3),
        "device": str(device), "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__, "machine": platform.machine(),
        "setup": f"dcgan --dim {a.dim} at {a.size} px, batch {a.batch_size}, n_critic 5; {a.iters} iterations per "
                 f"block, {a.repeats} interleaved blocks, median",
    }
    print(f"decoding: {per_cpu_s['new']:.0f} photos per CPU second (old per-draw decoding: {per_cpu_s['old']:.0f}; "
          f"{result['decode_new_vs_old']:.2f}x)")
    print(f"photos: {a.n} ({size_mb:.0f} MB), prepared {result['prepared']} in {prep_s:.1f} s = "
          f"{result['prepare_images_s']:.0f} images/s with {a.workers} workers")
    print(f"folder:PATH first use {uses[0]:.2f} s (prepares), second use {uses[1]:.3f} s (cached, no decoding)")
    for k, v in it_s.items():
        print(f"train from {k:9s} {v:7.3f} gen-it/s  ({v / it_s['array']:.3f}x the in-memory array)")
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
