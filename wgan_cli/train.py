"""`wgan train`: image GANs on the shared engine (the pattern of toy.py's train_toy).

options -> (ImageOptions, TrainConfig) resolved with a preset -> checks (before any data is read) -> data ->
models from a spec -> Engine -> run directory (resume, options.json, metrics.jsonl) -> fit with callbacks:
checkpoints, a fixed-noise sample grid, the validation Wasserstein estimate of Section 5.6, loss curves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from wgan_cli import models, plots
from wgan_cli.config import IMAGE_PRESETS, ImageOptions, TrainConfig, resolve_image, resolve_train
from wgan_cli.data.images import (DATASET_NAMES, ImageData, StreamImages, check_name, load_image_data,
                                  native_size, to_uint8_nhwc)
from wgan_cli.engine import Callback, Engine, configure_backends, fit, pick_device
from wgan_cli.errors import UsageError
from wgan_cli.events import Evaluated, Note, Saved
from wgan_cli.penalties import critic_score
from wgan_cli.runs import RunDir, checkpoint_callback, resume

SIZES = {"dcgan": (28, 32, 64, 128), "resnet": (32, 64, 128), "resnet64": (64, 128), "resnet101": (32, 64, 128),
         "mlp": (28, 32, 64, 128)}
PREFERRED_SIZE = {"dcgan": 32, "resnet": 32, "resnet64": 64, "resnet101": 64, "mlp": 64}
CONDITIONAL_ARCHS = ("resnet", "resnet64")
Z_DIM = 128


# ---- options -----------------------------------------------------------------------------------------------


def get_preset(name: str | None) -> dict | None:
    if name is None:
        return None
    if name not in IMAGE_PRESETS:
        raise UsageError(f"unknown preset {name!r}", f"choose one of: {', '.join(IMAGE_PRESETS)}")
    return IMAGE_PRESETS[name]


def resolve(opts: ImageOptions, cfg: TrainConfig) -> tuple[ImageOptions, TrainConfig]:
    """Explicit options > the preset > defaults, for both records. lr_decay and conditional (whose TrainConfig
    defaults are not None) may be passed as None, meaning 'the preset's value, else the default'."""
    preset = get_preset(opts.preset)
    train_preset = dict((preset or {}).get("train", {}))
    for key in ("lr_decay", "conditional"):
        value = train_preset.pop(key, getattr(TrainConfig(), key))
        if getattr(cfg, key) is None:
            cfg = dataclasses.replace(cfg, **{key: value})
    return resolve_image(opts, preset), resolve_train(cfg, train_preset)


def image_size(opts: ImageOptions) -> int:
    allowed = SIZES[opts.arch]
    if opts.size is not None:
        if opts.size not in allowed:
            raise UsageError(f"--arch {opts.arch} works at {', '.join(map(str, allowed))} pixels, not {opts.size}",
                             f"use --size {PREFERRED_SIZE[opts.arch]}")
        return opts.size
    native = native_size(opts.dataset)
    return native if native in allowed else PREFERRED_SIZE[opts.arch]


def output_range(arch: str, size: int) -> str:
    """The gan_mnist.py nets end in a sigmoid (data in [0, 1]); everything else in tanh (data in [-1, 1])."""
    return "sigmoid" if arch == "dcgan" and size == 28 else "tanh"


def check_options(opts: ImageOptions, cfg: TrainConfig) -> None:
    """Everything that can be refused without reading data."""
    if opts.arch not in SIZES:
        raise UsageError(f"unknown architecture {opts.arch!r}", f"choose one of: {', '.join(SIZES)}")
    check_name(opts.dataset)
    if opts.critic_norm == "batchnorm" and cfg.penalty in ("gp", "lp"):
        raise UsageError(
            f"--critic-norm batchnorm cannot be used with --penalty {cfg.penalty}: BatchNorm makes each sample's "
            "critic output depend on the rest of the batch, so the per-sample gradient penalty no longer "
            "constrains the critic's gradient at that sample (Section 4 of the paper)",
            "use --critic-norm layernorm (the paper's drop-in replacement) or none; BatchNorm in the critic is "
            "only for the baselines (--penalty clip or none)")
    if cfg.conditional and opts.arch not in CONDITIONAL_ARCHS:
        raise UsageError(f"--conditional needs conditional BN in G: available for --arch "
                         f"{' or '.join(CONDITIONAL_ARCHS)}, not {opts.arch}", "use --arch resnet")
    if opts.variant != "default" and opts.arch != "dcgan":
        raise UsageError(f"--variant {opts.variant} applies to --arch dcgan only", "drop --variant or use --arch dcgan")
    image_size(opts)


def model_spec(opts: ImageOptions, data: ImageData, cfg: TrainConfig) -> dict:
    spec = {"arch": opts.arch, "dim": opts.dim, "size": data.size, "channels": data.channels, "z_dim": Z_DIM,
            "critic_norm": opts.critic_norm}
    if opts.arch == "dcgan":
        spec["variant"] = opts.variant
    if opts.init != "tflib":   # absent means tflib, as in every checkpoint written before the key existed
        spec["init"] = opts.init
    if cfg.conditional:
        spec["n_classes"] = data.n_classes
    return spec


# ---- building the run --------------------------------------------------------------------------------------


def load_data(opts: ImageOptions, cfg: TrainConfig, device) -> ImageData:
    size = image_size(opts)
    return load_image_data(opts.dataset, opts.data_dir, size=size, device=device, batch_size=cfg.batch_size,
                           output=output_range(opts.arch, size), dequantize=opts.dequantize, seed=cfg.seed,
                           workers=opts.workers, strict=opts.strict, download=opts.download,
                           need_labels=cfg.conditional)


def build_engine(spec: dict, data: ImageData, cfg: TrainConfig, device) -> Engine:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G, D = models.build(spec)
    return Engine(G, D, data.train, cfg, device)


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
    """Section 5.6: mean D(real) - mean D(fake) on held-out images, with fakes drawn as in training.
    Its own torch.Generator and restored buffers: evaluating never changes the training run."""
    g = torch.Generator(device=engine.device).manual_seed(seed)
    if isinstance(val, StreamImages):
        val.rewind()   # the same validation images every time
    bs = engine.cfg.batch_size
    real_sum = fake_sum = torch.zeros((), device=engine.device)
    n = 0
    with keep_buffers(engine.G, engine.D):
        for _ in range(max(1, math.ceil(n_val / bs))):
            real, _ = val.sample(bs, g)
            z = torch.randn(bs, engine.G.z_dim, device=engine.device, generator=g)
            if engine.cfg.conditional:
                y = torch.randint(0, engine.G.n_classes, (bs,), device=engine.device, generator=g)
                fake = engine.G(z, y)
            else:
                fake = engine.G(z)
            real_sum = real_sum + critic_score(engine.D(real)).float().sum()
            fake_sum = fake_sum + critic_score(engine.D(fake.to(real.dtype))).float().sum()
            n += bs
    return float((real_sum - fake_sum) / n)


def fixed_noise(G, n: int, device, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g).to(device)
    y = (torch.arange(n) % G.n_classes).to(device) if G.n_classes else None
    return z, y


@torch.no_grad()
def render(G, z, y) -> torch.Tensor:
    was_training = G.training
    G.eval()
    try:
        return G(z, y) if y is not None else G(z)
    finally:
        G.train(was_training)


# ---- the command -------------------------------------------------------------------------------------------


def train_images(opts: ImageOptions, cfg: TrainConfig, sinks=(), should_stop=lambda: 0) -> dict:
    """Train (or resume) one image run in `opts.out`. Returns the last statistics and validation estimate."""
    from wgan_cli.sample import write_grid
    from wgan_cli.ui import JsonlSink, read_jsonl

    opts, cfg = resolve(opts, cfg)
    check_options(opts, cfg)
    device = pick_device(opts.device)
    configure_backends(cfg.precision, device)
    run = RunDir(opts.out).create()
    data = load_data(opts, cfg, device)
    spec = model_spec(opts, data, cfg)
    engine = build_engine(spec, data, cfg, device)
    output = getattr(engine.G, "output", "tanh")
    jsonl = JsonlSink(run.metrics_path)
    sinks = [*sinks, jsonl]

    def emit(event):
        for s in sinks:
            s(event)

    try:
        for text in data.notes:
            emit(Note(text, "warning"))
        for note in resume(engine, run, opts.resume, task="image", model=spec):
            emit(note)
        run.write_options({"command": "train", "image": dataclasses.asdict(opts), "train": cfg.to_json(),
                           "model": spec, "device": str(device),
                           "data": {"where": data.where, "n_train": data.n_train, "n_val": data.n_val}})
        emit(Note(f"{opts.dataset}: {data.n_train} training and {data.n_val} validation images at "
                  f"{data.size}x{data.size}x{data.channels} from {data.where}"))
        result: dict = {}
        z, y = fixed_noise(engine.G, 100 if cfg.conditional else 64, device)
        figures = run.path / "figures"
        reported: set = set()

        def grid(engine: Engine, final: bool):
            path = write_grid(to_uint8_nhwc(render(engine.G, z, y), output),
                              run.path / "samples" / f"iter-{engine.step:07d}.png",
                              nrow=10 if cfg.conditional else 8)
            yield Note(f"samples {path}")

        def evaluate(engine: Engine, final: bool):
            if data.val is None:
                return
            value = validation_w_dist(engine, data.val, opts.n_val)
            result["val_w_dist"] = value
            yield Evaluated(engine.step, {"val_w_dist": value})

        def curves(engine: Engine, final: bool):
            path = plots.save_loss_curves(figures / "loss-curves.png", read_jsonl(run.metrics_path),
                                          title=f"{opts.dataset} {opts.arch} {cfg.objective}-{cfg.penalty}")
            if path is not None and final:
                yield Note(f"loss curves {path}")

        def skipped(engine: Engine, final: bool):
            bad = [*getattr(engine.data, "skipped", []), *getattr(data.val, "skipped", [])]
            for path in dict.fromkeys(bad):   # the validation images are read again at every evaluation
                if path not in reported:
                    reported.add(path)
                    yield Note(f"skipped unreadable image {path} ({len(reported)} so far; --strict stops "
                               "instead)", "warning")

        callbacks = [
            Callback(skipped, every=opts.log_every),
            *score_callbacks(opts, engine, run, spec, cfg, output, device),
            checkpoint_callback(run, task="image", model=spec, train=cfg.to_json(),
                                extra={"dataset": opts.dataset, "output": output}, every=opts.save_every),
            Callback(grid, every=opts.sample_every),
            Callback(evaluate, every=opts.eval_every),
            Callback(curves, every=opts.eval_every),
        ]
        fit(engine, sinks=sinks, callbacks=callbacks, log_every=opts.log_every, should_stop=should_stop,
            description=f"{opts.dataset} {opts.arch} {cfg.objective}-{cfg.penalty}")
        rows = read_jsonl(run.metrics_path)
        last = next((r for r in reversed(rows) if r.get("event") == "step"), {})
        result.update({k: last[k] for k in ("w_dist", "loss_d", "gp", "loss_g") if k in last})
        result["step"] = engine.step
        for note in skipped(engine, True):   # anything read since the last report
            emit(note)
        result["skipped_images"] = len(reported)
        return result
    finally:
        jsonl.close()


def score_callbacks(opts: ImageOptions, engine: Engine, run: RunDir, spec: dict, cfg: TrainConfig, output: str,
                    device) -> list[Callback]:
    """`--eval-metrics fid,is`: score the generator (its EMA copy where kept) every --eval-every iterations,
    log the scores and keep the best generator by FID as best.safetensors. Checked before training starts."""
    if not opts.eval_metrics:
        return []
    from wgan_cli import checkpoint
    from wgan_cli.data.images import to_uint8
    from wgan_cli.metrics.evaluate import eval_callback

    ref = opts.eval_ref or f"{opts.dataset}:train"

    @torch.no_grad()
    def generate_uint8(n: int, gen: torch.Generator) -> torch.Tensor:
        G = engine.G_ema if engine.G_ema is not None else engine.G
        was_training = G.training
        G.eval()
        z = torch.randn(n, G.z_dim, device=engine.device, generator=gen)
        if cfg.conditional:
            y = torch.randint(0, G.n_classes, (n,), device=engine.device, generator=gen)
            x = G(z, y)
        else:
            x = G(z)
        G.train(was_training)
        return to_uint8(x, output)

    def on_best(step: int, metrics: dict):
        G = engine.G_ema if engine.G_ema is not None else engine.G
        path = checkpoint.save(run.path / "best.safetensors", {"G." + k: v for k, v in G.state_dict().items()},
                               kind="generator", task="image", model=spec, train=cfg.to_json(), step=step,
                               extra={"dataset": opts.dataset, "output": output, "fid": metrics.get("fid")})
        return [Saved(step, str(path), "generator (best FID)")]

    return [eval_callback(every=opts.eval_every, n=opts.eval_n, metrics=opts.eval_metrics, ref=ref,
                          device=device, generate_uint8=generate_uint8, on_best=on_best, seed=cfg.seed)]


def dry_run(opts: ImageOptions, cfg: TrainConfig) -> dict:
    """The resolved options, checked, without reading data."""
    opts, cfg = resolve(opts, cfg)
    check_options(opts, cfg)
    return {"image": dataclasses.asdict(opts), "size": image_size(opts), "train": cfg.to_json(),
            "datasets": list(DATASET_NAMES)}
