"""FID of `wgan train --preset mnist-dcgan` vs a plain PyTorch loop (benchmarks/plain_mnist_loop.py) on
Fashion-MNIST, with the initialisation switched in each: the table of docs/train-fashion-mnist.md.

Variants: ours-tflib / ours-torch (`wgan train --init ...`), plain-torch / plain-tflib (the plain loop, --init ...).
Each (variant, seed) is one run to the longest length; the shorter lengths are points on the way (`wgan train`
is run to each length in turn and resumes; the plain loop writes samples at each). At every length: 1,000 samples
(seed 1) scored by `wgan score --metrics fid` against the first 1,000 Fashion-MNIST test images. Wall seconds are
training-loop time only (no data loading, sampling or scoring). Finished steps are skipped, so re-running the same
command completes an interrupted comparison and reprints the table. One process at a time, one thread each.

    python benchmarks/quality_fashion_mnist.py --seeds 0,1 --lengths 300,1000 --dim 32 --out runs/quality
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ours-tflib", "ours-torch", "plain-torch", "plain-tflib")


def run(cmd: list[str], log: Path) -> str:
    """Run one step on one thread; stderr goes to `log`, stdout is returned (and logged)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print("+", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=f, text=True, check=True).stdout
        f.write(out)
    return out


def reference(args) -> Path:
    """The first --n-ref test images as uint8 (N, 28, 28, 1), and their Inception statistics (computed once)."""
    out = Path(args.out)
    npz, stats = out / f"ref-test{args.n_ref}.npz", out / f"ref-test{args.n_ref}-stats.safetensors"
    if not npz.exists():
        with gzip.open(Path(args.data_dir) / "t10k-images-idx3-ubyte.gz") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
        np.savez(npz, images=x[: args.n_ref])
    if not stats.exists():
        run([sys.executable, "-m", "wgan_cli", "score", "--ref", str(npz), "--save-stats", str(stats),
             "--device", "cpu"], out / "score.log")
    return stats


def train_ours(init: str, seed: int, args, folder: Path) -> dict[int, float]:
    """`wgan train` to each length in turn (resuming); returns {iters: cumulative loop seconds}."""
    for length in args.lengths:
        samples = folder / f"samples-{length}.npz"
        if not samples.exists():
            run([sys.executable, "-m", "wgan_cli", "train", "--preset", "mnist-dcgan", "--dataset", "fashion-mnist",
                 "--dim", str(args.dim), "--init", init, "--seed", str(seed), "--iters", str(length),
                 "--log-every", "100", "--save-every", str(length), "--sample-every", str(length),
                 "--eval-every", str(length), "--device", "cpu", "--out", str(folder), "--plain"],
                folder.with_suffix(".log"))
            run([sys.executable, "-m", "wgan_cli", "sample", str(folder / "generator.safetensors"), "-n",
                 str(args.n), "--seed", "1", "-o", str(samples)], folder.with_suffix(".log"))
    walls = loop_seconds(folder)
    return {n: walls[n] for n in args.lengths}


def loop_seconds(folder: Path) -> dict[int, float]:
    """{step: cumulative training-loop seconds} of a `wgan train` run directory, over its resumed segments:
    each segment counts from its "start" event to its last "step" event."""
    walls, start, total = {}, None, 0.0
    for row in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines()):
        if row.get("event") == "start":
            start, base = row["time"], total
        elif row.get("event") == "step" and start is not None:
            total = base + row["time"] - start
            walls[row["step"]] = round(total, 1)
    return walls


def train_plain(init: str, seed: int, args, folder: Path) -> dict[int, float]:
    last = folder / f"samples-{max(args.lengths)}.npz"
    if not last.exists():
        (folder / "times.jsonl").unlink(missing_ok=True)
        run([sys.executable, "benchmarks/plain_mnist_loop.py", "--init", init, "--seed", str(seed), "--iters",
             str(max(args.lengths)), "--save-at", ",".join(map(str, args.lengths)), "--dim", str(args.dim),
             "--n", str(args.n), "--data", str(Path(args.data_dir) / "train-images-idx3-ubyte.gz"),
             "--out", str(folder)], folder.with_suffix(".log"))
    rows = [json.loads(line) for line in (folder / "times.jsonl").read_text().splitlines()]
    return {r["iters"]: r["wall_s"] for r in rows}


def fid(samples: Path, stats: Path) -> float:
    cached = samples.with_suffix(".fid.json")
    if not cached.exists():
        result = json.loads(run([sys.executable, "-m", "wgan_cli", "score", str(samples), "--ref", str(stats),
                                 "--metrics", "fid", "--json", "--device", "cpu"], samples.parent / "score.log"))
        cached.write_text(json.dumps({"fid": result["metrics"]["fid"]}))
    return json.loads(cached.read_text())["fid"]


def finished_rows(variant: str, seed: int, args, folder: Path) -> list[dict]:
    """--table-only: the rows whose FID is already computed, running nothing."""
    rows = []
    for n in args.lengths:
        cached = folder / f"samples-{n}.fid.json"
        if not cached.exists():
            continue
        if variant.startswith("ours"):
            walls = loop_seconds(folder)
        else:
            walls = {r["iters"]: r["wall_s"] for r in map(json.loads, (folder / "times.jsonl").read_text().splitlines())}
        load = json.loads((folder / "load.json").read_text())["load15"] if (folder / "load.json").exists() else None
        rows.append({"variant": variant, "seed": seed, "iters": n, "dim": args.dim,
                     "fid": round(json.loads(cached.read_text())["fid"], 2), "wall_s": walls[n], "load15": load})
    return rows


def speed(args, out: Path) -> str:
    """Seconds per generator iteration of ours and the plain loop, measured back to back (alternating, so that
    the machine's load weighs on both alike): the exchange rate between equal iterations and equal wall-clock."""
    folder = out / "speed"
    folder.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    for rep in range(args.speed_reps):
        for kind in ("ours", "plain"):
            run_dir = folder / f"{kind}-{rep}"
            if not run_dir.exists():
                if kind == "ours":
                    run([sys.executable, "-m", "wgan_cli", "train", "--preset", "mnist-dcgan", "--dataset",
                         "fashion-mnist", "--dim", str(args.dim), "--iters", str(args.speed_iters), "--log-every",
                         "10", "--device", "cpu", "--out", str(run_dir), "--plain"], folder / "speed.log")
                else:
                    run([sys.executable, "benchmarks/plain_mnist_loop.py", "--dim", str(args.dim), "--iters",
                         str(args.speed_iters), "--save-at", "10", "--n", "10", "--out", str(run_dir)],
                        folder / "speed.log")
            if kind == "ours":   # after the first 10 iterations (warm-up), to the last
                rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
                steps = {r["step"]: r["time"] for r in rows if r.get("event") == "step"}
                times[kind].append((steps[args.speed_iters] - steps[10]) / (args.speed_iters - 10))
            else:
                walls = {r["iters"]: r["wall_s"] for r in map(json.loads, (run_dir / "times.jsonl").read_text().splitlines())}
                times[kind].append((walls[args.speed_iters] - walls[10]) / (args.speed_iters - 10))
    ours, plain = statistics.median(times["ours"]), statistics.median(times["plain"])
    result = {"s_per_iter": {"ours": round(ours, 3), "plain": round(plain, 3)}, "ratio_plain_over_ours":
              round(plain / ours, 3), "runs": times, "load15": round(os.getloadavg()[2], 1)}
    (folder / "speed.json").write_text(json.dumps(result, indent=1))
    return (f"Speed, back to back ({args.speed_reps} x {args.speed_iters} iterations each, median): ours "
            f"{ours:.3f} s per iteration, plain loop {plain:.3f} s; plain / ours = {plain / ours:.2f} "
            f"(15-minute load average {result['load15']}).")


def table(rows: list[dict], args) -> str:
    lines = ["| variant | seed | iterations | FID | wall s | load (15 min) |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (args.variants.index(r["variant"]), r["iters"], r["seed"])):
        lines.append(f"| {r['variant']} | {r['seed']} | {r['iters']:,} | {r['fid']:.1f} | {r['wall_s']:.0f} | "
                     f"{r['load15']} |")
    lines += ["", "| variant | iterations | mean FID | seeds | mean wall s |", "|---|---|---|---|---|"]
    for v in args.variants:
        for n in args.lengths:
            sel = [r for r in rows if r["variant"] == v and r["iters"] == n]
            if sel:
                fids = ", ".join(f"{r['fid']:.1f}" for r in sel)
                lines.append(f"| {v} | {n:,} | {statistics.mean(r['fid'] for r in sel):.1f} | {fids} | "
                             f"{statistics.mean(r['wall_s'] for r in sel):.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--lengths", default="300,1000", help="generator iterations at which to score")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--dim", type=int, default=32, help="DIM of the gan_mnist.py nets (the official 64 is 4x slower)")
    p.add_argument("--n", type=int, default=1000, help="generated images per FID")
    p.add_argument("--n-ref", type=int, default=1000, help="first N test images as the FID reference")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default="runs/quality")
    p.add_argument("--speed-iters", type=int, default=40, help="iterations per speed run (0: no speed runs)")
    p.add_argument("--speed-reps", type=int, default=3)
    p.add_argument("--table-only", action="store_true", help="print the table of the runs already scored; run nothing")
    args = p.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.lengths = sorted(int(s) for s in args.lengths.split(","))
    args.variants = args.variants.split(",")
    assert all(v in VARIANTS for v in args.variants), args.variants
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = reference(args)
    rows = []
    for variant in args.variants:
        kind, init = variant.split("-")
        for seed in args.seeds:
            folder = out / f"{variant}-d{args.dim}-s{seed}"
            if args.table_only:
                rows += finished_rows(variant, seed, args, folder)
                continue
            folder.mkdir(exist_ok=True)
            walls = (train_ours if kind == "ours" else train_plain)(init, seed, args, folder)
            if not (folder / "load.json").exists():   # the 15-minute load average when the training ended
                (folder / "load.json").write_text(json.dumps({"load15": round(os.getloadavg()[2], 1)}))
            load = json.loads((folder / "load.json").read_text())["load15"]
            for n in args.lengths:
                rows.append({"variant": variant, "seed": seed, "iters": n, "dim": args.dim,
                             "fid": round(fid(folder / f"samples-{n}.npz", stats), 2), "wall_s": walls[n],
                             "load15": load})
            if rows:
                (out / "results.json").write_text(json.dumps(rows, indent=1))
                print(table(rows, args), flush=True)
    text = table(rows, args)
    if args.speed_iters and not args.table_only:
        text += "\n\n" + speed(args, out)
    (out / "results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
