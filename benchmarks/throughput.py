"""Generator iterations per second: our engine vs a plain eager reference loop, side by side, one run, one device.

For each case it builds the network once, copies it, and times
  engine    wgan_cli.engine.Engine with every optimisation on (joint real+fake critic pass, device-side sampling
            and statistics, fused/foreach optimisers, channels_last and cuDNN autotuning on CUDA, --precision);
  eager     `reference_iteration` below: the plain PyTorch loop a careful user would write (no host syncs, real and
            fake in one critic pass, default torch.optim.Adam), fp32/TF32 as the engine's --precision allows.
The two are interleaved (engine block, eager block, ...) so that a noisy machine slows both alike. It prints a
table (median ms per generator iteration, it/s, achieved TFLOP/s, peak memory, ratio) and writes JSON.

    python benchmarks/throughput.py --cases toy --device cpu               # the CPU check (toy MLP)
    python benchmarks/throughput.py --device cuda --precision tf32         # every case on the GPU
    python benchmarks/throughput.py --tiny --cases toy --json out.json     # CI smoke test (seconds)
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wgan_cli import models  # noqa: E402
from wgan_cli.config import TrainConfig, resolve_train  # noqa: E402
from wgan_cli.engine import Engine, configure_backends  # noqa: E402
from wgan_cli.penalties import critic_score  # noqa: E402


class PoolSampler:
    """Real data held on the device (uint8 for images, as the engine's image pipeline keeps it)."""

    def __init__(self, pool: torch.Tensor, scale):
        self.pool, self.scale = pool, scale

    def sample(self, n, gen):
        idx = torch.randint(0, len(self.pool), (n,), device=self.pool.device, generator=gen)
        return self.scale(self.pool[idx]), None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def image_scale(x):
    return x.float() / 127.5 - 1.0


def onehot_scale(vocab):
    return lambda idx: torch.nn.functional.one_hot(idx.long(), vocab).float()


# name -> (model spec, train options, data pool maker, device restriction); sizes as in the paper
def cases(tiny: bool) -> dict:
    s = 8 if tiny else 1
    return {
        "toy": dict(spec={"arch": "toy-mlp", "dim": 512 // s, "depth": 3},
                    cfg=dict(batch_size=256 // s, n_critic=5, gp_weight=0.1, betas=(0.5, 0.9)),
                    pool=lambda dev: torch.randn(100_000 // s, 2, device=dev), scale=lambda x: x),
        "resnet": dict(spec={"arch": "resnet", "dim": 128 // s, "size": 32, "channels": 3},
                       cfg=dict(batch_size=64 // s, gen_batch_size=128 // s, n_critic=5, gp_weight=10.0,
                                lr=2e-4, betas=(0.0, 0.9)),
                       pool=lambda dev: torch.randint(0, 256, (50_000 // s, 3, 32, 32), dtype=torch.uint8, device=dev),
                       scale=image_scale),
        "dcgan": dict(spec={"arch": "dcgan", "dim": 128 // s, "size": 32, "channels": 3},
                      cfg=dict(batch_size=64 // s, n_critic=5, gp_weight=10.0, betas=(0.5, 0.9)),
                      pool=lambda dev: torch.randint(0, 256, (50_000 // s, 3, 32, 32), dtype=torch.uint8, device=dev),
                      scale=image_scale),
        "resnet64": dict(spec={"arch": "resnet64", "dim": 64 // s, "size": 64, "channels": 3},
                         cfg=dict(batch_size=64 // s, n_critic=5, gp_weight=10.0, betas=(0.0, 0.9)),
                         pool=lambda dev: torch.randint(0, 256, (10_000 // s, 3, 64, 64), dtype=torch.uint8, device=dev),
                         scale=image_scale),
        "text": dict(spec={"arch": "text-resnet", "dim": 512 // s, "seq_len": 32, "vocab_size": 96},
                     cfg=dict(batch_size=64 // s, n_critic=10, gp_weight=10.0, betas=(0.5, 0.9)),
                     pool=lambda dev: torch.randint(0, 96, (50_000 // s, 32), device=dev),
                     scale=onehot_scale(96)),
    }


def reference_iteration(G, D, opt_g, opt_d, sample_real, cfg: TrainConfig, gen: torch.Generator) -> dict:
    """One generator iteration of a plain eager WGAN-GP loop. It draws its random numbers in the engine's order
    (real batch, noise, interpolation weights), so from the same seed both compute the same thing."""
    B, device = cfg.batch_size, next(G.parameters()).device
    for _ in range(cfg.n_critic):
        real, _ = sample_real(B, gen)
        with torch.no_grad():
            fake = G(torch.randn(B, G.z_dim, device=device, generator=gen))
        scores = critic_score(D(torch.cat([real, fake])))
        d_real, d_fake = scores[:B], scores[B:]
        alpha = torch.rand((B,) + (1,) * (real.dim() - 1), device=device, generator=gen)
        x_hat = (real + alpha * (fake - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic_score(D(x_hat)).sum(), x_hat, create_graph=True)
        gp = ((grad.flatten(1).square().sum(1) + 1e-12).sqrt() - 1).square().mean()
        loss_d = d_fake.mean() - d_real.mean() + cfg.gp_weight * gp
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    loss_g = -critic_score(D(G(torch.randn(cfg.gen_batch_size, G.z_dim, device=device, generator=gen)))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return {"loss_d": loss_d.detach(), "gp": gp.detach(), "loss_g": loss_g.detach()}


def reference_optimizers(G, D, cfg: TrainConfig):
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas),
            torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas))


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read after it has seen the work done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(step, iters: int, device) -> float:
    """Wall seconds per call of `step`, over `iters` calls, the device synchronised before and after (the one
    timing loop of the benchmarks: prepared_folder.py imports it)."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    return (time.perf_counter() - t0) / iters


def flops_per_iteration(step) -> float:
    """Matmul and convolution FLOPs of one iteration (forward, backward and the penalty's double backward),
    counted with torch's FLOP formulas under a dispatch mode (FlopCounterMode's module hooks do not support
    autograd.grad)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += formula(*args, out_val=out, **kwargs)
            return out

    with Count():
        step()
    return float(Count.total)


def run_case(name: str, case: dict, device: torch.device, precision: str, warmup: int, iters: int,
             repeats: int, seed: int = 0) -> dict:
    try:
        G, D = models.build(case["spec"])
    except Exception as e:   # an architecture this checkout does not have
        return {"case": name, "skipped": f"{type(e).__name__}: {e}"}
    cfg = resolve_train(TrainConfig(precision=precision, seed=seed, iters=10**9, **case["cfg"]))
    sampler = PoolSampler(case["pool"](device), case["scale"])
    G_ref, D_ref = copy.deepcopy(G).to(device), copy.deepcopy(D).to(device)
    engine = Engine(G, D, sampler, cfg, device)
    opt_g, opt_d = reference_optimizers(G_ref, D_ref, cfg)
    gen = torch.Generator(device=device).manual_seed(seed)
    steps = {"engine": engine.iteration,
             "eager": lambda: reference_iteration(G_ref, D_ref, opt_g, opt_d, sampler.sample, cfg, gen)}
    for step in steps.values():
        for _ in range(warmup):
            step()
    flops = flops_per_iteration(steps["eager"])
    times = {k: [] for k in steps}
    peak = {}
    for _ in range(repeats):
        for key, step in steps.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            times[key].append(time_block(step, iters, device))
            if device.type == "cuda":
                peak[key] = max(peak.get(key, 0), torch.cuda.max_memory_allocated())
    engine.read_stats()   # the one host read; also proves the stats stayed finite
    out = {"case": name, "device": str(device), "precision": precision, "flop_per_iter": flops}
    for key in steps:
        med = statistics.median(times[key])
        out[key] = {"ms_per_iter": med * 1e3, "it_s": 1.0 / med, "tflop_s": flops / med / 1e12,
                    "peak_mem_mb": peak.get(key, 0) / 2**20 if peak else None}
    out["speedup"] = out["eager"]["ms_per_iter"] / out["engine"]["ms_per_iter"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="toy,resnet,dcgan,resnet64,text")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=10, help="generator iterations per timed block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks per loop (the median is reported)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--tiny", action="store_true", help="tiny widths and batches: a smoke test, not a measurement")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    configure_backends(args.precision, device)
    all_cases = cases(args.tiny)
    results = []
    for name in args.cases.split(","):
        if device.type == "cpu" and name != "toy" and not args.tiny:
            results.append({"case": name, "skipped": "image and text cases are GPU measurements (use --tiny on CPU)"})
            continue
        results.append(run_case(name, all_cases[name], device, args.precision, args.warmup, args.iters, args.repeats))
    card = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({card}), torch {torch.__version__}, precision {args.precision}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'case':10s} {'engine ms':>10s} {'eager ms':>10s} {'engine it/s':>12s} {'eager it/s':>11s} "
          f"{'speedup':>8s} {'TFLOP/s':>8s} {'peak MB':>8s}")
    for r in results:
        if "skipped" in r:
            print(f"{r['case']:10s} skipped: {r['skipped']}")
            continue
        e, b = r["engine"], r["eager"]
        mem = f"{e['peak_mem_mb']:.0f}" if e["peak_mem_mb"] else "-"
        print(f"{r['case']:10s} {e['ms_per_iter']:10.2f} {b['ms_per_iter']:10.2f} {e['it_s']:12.2f} "
              f"{b['it_s']:11.2f} {r['speedup']:7.2f}x {e['tflop_s']:8.3f} {mem:>8s}")
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "card": card, "torch": torch.__version__,
                                         "precision": args.precision, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
