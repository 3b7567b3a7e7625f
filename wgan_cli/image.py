"""`wgan train`: image GANs on the run skeleton (runs.train_run); ImageTask, the task "image".

ImageTask: options resolved with a preset and the architecture's defaults -> checks (before any data is read) ->
data -> models from a spec -> callbacks: a fixed-noise sample grid, the validation Wasserstein estimate of
Section 5.6, loss curves, in-training FID/IS/KID with the best generator kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from wgan_cli import checkpoint, checkpoint_schema, models, outputs, plots
from wgan_cli.augment import ADA_TARGET, Augmenter, Policy, parse_p, parse_policy
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
from wgan_cli.runs import Plan, Task
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
            z = group.take(models.draw_z(engine.G, bs, g))
            y = group.take(models.draw_labels(engine.G, bs, g)) if engine.G.n_classes else None
            fake = engine.G(z, y)
            real_sum = real_sum + critic_score(engine.D(real)).float().sum()
            fake_sum = fake_sum + critic_score(engine.D(fake.to(real.dtype))).float().sum()
            n += bs
    sums = group.sum(torch.stack([real_sum, fake_sum]))
    return float((sums[0] - sums[1]) / n)


def fixed_noise(G, n: int, device, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = models.draw_z(G, n, g).to(device)
    y = (torch.arange(n) % G.n_classes).to(device) if G.n_classes else None
    return z, y


@dataclass(frozen=True)
class Prepared:
    """What `wgan train` reads before the run directory exists: the images (a set of image files prepared once,
    its unreadable files listed) and the in-training evaluation (its weights and reference checked)."""

    data: datasets.ImageData
    evaluator: Callback | None
    eval_notes: list


def scored_generator(engine: Engine) -> torch.nn.Module:
    """The generator the scores judge: its EMA copy where one is kept."""
    return engine.G_ema if engine.G_ema is not None else engine.G


class ImageTask(Task):
    name = "image"

    def __init__(self, opts: ImageOptions, progress=None):
        super().__init__(opts)
        self.progress = progress   # how the decoding of a set of image files is shown (ui.prepare_progress)

    def same(self, plan: Plan, prepared: Prepared) -> tuple[str, ...]:
        """What identifies the data on resume: the name of a built-in set; for image files the resolved source and
        the digest of the prepared pixels (a folder spelled another way resumes, other images behind the same
        spelling are refused)."""
        if prepared.data.digest:
            return ("data_source", "data_digest", "train_images")
        return ("dataset", "train_images")

    def plan(self, cfg: TrainConfig, run: RunOptions) -> Plan:
        opts = self.opts
        preset = None
        if opts.preset is not None:
            if opts.preset not in IMAGE_PRESETS:
                raise UsageError(f"unknown preset {opts.preset!r}", f"choose one of: {', '.join(IMAGE_PRESETS)}")
            preset = IMAGE_PRESETS[opts.preset]
        opts = resolve_image(opts, preset)
        if opts.arch == "random":
            opts, cfg = resolve_random(opts, cfg)
        elif opts.arch_seed is not None:
            raise UsageError("--arch-seed chooses a Table 1 architecture and needs --arch random",
                             "add --arch random, or drop --arch-seed")
        cfg = resolve_train(cfg, preset)
        opts = resolve_augment(opts)
        dataset = datasets.get(opts.dataset)
        models.check(opts.arch, critic_norm=opts.critic_norm, conditional=cfg.conditional, variant=opts.variant,
                     penalty=cfg.penalty)
        size = models.image_size(opts.arch, opts.size, dataset.size)
        return Plan("train", "image", cfg, run, opts, description=f"{opts.dataset} {opts.arch} {cfg.objective}-"
                    f"{cfg.penalty}", resolved={"size": size}, model=model_spec(opts, cfg, size, channels="from the data"),
                    data={"dataset": opts.dataset, "train_images": opts.train_images or "all",
                          "data_dir": opts.data_dir, "labels": bool(cfg.conditional)})

    def inputs(self, plan: Plan) -> dict:
        folder = plan.opts.dataset[len("folder:"):] if plan.opts.dataset.startswith("folder:") else None
        return {"--data-dir": plan.opts.data_dir, "--dataset": folder and os.path.expanduser(folder)}

    def prepare(self, plan: Plan, device) -> Prepared:
        opts, cfg, size = plan.opts, plan.cfg, plan.resolved["size"]
        pixel_range = pixel_range_of(plan)
        data = datasets.load_image_data(
            opts.dataset, opts.data_dir, size=size, device=device, batch_size=cfg.batch_size,
            pixel_range=pixel_range, dequantize=opts.dequantize, seed=cfg.seed, workers=opts.workers,
            strict=opts.strict, download=opts.download, need_labels=cfg.conditional, train_images=opts.train_images,
            val_share=opts.val_share, memory_budget=opts.memory_budget, progress=self.progress)
        evaluator, eval_notes = None, []
        if opts.eval_metrics:   # weights and reference checked now, before the run directory exists
            def save_best(engine: Engine, metrics: dict):
                path = checkpoint.save(Path(plan.run.out) / "best.safetensors",
                                       generator_state(scored_generator(engine)), kind="generator", task=self.name,
                                       model=self.spec(plan, prepared), train=cfg.to_json(), step=engine.step,
                                       extra={**self.extra(plan, prepared), "fid": metrics.get("fid")})
                return [Saved(engine.step, str(path), "generator (best FID)")]

            evaluator, eval_notes = eval_callback(
                every=opts.eval_every, n=opts.n_eval, metrics=opts.eval_metrics,
                ref=opts.eval_ref or f"{opts.dataset}:train", device=device, generator=scored_generator,
                pixel_range=pixel_range, on_best=save_best, seed=cfg.seed, data_dir=opts.data_dir,
                compile=opts.compile)
        if policy_of(opts).ada and data.val is None:
            raise UsageError("--augment-p ada needs a validation split to measure the critic's overfitting, and "
                             f"{opts.dataset} has none here", "give a fixed probability, e.g. --augment-p 0.5")
        prepared = Prepared(data, evaluator, eval_notes)
        return prepared

    def data_json(self, plan: Plan, prepared: Prepared) -> dict:
        data = prepared.data
        return {"model": self.spec(plan, prepared),
                "data": {"where": data.where, "n_train": data.n_train, "n_val": data.n_val}}

    def spec(self, plan: Plan, prepared: Prepared) -> dict:
        data = prepared.data
        spec = model_spec(plan.opts, plan.cfg, data.size, data.channels)
        if plan.cfg.conditional:
            spec["n_classes"] = data.n_classes
        return spec

    def extra(self, plan: Plan, prepared: Prepared) -> dict:
        opts = plan.opts
        extra = {"dataset": opts.dataset,
                 checkpoint_schema.PIXEL_RANGE_KEY: pixel_range_of(plan),
                 "train_images": opts.train_images}
        if prepared.data.digest:   # image files: where they are and what they hold
            extra.update(data_source=prepared.data.source, data_digest=prepared.data.digest,
                         val_share=opts.val_share)   # which images were held out (`score --nearest` reads it)
        policy = policy_of(opts)
        if policy:   # a training-time view only: sample and score ignore it
            extra.update(augment=opts.augment, augment_p=opts.augment_p, augment_penalty=opts.augment_penalty,
                         mirror=opts.mirror, **({"ada_target": policy.target} if policy.ada else {}))
        return {**extra, "arch_seed": opts.arch_seed} if opts.arch == "random" else extra

    def build(self, plan: Plan, prepared: Prepared, device) -> Engine:
        G, D = models.build_seeded(self.spec(plan, prepared), plan.cfg.seed)
        policy = policy_of(plan.opts)
        augment = (Augmenter(policy, pixel_range_of(plan), torch.device(device), val=prepared.data.val)
                   if policy else None)
        return Engine(G, D, prepared.data.train, plan.cfg, device, augment=augment)

    def notes(self, plan: Plan, prepared: Prepared):
        data = prepared.data
        yield from (Note(text) for text in data.info)
        yield from (Note(text, "warning") for text in data.notes)
        for s in data.skipped[:FIRST_FEW]:
            detail = f" ({s['detail']})" if s["detail"] else ""
            yield Note(f"skipped unreadable image {s['name']!r}: {s['reason']}{detail}", "warning")
        yield from prepared.eval_notes
        yield Note(f"{plan.opts.dataset}: {data.n_train} training and {data.n_val} validation images at "
                   f"{data.size}x{data.size}x{data.channels} from {data.where}")

    def callbacks(self, plan: Plan, prepared: Prepared, engine: Engine, run_dir: RunDir) -> list[Callback]:
        opts, cfg, data = plan.opts, plan.cfg, prepared.data
        pixel_range = pixel_range_of(plan)
        z, y = fixed_noise(engine.G, 100 if cfg.conditional else 64, engine.device)

        def grid(engine: Engine, final: bool):
            images = to_uint8_nhwc(models.generate(engine.G, z, y, chunk=len(z)), pixel_range)
            path = outputs.write_grid(images, run_dir.path / "samples" / f"iter-{engine.step:07d}.png",
                                      nrow=10 if cfg.conditional else 8)
            yield Artifact(engine.step, str(path), "samples")

        # a small training set (--train-images) or an augmented run: the same estimate on the training images
        # as well (plain images, the same fakes), so the train/held-out gap compares runs with and without
        # augmentation; the training batches' w_dist is on the augmented images the critic is trained on
        train_too = (opts.train_images or policy_of(opts)) and not isinstance(data.train, StreamImages)

        def validate(engine: Engine, final: bool):
            if data.val is not None:
                values = {"val_w_dist": validation_w_dist(engine, data.val, opts.n_val)}
                if train_too:
                    values["train_set_w_dist"] = validation_w_dist(engine, data.train, opts.n_val)
                yield Evaluated(engine.step, values)

        def curves(engine: Engine, final: bool):
            path = plots.save_loss_curves(run_dir.path / "figures" / "loss-curves.png",
                                          read_jsonl(run_dir.metrics_path), title=plan.description)
            if path is not None and final:
                yield Artifact(engine.step, str(path), "figure")

        return [
            *([prepared.evaluator] if prepared.evaluator is not None else []),
            Callback(grid, every=opts.sample_every),
            Callback(validate, every=opts.eval_every, collective=True),
            Callback(curves, every=opts.eval_every),
        ]

    def summary(self, plan: Plan, prepared: Prepared, engine: Engine, last: LastValues) -> dict:
        result = {k: last.stats[k] for k in ("w_dist", "loss_d", "gp", "loss_g") if k in last.stats}
        if "val_w_dist" in last.metrics:
            result["val_w_dist"] = last.metrics["val_w_dist"]
        elif prepared.data.val is not None:   # the run had finished in an earlier process: estimate it now
            result["val_w_dist"] = validation_w_dist(engine, prepared.data.val, plan.opts.n_val)
        return {**result, "step": engine.step, "skipped_images": len(prepared.data.skipped)}


def resolve_augment(opts: ImageOptions) -> ImageOptions:
    """--augment and --augment-p checked and written in one form: the policy as given, p as 'ada' or a number
    ('1.0' when --augment is given alone; '' without --augment)."""
    names = parse_policy(opts.augment)
    given = opts.augment_p not in (None, "")   # "": an options.json of a run without --augment
    if given and not names:
        raise UsageError("--augment-p sets the probability of --augment's transforms, and no --augment was given",
                         "add e.g. --augment translation,cutout")
    p = parse_p(opts.augment_p) if given else 1.0
    if opts.ada_target is not None and p != "ada":
        raise UsageError("--ada-target sets the gap that --augment-p ada holds, and p is not ada here",
                         "add --augment-p ada, or leave --ada-target out")
    target = (ADA_TARGET if opts.ada_target is None else opts.ada_target) if p == "ada" else None
    return dataclasses.replace(opts, augment=",".join(names), augment_p=(str(p) if names else ""),
                               ada_target=target)


def pixel_range_of(plan: Plan) -> str:
    """"tanh" or "sigmoid": the range of the images the planned generator makes (and of the real images fed to
    its critic)."""
    return models.pixel_range(plan.opts.arch, plan.resolved["size"])


def policy_of(opts: ImageOptions) -> Policy:
    """The augmentation of resolved options."""
    names = parse_policy(opts.augment)
    return Policy(names, parse_p(opts.augment_p) if names else 1.0, bool(opts.mirror),
                  penalty_on_augmented=opts.augment_penalty == "augmented",
                  target=ADA_TARGET if opts.ada_target is None else opts.ada_target)


def model_spec(opts: ImageOptions, cfg: TrainConfig, size: int, channels: int | str) -> dict:
    """The model spec of resolved options (in a plan, `channels` is not known yet: the data says)."""
    if opts.arch == "random":
        spec = random_arch.random_spec(opts.arch_seed, size=size, channels=channels, z_dim=Z_DIM,
                                       penalty=cfg.penalty)
    else:
        spec = {"arch": opts.arch, "dim": opts.dim, "size": size, "channels": channels, "z_dim": Z_DIM,
                "critic_norm": opts.critic_norm}
    if opts.arch == "dcgan":
        spec["variant"] = opts.variant
    if opts.init != INIT_WHEN_ABSENT:   # absent means tflib, as in every checkpoint written before the key
        spec["init"] = opts.init
    return spec
