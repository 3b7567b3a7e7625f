"""Peak resident memory of `wgan sample CKPT -n N -o OUT` against N: the measurement behind docs/api.md's
streaming claim (PNG folders, .npz / .npy and points are written batch by batch, so memory does not grow with -n).

A generator checkpoint of the DCGAN 64x64 nets (width --dim; the width changes the time, not the memory that
grows with -n, which is the images) is written to --out, then every (tree, N) pair runs in a fresh process,
interleaved over --repeats rounds, its peak RSS read with getrusage(RUSAGE_CHILDREN) in a wrapper process of its
own (and its anonymous memory, RssAnon, polled every 10 ms). --trees compares source trees (a checkout of another commit: `git archive COMMIT wgan_cli | tar -x -C DIR`).

    python benchmarks/sample_memory.py --ns 2000,10000,50000 --trees .,/tmp/before --out runs/sample-memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Runs the command, polls its anonymous resident memory (RssAnon: the heap, what grows with held samples; the
# shared libraries' file-backed pages come and go with the machine's memory pressure) every 10 ms, and prints the
# exit code, getrusage's peak RSS (KiB, file-backed pages included), the peak RssAnon seen (KiB) and the seconds.
WRAPPER = """
import resource, subprocess, sys, time
t = time.time()
p = subprocess.Popen(sys.argv[1:])
anon = 0
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("RssAnon:"):
                anon = max(anon, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.01)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, anon, time.time() - t)
"""


def make_checkpoint(path: Path, dim: int, size: int) -> None:
    import torch

    from wgan_cli import checkpoint, models

    spec = dict(arch="dcgan", dim=dim, size=size, channels=3, z_dim=128)
    torch.manual_seed(0)
    G, _ = models.build(spec)
    checkpoint.save(path, {"G." + k: v for k, v in G.state_dict().items()}, kind="generator", task="image",
                    model=spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", default="2000,10000,50000")
    ap.add_argument("--trees", default=".", help="comma-separated source trees holding wgan_cli/")
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--suffix", default=".npz", help=".npz, .npy or / (a PNG folder)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/sample-memory"))
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "g.safetensors"
    make_checkpoint(ckpt, args.dim, args.size)
    rows = []
    for rep in range(args.repeats):
        for n in [int(x) for x in args.ns.split(",")]:
            for tree in args.trees.split(","):
                out = args.out / f"s{args.suffix}"
                env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "OMP_NUM_THREADS": "1"}
                cmd = [sys.executable, "-m", "wgan_cli", "sample", str(ckpt), "-n", str(n), "-o", str(out)]
                # cwd: the output folder, so `python -m` (which puts the cwd first on sys.path) imports the tree's
                r = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], env=env, capture_output=True, text=True,
                                   cwd=args.out)
                code, kib, anon, wall = r.stdout.split()[-4:]
                row = {"tree": tree, "n": n, "exit": int(code), "peak_rss_mib": round(int(kib) / 1024),
                       "peak_anon_mib": round(int(anon) / 1024), "wall_s": round(float(wall), 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if out.is_file():
                    out.unlink()
                time.sleep(1)


if __name__ == "__main__":
    main()
