"""`wgan train`: image GANs on the run skeleton (runs.train_run).

ImageTask: options resolved with a preset and the architecture's defaults -> checks (before any data is read) ->
data -> models from a spec -> callbacks: a fixed-noise sample grid, the validation Wasserstein estimate of
Section 5.6, loss curves, in-training FID/IS/KID with the best generator kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from wgan_cli import checkpoint, models, outputs, plots
from wgan_cli.config import IMAGE_DEFAULTS, IMAGE_PRESETS, ImageOptions, RunOptions, TrainConfig, resolve_train
from wgan_cli.data import images as datasets
from wgan_cli.data.pixels import to_uint8_nhwc
from wgan_cli.data.prepared import FIRST_FEW
from wgan_cli.data.samplers import StreamImages
from wgan_cli.engine import Callback, Engine
from wgan_cli.errors import UsageError
from wgan_cli.events import Artifact, Evaluated, Note, Saved
from wgan_cli.metrics.evaluate import eval_callback
from wgan_cli.models import random_arch
from wgan_cli.models.init import INIT_WHEN_ABSENT
from wgan_cli.penalties import critic_score
from wgan_cli.rundir import RunDir, generator_state
from wgan_cli.runs import Task
from wgan_cli.ui import LastValues, read_jsonl

Z_DIM = 128


def resolve_image(opts: ImageOptions, preset: dict | None) -> ImageOptions:
    """Fill None fields: explicit option > preset > architecture default."""
    filled = {**IMAGE_DEFAULTS, **((preset or {}).get("image", {}))}
    if (opts.arch or filled["arch"]) == "random":   # a preset's widths and critic norm are for its own nets
        filled = {k: v for k, v in filled.items() if k not in ("dim", "critic_norm")}
    opts = dataclasses.replace(opts, **{k: v for k, v in filled.items() if getattr(opts, k) is None})
    arch = models.get(opts.arch, "image")
    if opts.arch == "random":   # Table 1 draws the widths; the critic's normalisation waits for the penalty
        return dataclasses.replace(opts, dequantize=bool(opts.dequantize), init=opts.init or INIT_WHEN_ABSENT)
    defaults = dict(dim=arch.dim, critic_norm=arch.critic_norm, dequantize=arch.dequantize, init=INIT_WHEN_ABSENT)
    return dataclasses.replace(opts, **{k: v for k, v in defaults.items() if getattr(opts, k) is None})


def resolve_random(opts: ImageOptions, cfg: TrainConfig) -> tuple[ImageOptions, TrainConfig]:
    """--arch random (Section 5.1): --arch-seed (default 0) names a Table 1 architecture, whose draws fix the
    widths; D's normalisation, when drawn, follows the penalty (random_arch.critic_norm_for) and brings Appendix
    B's critic weight decay of 1e-3 unless `cfg.weight_decay_d` was set. `cfg` is the caller's (unresolved)."""
    seed = 0 if opts.arch_seed is None else opts.arch_seed
    drawn = random_arch.sample_architecture(seed)
    if opts.dim is not None:
        raise UsageError("--dim does not apply to --arch random: Table 1 draws the widths (g_dim, d_dim)",
                         "drop --dim, or choose another --arch-seed")
    penalty = resolve_train(cfg).penalty
    norm = random_arch.critic_norm_for(drawn["d_normalise"], penalty)
    if opts.critic_norm not in (None, norm):
        raise UsageError(f"--critic-norm does not apply to --arch random: architecture {seed} "
                         + ("normalises D (LayerNorm under a gradient penalty, BatchNorm otherwise)"
                            if drawn["d_normalise"] else "has no normalisation in D"),
                         "drop --critic-norm, or choose another --arch-seed")
    if cfg.weight_decay_d is None:
        cfg = dataclasses.replace(cfg, weight_decay_d=random_arch.WEIGHT_DECAY_D if drawn["d_normalise"] else 0.0)
    return dataclasses.replace(opts, arch_seed=seed, critic_norm=norm), cfg


@contextlib.contextmanager
def keep_buffers(*modules):
    """Run forward passes without leaving a trace: BatchNorm running statistics are restored afterwards."""
    saved = [[b.clone() for b in m.buffers()] for m in modules]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, bufs in zip(modules, saved):
                for b, old in zip(m.buffers(), bufs):
                    b.copy_(old)


@torch.no_grad()
def validation_w_dist(engine: Engine, val, n_val: int, seed: int = 1234) -> float:
    """Section 5.6: mean D(real) - mean D(fake) on held-out images, with fakes drawn as in training (G in its
    training mode). Its own torch.Generator and restored buffers: evaluating never changes the training run.
    Under torchrun each rank scores its rows of every batch and the sums are added up over the ranks."""
    g = torch.Generator(device=engine.device).manual_seed(seed)
    group = engine.dist
    if isinstance(val, StreamImages):
        val.rewind()   # the same validation images every time
    bs = engine.cfg.batch_size
    real_sum = fake_sum = torch.zeros((), device=engine.device)
    n = 0
    with keep_buffers(engine.G, engine.D):
        for _ in range(max(1, math.ceil(n_val / bs))):
            real, _ = group.sample(val, bs, g)
            z = group.take(torch.randn(bs, engine.G.z_dim, device=engine.device, generator=g))
            y = group.take(torch.randint(0, engine.G.n_classes, (bs,), device=engine.device, generator=g)) \
                if engine.G.n_classes else None
            fake = engine.G(z, y)
            real_sum = real_sum + critic_score(engine.D(real)).float().sum()
            fake_sum = fake_sum + critic_score(engine.D(fake.to(real.dtype))).float().sum()
            n += bs
    sums = group.sum(torch.stack([real_sum, fake_sum]))
    return float((sums[0] - sums[1]) / n)


def fixed_noise(G, n: int, device, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g).to(device)
    y = (torch.arange(n) % G.n_classes).to(device) if G.n_classes else None
    return z, y


class ImageTask(Task):
    name = "image"
    command = "train"
    section = "image"
    progress = None   # how the decoding of a set of image files is shown (ui.prepare_progress)

    @property
    def same(self) -> tuple[str, ...]:
        """What identifies the data on resume: the name of a built-in set; for image files the resolved source and
        the digest of the prepared pixels (a folder spelled another way resumes, other images behind the same
        spelling are refused)."""
        if getattr(self, "data", None) is not None and self.data.digest:
            return ("data_source", "data_digest", "train_images")
        return ("dataset", "train_images")

    def resolve(self, cfg: TrainConfig) -> TrainConfig:
        opts = self.opts
        preset = None
        if opts.preset is not None:
            if opts.preset not in IMAGE_PRESETS:
                raise UsageError(f"unknown preset {opts.preset!r}", f"choose one of: {', '.join(IMAGE_PRESETS)}")
            preset = IMAGE_PRESETS[opts.preset]
        self.opts = opts = resolve_image(opts, preset)
        if opts.arch == "random":
            self.opts, cfg = opts, cfg = resolve_random(opts, cfg)
        elif opts.arch_seed is not None:
            raise UsageError("--arch-seed chooses a Table 1 architecture and needs --arch random",
                             "add --arch random, or drop --arch-seed")
        self.cfg = cfg = resolve_train(cfg, preset)
        datasets.get(opts.dataset)
        models.check(opts.arch, critic_norm=opts.critic_norm, conditional=cfg.conditional, variant=opts.variant,
                     penalty=cfg.penalty)
        self.size = models.image_size(opts.arch, opts.size, datasets.get(opts.dataset).size)
        self.output = models.output_range(opts.arch, self.size)
        return cfg

    def record(self, cfg: TrainConfig, run: RunOptions) -> dict:
        out = {**super().record(cfg, run), "size": self.size}
        if hasattr(self, "data"):
            data = self.data
            out.update(model=self.spec, data={"where": data.where, "n_train": data.n_train, "n_val": data.n_val})
        return out

    def prepare(self, cfg: TrainConfig, device) -> None:
        opts = self.opts
        self.data = datasets.load_image_data(
            opts.dataset, opts.data_dir, size=self.size, device=device, batch_size=cfg.batch_size,
            output=self.output, dequantize=opts.dequantize, seed=cfg.seed, workers=opts.workers, strict=opts.strict,
            download=opts.download, need_labels=cfg.conditional, train_images=opts.train_images,
            val_share=opts.val_share, memory_budget=opts.memory_budget, progress=self.progress)
        self.evaluator, self.eval_notes = None, []
        if opts.eval_metrics:   # weights and reference checked now, before the run directory exists
            self.evaluator, self.eval_notes = eval_callback(
                every=opts.eval_every, n=opts.eval_n, metrics=opts.eval_metrics,
                ref=opts.eval_ref or f"{opts.dataset}:train", device=device, generator=self.scored_generator,
                output=self.output, on_best=self.save_best, seed=cfg.seed, data_dir=opts.data_dir)

    @property
    def spec(self) -> dict:
        opts, data = self.opts, self.data
        if opts.arch == "random":
            spec = random_arch.random_spec(opts.arch_seed, size=data.size, channels=data.channels, z_dim=Z_DIM,
                                           penalty=self.cfg.penalty)
        else:
            spec = {"arch": opts.arch, "dim": opts.dim, "size": data.size, "channels": data.channels,
                    "z_dim": Z_DIM, "critic_norm": opts.critic_norm}
        if opts.arch == "dcgan":
            spec["variant"] = opts.variant
        if opts.init != INIT_WHEN_ABSENT:   # absent means tflib, as in every checkpoint written before the key
            spec["init"] = opts.init
        if self.cfg.conditional:
            spec["n_classes"] = data.n_classes
        return spec

    @property
    def extra(self) -> dict:
        extra = {"dataset": self.opts.dataset, "output": self.output, "train_images": self.opts.train_images}
        data = getattr(self, "data", None)
        if data is not None and data.digest:
            extra.update(data_source=data.source, data_digest=data.digest)
        return {**extra, "arch_seed": self.opts.arch_seed} if self.opts.arch == "random" else extra

    @property
    def description(self) -> str:
        return f"{self.opts.dataset} {self.opts.arch} {self.cfg.objective}-{self.cfg.penalty}"

    def build(self, cfg: TrainConfig, device) -> Engine:
        G, D = models.build_seeded(self.spec, cfg.seed)
        self.engine = Engine(G, D, self.data.train, cfg, device)
        return self.engine

    def notes(self):
        data = self.data
        yield from (Note(text) for text in data.info)
        yield from (Note(text, "warning") for text in data.notes)
        for s in data.skipped[:FIRST_FEW]:
            detail = f" ({s['detail']})" if s["detail"] else ""
            yield Note(f"skipped unreadable image {s['name']!r}: {s['reason']}{detail}", "warning")
        yield from self.eval_notes
        yield Note(f"{self.opts.dataset}: {data.n_train} training and {data.n_val} validation images at "
                   f"{data.size}x{data.size}x{data.channels} from {data.where}")

    def scored_generator(self) -> torch.nn.Module:
        """The generator the scores judge: its EMA copy where one is kept."""
        return self.engine.G_ema if self.engine.G_ema is not None else self.engine.G

    def save_best(self, step: int, metrics: dict):
        path = checkpoint.save(self.run.path / "best.safetensors", generator_state(self.scored_generator()),
                               kind="generator", task=self.name, model=self.spec, train=self.cfg.to_json(),
                               step=step, extra={**self.extra, "fid": metrics.get("fid")})
        return [Saved(step, str(path), "generator (best FID)")]

    def callbacks(self, engine: Engine, run: RunDir, cfg: TrainConfig, options: RunOptions) -> list[Callback]:
        opts, data = self.opts, self.data
        self.run = run
        z, y = fixed_noise(engine.G, 100 if cfg.conditional else 64, engine.device)

        def grid(engine: Engine, final: bool):
            images = to_uint8_nhwc(models.generate(engine.G, z, y, chunk=len(z)), self.output)
            path = outputs.write_grid(images, run.path / "samples" / f"iter-{engine.step:07d}.png",
                                      nrow=10 if cfg.conditional else 8)
            yield Artifact(engine.step, str(path), "samples")

        def validate(engine: Engine, final: bool):
            if data.val is not None:
                yield Evaluated(engine.step, {"val_w_dist": validation_w_dist(engine, data.val, opts.n_val)})

        def curves(engine: Engine, final: bool):
            path = plots.save_loss_curves(run.path / "figures" / "loss-curves.png", read_jsonl(run.metrics_path),
                                          title=self.description)
            if path is not None and final:
                yield Artifact(engine.step, str(path), "figure")

        return [
            *([self.evaluator] if self.evaluator is not None else []),
            Callback(grid, every=opts.sample_every),
            Callback(validate, every=opts.eval_every, collective=True),
            Callback(curves, every=opts.eval_every),
        ]

    def summary(self, engine: Engine, last: LastValues) -> dict:
        result = {k: last.stats[k] for k in ("w_dist", "loss_d", "gp", "loss_g") if k in last.stats}
        if "val_w_dist" in last.metrics:
            result["val_w_dist"] = last.metrics["val_w_dist"]
        elif self.data.val is not None:   # the run had finished in an earlier process: estimate it now
            result["val_w_dist"] = validation_w_dist(engine, self.data.val, self.opts.n_val)
        return {**result, "step": engine.step, "skipped_images": len(self.data.skipped)}
