"""Scoring speed: the FID Inception network eager vs compiled (metrics/fastpath.py), and how close each path gets
to the machine's limit, in one run on one device.

It measures, interleaved (one block of each path, then the next round) so that a noisy machine slows all alike:
  eager NCHW       FIDInception.pool3, fp32, the default (NCHW) layout: the network as it ran before the fast path
  eager            the same channels_last, one pass with all threads
  compiled         that under torch.compile (inductor, frozen weights), one pass with all threads
  eager split      what `wgan score --no-compile` runs on a CPU: channels_last, each batch split over one-thread
                   workers (metrics/fastpath.Split)
  compiled split   what `wgan score` runs where compiling pays: compiled for one worker's chunk (C++ wrapper)
  matmul           a 2048 x 2048 fp32 matmul: the machine's practical GFLOP/s limit at the same thread count
(on a GPU, or with one thread, there is no split and the split rows are left out), and, in two fresh processes
sharing one empty compile cache, the one-time compile seconds and the cached-start seconds of the path `wgan score`
takes. Then the share of the rest of the pipeline per image (decoding PNG files, the 299x299 resize, sampling a
28 px dcgan generator, the statistics), and the training paths users run on a CPU (the toy MLP and the 28 px dcgan
through our engine, FLOPs counted as benchmarks/throughput.py counts them) as a share of the same matmul limit.

    python benchmarks/inception_speed.py --threads 2 --json inception.json     # the CPU table (minutes)
    python benchmarks/inception_speed.py --device cuda                         # the same on a GPU
    python benchmarks/inception_speed.py --tiny                                # smoke test: tiny sizes, eager only
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from wgan_cli import models  # noqa: E402
from wgan_cli.data.pixels import to_uint8  # noqa: E402
from wgan_cli.metrics import weights as inception_weights  # noqa: E402
from wgan_cli.metrics.features import folder_source  # noqa: E402
from wgan_cli.metrics.fastpath import inductor, settings, split_for  # noqa: E402
from wgan_cli.metrics.inception import FIDInception  # noqa: E402
from wgan_cli.metrics.scores import frechet_distance, statistics as feature_statistics  # noqa: E402
from throughput import sync  # noqa: E402

MATMUL_N = 2048
DCGAN28 = {"arch": "dcgan", "dim": 64, "size": 28, "channels": 1}   # the gan_mnist.py nets (Fashion-MNIST)


def network(device: torch.device) -> tuple[FIDInception, str]:
    """The real weights where they are found offline (speed does not depend on them), else a random network."""
    try:
        w = inception_weights.resolve_weights(download=False)
        return inception_weights.load_network(w, device), w.source
    except Exception as e:   # no weights here: the same architecture, random weights, the same FLOPs
        net = FIDInception(with_logits=False).eval().requires_grad_(False)
        return net.to(device, memory_format=torch.channels_last), f"random weights ({type(e).__name__})"


def seconds(fn, device: torch.device, reps: int = 1) -> float:
    return measure(fn, device, reps)[0]


def measure(fn, device: torch.device, reps: int = 1) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) per call. On a machine shared with other work the CPU seconds
    are what the code costs: the wall seconds also hold the time other processes had the cores."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps


def flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def compile_fn(net: FIDInception):
    return inductor(net.pool3, settings(split=False))


def fast_path(net: FIDInception, mode: str, batch: int):
    """FastInception's pool3 as `wgan score` runs it (mode "on": compiled on the first call, "off": eager); the
    rates it records go to a file of its own, not to the user's compile-costs.json."""
    from wgan_cli.metrics.fastpath import COSTS_FILE, FastInception

    fast = FastInception(net, mode)
    fast.costs = Path(tempfile.mkdtemp(prefix="wgan-costs-")) / COSTS_FILE
    fast.begin(10**9, batch)
    return fast


def probe_compile(args) -> None:
    """In a fresh process: seconds of the first compiled call (the compile) and of a steady one on the path
    `wgan score` takes; JSON on stdout."""
    from wgan_cli.metrics.fastpath import cache_hits

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    net, _ = network(device)
    x = torch.randn(args.batch, 3, 299, 299, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fast = fast_path(net, "on", args.batch)
        first = seconds(lambda: fast.pool3(x), device)
        steady = seconds(lambda: fast.pool3(x), device)
    print(json.dumps({"first_s": first, "steady_s": steady, "compile_s": first - steady,
                      "cache_hit": cache_hits() > 0}))


def run_probe(args, cache: str) -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
    cmd = [sys.executable, __file__, "--probe-compile", "--device", args.device, "--threads", str(args.threads),
           "--batch", str(args.batch)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def matmul_gflops(device: torch.device) -> tuple[float, float]:
    """GFLOP/s of a 2048 x 2048 fp32 matmul: per wall second, and per CPU second (the cores this process had)."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    a @ b
    wall, cpu = measure(lambda: a @ b, device, reps=3)
    return 2 * MATMUL_N ** 3 / wall / 1e9, 2 * MATMUL_N ** 3 / max(cpu, 1e-9) / 1e9


def pipeline_shares(net: FIDInception, device: torch.device, batch: int, size: int) -> dict:
    """Seconds per image of each step around the network (decode, resize, sampling, statistics)."""
    out = {}
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        for i in range(batch):
            Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(Path(tmp) / f"{i:05d}.png")
        source = folder_source(Path(tmp))
        out["decode PNG files"] = seconds(lambda: next(iter(source.batches(batch))), device) / batch
    on_device = images.to(device)
    out["resize to 299 (tf1)"] = seconds(lambda: net.input(on_device), device) / batch
    G, _ = models.build(DCGAN28)
    G = G.to(device).eval()
    z = torch.randn(batch, G.z_dim, device=device)
    with torch.inference_mode():
        out["sample the 28 px dcgan"] = seconds(lambda: to_uint8(G(z), G.pixel_range), device) / batch
    n = 2000
    feats = torch.randn(n, 2048, generator=gen).abs()
    ref = feature_statistics(torch.randn(n, 2048, generator=gen).abs())
    out["statistics and FID (per image of 2000)"] = seconds(
        lambda: frechet_distance(*feature_statistics(feats), *ref), device) / n
    return out


def training_paths(device: torch.device, tiny: bool) -> list[dict]:
    """Our engine on the CPU training paths, its achieved GFLOP/s (FLOPs as throughput.py counts them)."""
    import throughput

    s = 8 if tiny else 1
    cases = {
        "toy": throughput.cases(tiny)["toy"],
        "dcgan 28 px": dict(spec=dict(DCGAN28, dim=64 // s),
                            cfg=dict(batch_size=50 // s, n_critic=5, gp_weight=10.0, lr=1e-4, betas=(0.5, 0.9)),
                            pool=lambda dev: torch.randint(0, 256, (10_000 // s, 1, 28, 28), dtype=torch.uint8,
                                                           device=dev),
                            scale=lambda x: x.float() / 255),
    }
    rows = []
    for name, case in cases.items():
        r = throughput.run_case(name, case, device, "fp32", warmup=1, iters=1 if tiny else 2,
                                repeats=1 if tiny else 3)
        rows.append({"case": name, "it_s": r["engine"]["it_s"], "gflop_s": r["engine"]["tflop_s"] * 1e3,
                     "gflop_per_iter": r["flop_per_iter"] / 1e9})
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=50, help="images per forward pass (wgan score's default)")
    p.add_argument("--size", type=int, default=32, help="side of the input images before the resize")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timed blocks per path (median reported)")
    p.add_argument("--tiny", action="store_true", help="smoke test: 2 images, no compile, tiny training nets")
    p.add_argument("--no-training", action="store_true", help="skip the training paths")
    p.add_argument("--no-probes", action="store_true", help="skip the compile-seconds probes (two fresh processes)")
    p.add_argument("--json", type=Path)
    p.add_argument("--probe-compile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_compile:
        return probe_compile(args)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = 2 if args.tiny else args.batch
    net, source = network(device)
    images = torch.randint(0, 256, (batch, 3, args.size, args.size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(device)
    x = net.input(images)
    result: dict = {"device": str(device), "card": card(device), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "batch": batch, "weights": source}
    with torch.inference_mode():
        result["gflop_per_image"] = flops(lambda: net.pool3(x[:1])) / 1e9
        nchw = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
        x_nchw = x.contiguous()
        paths = {"eager NCHW": lambda: nchw.pool3(x_nchw), "eager": lambda: net.pool3(x)}
        split = split_for(device) is not None   # wgan score splits its batches here (metrics/fastpath.py)
        if split:
            eager_split = fast_path(net, "off", batch)
            paths["eager split"] = lambda: eager_split.pool3(x)
        if not args.tiny:
            cache = tempfile.mkdtemp(prefix="inductor-bench-")
            if not args.no_probes:
                result["compile_first"] = run_probe(args, cache)    # an empty cache: the one-time compile
                result["compile_cached"] = run_probe(args, cache)   # a new process, the cache filled: cached start
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            fast = compile_fn(net)
            paths["compiled"] = lambda: fast(x)
            if split:
                fast_split = fast_path(copy.deepcopy(net), "on", batch)   # its own module: its own compile
                paths["compiled split"] = lambda: fast_split.pool3(x)
            users = paths["compiled split" if split else "compiled"]   # compiles on its first call
            result["max_abs_diff"] = float((users() - net.pool3(x)).abs().max())
        for fn in paths.values():
            fn()   # warm-up (oneDNN primitives, the first compiled call)
        times = {k: [] for k in paths}
        peaks = []
        for _ in range(1 if args.tiny else args.repeats):
            for key, fn in paths.items():
                times[key].append(measure(fn, device))
            peaks.append(matmul_gflops(device))
    peak = statistics.median(p[0] for p in peaks)
    peak_cpu = statistics.median(p[1] for p in peaks)
    result["matmul_gflop_s"] = {"median": peak, "all": [p[0] for p in peaks],
                                "per_cpu_s": peak_cpu, "all_per_cpu_s": [p[1] for p in peaks]}
    result["paths"] = {}
    for key, ts in times.items():
        med, med_cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        ips, ips_cpu = batch / med, batch / max(med_cpu, 1e-9)
        gfs, gfs_cpu = ips * result["gflop_per_image"], ips_cpu * result["gflop_per_image"]
        result["paths"][key] = {"images_per_s": ips, "gflop_s": gfs, "share_of_matmul": gfs / peak,
                                "images_per_cpu_s": ips_cpu, "gflop_per_cpu_s": gfs_cpu,
                                "share_of_matmul_cpu": gfs_cpu / peak_cpu, "all_s": ts}
    if "compiled" in result["paths"]:   # what `wgan score` runs, against --no-compile and the network before
        ran = result["paths"]
        fast, slow = (ran["compiled split"], ran["eager split"]) if "compiled split" in ran else (
            ran["compiled"], ran["eager"])
        result["speedup"] = fast["images_per_s"] / slow["images_per_s"]
        result["speedup_cpu"] = fast["images_per_cpu_s"] / slow["images_per_cpu_s"]
        before = ran["eager NCHW"]
        result["speedup_vs_nchw"] = fast["images_per_s"] / before["images_per_s"]
        result["speedup_vs_nchw_cpu"] = fast["images_per_cpu_s"] / before["images_per_cpu_s"]
    result["pipeline_s_per_image"] = pipeline_shares(net, device, batch, args.size)
    if not args.no_training:
        result["training"] = training_paths(device, args.tiny)
        for row in result["training"]:
            row["share_of_matmul"] = row["gflop_s"] / peak
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def card(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def report(r: dict) -> None:
    print(f"device: {r['device']} ({r['card']}), torch {r['torch']}, {r['threads']} threads, batch {r['batch']}, "
          f"{r['gflop_per_image']:.2f} GFLOP per image; weights: {r['weights']}")
    peak = r["matmul_gflop_s"]["median"]
    print(f"matmul {MATMUL_N}x{MATMUL_N} fp32: {peak:.1f} GFLOP/s per wall second, "
          f"{r['matmul_gflop_s']['per_cpu_s']:.1f} per CPU second (median of {len(r['matmul_gflop_s']['all'])})")
    print(f"{'path':15s} {'images/s':>9s} {'GFLOP/s':>8s} {'of matmul':>10s} {'img/CPU-s':>10s} {'GFLOP/CPU-s':>12s} "
          f"{'of matmul':>10s}")
    for key, v in r["paths"].items():
        print(f"{key:15s} {v['images_per_s']:9.2f} {v['gflop_s']:8.1f} {v['share_of_matmul']:9.0%} "
              f"{v['images_per_cpu_s']:10.2f} {v['gflop_per_cpu_s']:12.1f} {v['share_of_matmul_cpu']:9.0%}")
    if "speedup" in r:
        print(f"wgan score / --no-compile: {r['speedup']:.2f}x per wall second, {r['speedup_cpu']:.2f}x per CPU second; "
              f"max |difference| of the features {r['max_abs_diff']:.2e}")
        print(f"wgan score / eager NCHW (the network before the fast path): {r['speedup_vs_nchw']:.2f}x per wall "
              f"second, {r['speedup_vs_nchw_cpu']:.2f}x per CPU second")
    if "compile_first" in r:
        print(f"compile: {r['compile_first']['compile_s']:.1f} s once (empty cache), "
              f"{r['compile_cached']['compile_s']:.1f} s for a cached start "
              f"(cache hit: {r['compile_cached']['cache_hit']})")
    net_s = 1 / max(v["images_per_s"] for v in r["paths"].values())
    print(f"the rest, seconds per image (the network: {net_s:.4f} s on its fastest path):")
    for key, s in r["pipeline_s_per_image"].items():
        print(f"  {key:42s} {s:.5f}  ({s / net_s:.1%} of the network's time)")
    for row in r.get("training", []):
        print(f"training {row['case']:12s} {row['it_s']:7.2f} gen-it/s {row['gflop_s']:7.1f} GFLOP/s "
              f"({row['share_of_matmul']:.0%} of matmul)")


if __name__ == "__main__":
    main()
