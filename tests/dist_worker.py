"""The engine and the scores, W ranks or one: tests/run/test_distributed.py runs `trace_all` here under torchrun
(2 ranks, CPU, Gloo) and in its own process (one rank), and compares what each wrote.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/dist_worker.py OUT_DIR

Each rank writes OUT_DIR/rank{R}.safetensors: per setting (toy MLP, DCGAN without normalisation, a conditional
conv net with an auxiliary classifier, a DCGAN drawing from a prepared folder, OUT_DIR/prepared, through its
memory map, a DCGAN with augmentation, flips and ada) the first critic and generator gradients, the logged
statistics of the first critic step and of the rest of the first iteration, the train state after 3 iterations and
the parameters 3 iterations later (with ada: its p and signal);
then Inception-like features of an image array and of a generator, their metrics, the validation W-estimate,
`wgan score`'s result and the in-training evaluation's (with how often this rank saved a best generator).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from wgan_cli import distributed, models, torchrun
from wgan_cli.augment import Augmenter, Policy
from wgan_cli.config import TOY_PRESET, TrainConfig, resolve_train
from wgan_cli.data.samplers import DeviceImages, PreparedRows, StreamImages
from wgan_cli.data.toy import make_toy_data
from wgan_cli.engine import Engine
from wgan_cli.metrics import weights
from wgan_cli.metrics.features import extract, generator_source, tensor_source
from wgan_cli.metrics.references import ref_stats
from wgan_cli.metrics.inputs import MetricOptions
from wgan_cli.metrics.registry import compute
from wgan_cli.image import validation_w_dist


# ---- three settings --------------------------------------------------------------------------------------------
class CondG(nn.Module):
    """z and a class -> (3, 8, 8) in [-1, 1]; no normalisation."""

    def __init__(self, z_dim: int = 16, n_classes: int = 4):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.embed = nn.Embedding(n_classes, z_dim)
        self.fc = nn.Linear(z_dim, 8 * 4 * 4)
        self.up = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)

    def forward(self, z, y=None):
        h = torch.relu(self.fc(z * (1 + self.embed(y)))).view(-1, 8, 4, 4)
        return torch.tanh(self.up(h))


class CondD(nn.Module):
    """(3, 8, 8) -> (score, class logits): the auxiliary classifier of AC-WGAN-GP."""

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc, self.aux = nn.Linear(8 * 4 * 4, 1), nn.Linear(8 * 4 * 4, n_classes)

    def forward(self, x):
        h = nn.functional.leaky_relu(self.conv(x), 0.2).flatten(1)
        return self.fc(h).squeeze(1), self.aux(h)


def random_images(n: int, size: int, seed: int, classes: int = 0) -> DeviceImages:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, classes, (n,), generator=g) if classes else None
    return images, labels


def build(setting: str, prepared: Path | None = None) -> Engine:
    if setting == "toy":
        cfg = resolve_train(TrainConfig(batch_size=64, n_critic=5, lr=1e-3, seed=3, iters=10), TOY_PRESET)
        G, D = models.build_seeded({"arch": "toy-mlp", "dim": 32, "depth": 2, "z_dim": 2, "data_dim": 2}, 3)
        return Engine(G, D, make_toy_data("25gaussians", seed=3), cfg)
    if setting == "conv":   # Appendix F's generator batch of twice the critic's, dequantised data, an EMA copy
        cfg = resolve_train(TrainConfig(batch_size=32, gen_batch_size=64, n_critic=2, lr=1e-3, seed=5, iters=10,
                                        ema_decay=0.9))
        G, D = models.build_seeded({"arch": "dcgan", "dim": 4, "size": 32, "channels": 3, "z_dim": 16,
                                    "variant": "no-norm"}, 5)
        images, _ = random_images(128, 32, 0)
        return Engine(G, D, DeviceImages(images, None, "tanh", dequantize=True), cfg)
    if setting == "cond":   # labels drawn for the fakes, the auxiliary cross-entropy, the one-sided penalty
        cfg = resolve_train(TrainConfig(batch_size=32, n_critic=2, lr=1e-3, seed=7, iters=10, penalty="lp",
                                        conditional=True))
        with torch.random.fork_rng():
            torch.manual_seed(7)
            G, D = CondG(), CondD()
        images, labels = random_images(96, 8, 1, classes=4)
        return Engine(G, D, DeviceImages(images, labels, "tanh"), cfg)
    if setting == "folder":   # a prepared folder read from its memory map by a DataLoader worker, in seeded order
        cfg = resolve_train(TrainConfig(batch_size=16, n_critic=2, lr=1e-3, seed=9, iters=10))
        G, D = models.build_seeded({"arch": "dcgan", "dim": 4, "size": 32, "channels": 3, "z_dim": 16,
                                    "variant": "no-norm"}, 9)
        rows = PreparedRows(prepared, list(range(FOLDER_IMAGES)), None)
        return Engine(G, D, StreamImages(rows, 16, "cpu", dequantize=True, seed=9, workers=1), cfg)
    if setting == "augment":   # DiffAugment's three transforms, flips, ada: views and ada's signal over the ranks
        cfg = resolve_train(TrainConfig(batch_size=32, n_critic=2, lr=1e-3, seed=13, iters=10))
        G, D = models.build_seeded({"arch": "dcgan", "dim": 4, "size": 32, "channels": 3, "z_dim": 16,
                                    "variant": "no-norm"}, 13)
        (images, _), (held, _) = random_images(128, 32, 4), random_images(64, 32, 5)
        policy = Policy(("color", "translation", "cutout"), "ada", mirror=True)
        augment = Augmenter(policy, "tanh", torch.device("cpu"), val=DeviceImages(held, None, "tanh"))
        return Engine(G, D, DeviceImages(images, None, "tanh"), cfg, augment=augment)
    raise ValueError(setting)


FOLDER_IMAGES = 40   # 2.5 global batches: the 3 iterations' 6 critic batches wrap the epoch twice


def iteration(engine: Engine, first: dict | None = None) -> None:
    """Engine.iteration step by step; `first` gets the first gradients and statistics."""
    engine.set_lr()
    engine.G.train()
    engine.D.train()
    for i in range(engine.cfg.n_critic):
        engine.critic_step()
        if first is not None and i == 0:
            first.update({"grad_d." + n: p.grad.clone() for n, p in engine.D.named_parameters()})
            first["stats_first_step"] = as_tensor(engine.read_stats())
    engine.generator_step()
    if first is not None:
        first.update({"grad_g." + n: p.grad.clone() for n, p in engine.G.named_parameters()})
    engine.finish_iteration()


def as_tensor(stats: dict) -> torch.Tensor:
    return torch.tensor([stats[k] for k in sorted(stats)], dtype=torch.float64)


def weights_of(engine: Engine, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v.clone() for k, v in engine.state_tensors().items() if k.startswith(("G.", "D.", "G_ema."))}


def trace(engine: Engine) -> dict[str, torch.Tensor]:
    """First critic and generator gradients and the first iteration's statistics; the train state after 3
    iterations and the weights after 3 more."""
    out: dict = {}
    iteration(engine, out)
    out["stats"] = as_tensor(engine.read_stats())
    for _ in range(2):
        iteration(engine)
    out.update({"state." + k: v.clone() for k, v in engine.state_tensors().items()})
    for _ in range(3):
        iteration(engine)
    out.update(weights_of(engine, "after."))
    if engine.augment is not None:   # p and the signal after ada's adjustment at iteration 4
        out["ada_state"] = engine.augment.state.clone()
    return out


def continue_from(setting: str, state: dict[str, torch.Tensor], prepared: Path,
                  iters: int = 3) -> dict[str, torch.Tensor]:
    """A fresh engine of `setting` loaded with `state` (at iteration 3), `iters` iterations on: its weights
    ("G.", "D.", "G_ema.")."""
    engine = build(setting, prepared)
    engine.load_state_tensors(state, 3)
    for _ in range(iters):
        iteration(engine)
    return weights_of(engine, "")


# ---- scores ------------------------------------------------------------------------------------------------
class ProjectionNet(nn.Module):
    """uint8 images -> (features (N, 24), logits (N, 10)): a fixed random projection, like Inception's interface."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3 * 16, 24, generator=g) / 4
        self.fc = torch.randn(24, 10, generator=g) * 3

    def forward(self, images):
        x = nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        f = torch.tanh(x @ self.proj)
        return f, f @ self.fc


@contextmanager
def projection_weights():
    """`wgan score` with ProjectionNet for the Inception network (no weights file needed)."""
    saved = weights.resolve_weights, weights.load_network
    weights.resolve_weights = lambda path=None, *, want_logits=False, download=True: \
        weights.Weights({}, True, "projection", "proj0001")
    weights.load_network = lambda w, device="cpu": ProjectionNet()
    try:
        yield
    finally:
        weights.resolve_weights, weights.load_network = saved


def score_inputs(folder: Path) -> tuple[Path, Path]:
    """Two .npz image arrays (uint8 NHWC) for `wgan score INPUT --ref REF`, written by rank 0."""
    a, b = folder / "input.npz", folder / "ref.npz"
    if torchrun.main_process():
        for path, seed, n in ((a, 1, 210), (b, 2, 170)):
            images, _ = random_images(n, 16, seed)
            np.savez(path, images=images.permute(0, 2, 3, 1).numpy())
    return a, b


def scores(group: distributed.Group, folder: Path) -> dict[str, torch.Tensor]:
    net, out = ProjectionNet(), {}
    images, _ = random_images(250, 16, 3)
    feats = extract(net, tensor_source(images, "array"), 40, torch.device("cpu"), group=group)   # 7 batches
    torch.manual_seed(11)
    G = CondG()
    gen = extract(net, generator_source(G, 130, 4, torch.device("cpu"), "tanh", "G"), 20, torch.device("cpu"),
                  group=group)
    out.update({"feats.pool3": feats.pool3, "feats.logits": feats.logits, "gen.pool3": gen.pool3,
                "gen.logits": gen.logits})
    ref = ref_stats(feats.pool3, "array")
    opts = MetricOptions(splits=5, kid_subsets=10, kid_subset_size=50)
    values = compute(["fid", "is", "kid"], gen, ref, opts)
    out["metrics"] = torch.tensor([values[k] for k in sorted(values)], dtype=torch.float64)
    engine = build("conv")
    engine.dist = group
    images, _ = random_images(80, 32, 9)
    out["val_w_dist"] = torch.tensor([validation_w_dist(engine, DeviceImages(images, None, "tanh", True), 70)],
                                     dtype=torch.float64)
    from wgan_cli.score import ScoreRequest, score

    a, b = score_inputs(folder)
    group.barrier()
    with projection_weights():
        result = score(ScoreRequest(input=str(a), ref=str(b), batch_size=30, splits=3, kid_subsets=5,
                                    kid_subset_size=60, device="cpu"))
    out["score"] = torch.tensor([result["metrics"][k] for k in sorted(result["metrics"])], dtype=torch.float64)
    # in training: the evaluation callback of `wgan train --eval-metrics`, a collective callback
    from types import SimpleNamespace

    from wgan_cli.events import Evaluated
    from wgan_cli.metrics.evaluate import eval_callback

    best = []
    with projection_weights():
        cb, _ = eval_callback(every=1, n=90, metrics="fid,is", ref=ref, device="cpu", generator=lambda engine: G,
                              batch_size=25, splits=3, on_best=lambda engine, metrics: best.append(engine.step))
        events = list(cb.fn(SimpleNamespace(step=1, dist=group), False))
    evaluated = next(e.metrics for e in events if isinstance(e, Evaluated))
    out["eval"] = torch.tensor([evaluated[k] for k in sorted(evaluated)], dtype=torch.float64)
    out["rank_only.on_best_calls"] = torch.tensor([len(best)])
    return out


def trace_all(group: distributed.Group, folder: Path, prepared: Path) -> dict[str, torch.Tensor]:
    """`prepared`: a prepared folder of FOLDER_IMAGES images of 32 px (the test prepares it before the ranks start)."""
    out = {}
    for setting in ("toy", "conv", "cond", "folder", "augment"):
        engine = build(setting, prepared)
        torchrun.attach(group, engine, {"setting": setting})
        out.update({f"{setting}.{k}": v for k, v in trace(engine).items()})
    out.update(scores(group, folder))
    return out


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    group = torchrun.join(torch.device("cpu"))
    result = trace_all(group, folder, folder / "prepared")
    save_file({k: v.contiguous() for k, v in result.items()}, str(folder / f"rank{group.rank}.safetensors"),
              metadata={"world": json.dumps(group.world)})
