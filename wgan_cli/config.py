"""Frozen option records, the Enums the CLI shows, and the paper's presets.

Every training command goes options -> config -> task -> engine. Three records describe a run:
  TrainConfig   the algorithm (objective, penalty, optimiser, batch sizes, iterations, seed, precision);
  RunOptions    where and how it runs (run directory, device, resume, logging and saving cadence);
  ToyOptions / ImageOptions / TextOptions   what the command trains on and with which model.
A field left as None means "the preset's value, else the method's default" (Appendix E of the paper);
`resolve_train` fills TrainConfig, so options.json always records concrete values.

A preset has one shape everywhere: {"train": {TrainConfig fields}, SECTION: {that command's option fields}}.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


# StrEnum: members are the strings themselves, so they pass into the records and JSON unchanged.
class Objective(enum.StrEnum):
    wgan = "wgan"
    gan = "gan"      # non-saturating DCGAN loss
    lsgan = "lsgan"


class Penalty(enum.StrEnum):
    gp = "gp"        # two-sided gradient penalty (the paper)
    lp = "lp"        # one-sided penalty (Appendix C)
    clip = "clip"    # weight clipping (original WGAN)
    none = "none"


class Device(enum.StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(enum.StrEnum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"


class LrDecay(enum.StrEnum):
    none = "none"
    linear = "linear"


class Optimizer(enum.StrEnum):
    adam = "adam"
    rmsprop = "rmsprop"


class Resize(enum.StrEnum):
    """How `wgan score` brings images to the FID network's 299x299 (metrics/inception.preprocess)."""

    tf1 = "tf1"        # TensorFlow 1.x bilinear: the published (legacy) FIDs
    clean = "clean"    # clean-fid's antialiased PIL bicubic


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run. `iters` counts generator iterations."""

    objective: str = "wgan"
    penalty: str | None = None
    gp_weight: float | None = None          # lambda
    n_critic: int | None = None
    optimizer: str | None = None            # adam | rmsprop
    lr: float | None = None
    betas: tuple[float, float] | None = None
    clip_value: float = 0.01
    batch_size: int | None = None           # critic batch (real and fake each); default 64
    gen_batch_size: int | None = None       # generator step batch (Appendix F uses 2x); default batch_size
    iters: int | None = None                # generator iterations; default 1000
    lr_decay: str | None = None             # none | linear
    seed: int = 0
    ema_decay: float | None = None          # keep an EMA generator when set
    conditional: bool | None = None         # AC-WGAN-GP (Table 3)
    ac_weight_real: float = 1.0
    ac_weight_fake: float = 0.1
    precision: str = "fp32"
    weight_decay_d: float | None = None     # L2 weight decay of the critic's optimiser (Appendix B); default 0

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        if d["betas"] is not None:
            d["betas"] = list(d["betas"])
        return d


def method_defaults(objective: str, penalty: str) -> dict:
    """The paper's optimiser settings per method (Algorithm 1 and Appendix E baselines)."""
    if objective == Objective.wgan:
        if penalty == Penalty.clip:
            return dict(optimizer="rmsprop", lr=5e-5, betas=(0.0, 0.0), n_critic=5, gp_weight=0.0)
        return dict(optimizer="adam", lr=1e-4, betas=(0.0, 0.9), n_critic=5, gp_weight=10.0)
    if objective == Objective.gan:
        return dict(optimizer="adam", lr=2e-4, betas=(0.5, 0.999), n_critic=1, gp_weight=10.0)
    if objective == Objective.lsgan:
        return dict(optimizer="rmsprop", lr=1e-4, betas=(0.0, 0.0), n_critic=1, gp_weight=10.0)
    raise ValueError(f"unknown objective {objective!r}")


OPTIM_KEYS = ("optimizer", "lr", "betas", "n_critic", "gp_weight")
GENERAL_DEFAULTS = dict(batch_size=64, iters=1000, lr_decay="none", conditional=False, weight_decay_d=0.0)


def resolve_train(cfg: TrainConfig, preset: dict | None = None) -> TrainConfig:
    """Fill every None field: explicit option > preset["train"] > method default.

    A preset's optimiser settings (the paper's per-experiment Adam values) apply only to the WGAN methods
    trained with Adam; the baselines (clipping, DCGAN, LSGAN) keep their own.
    """
    penalty = cfg.penalty or ("gp" if cfg.objective == Objective.wgan else "none")
    defaults = {**GENERAL_DEFAULTS, **method_defaults(cfg.objective, penalty)}
    adam_wgan = cfg.objective == Objective.wgan and penalty != Penalty.clip
    for key, value in (preset or {}).get("train", {}).items():
        if key in OPTIM_KEYS and not adam_wgan:
            continue
        defaults[key] = value
    out = dataclasses.replace(cfg, penalty=penalty)
    filled = {f.name: defaults[f.name] for f in dataclasses.fields(cfg)
              if getattr(out, f.name) is None and f.name in defaults}
    out = dataclasses.replace(out, **filled)
    if out.gen_batch_size is None:
        out = dataclasses.replace(out, gen_batch_size=out.batch_size)
    if out.betas is not None:
        out = dataclasses.replace(out, betas=(float(out.betas[0]), float(out.betas[1])))
    return out


@dataclass(frozen=True)
class RunOptions:
    """Where a training command runs and how often it reports; shared by toy, train and textgen."""

    out: str = "runs/train"
    device: str = "auto"
    resume: str = "auto"       # auto | never | PATH of a checkpoint
    log_every: int = 100
    save_every: int = 1000
    tensorboard: bool = False  # also log to RUN/tensorboard (the optional tensorboard package)
    resume_with_changes: bool = False   # resume even if the checkpoint's data or model differ (weights must fit)


# ---- `wgan toy` ----------------------------------------------------------------------------------------------


class ToyDataset(enum.StrEnum):
    eight = "8gaussians"
    twentyfive = "25gaussians"
    swissroll = "swissroll"


class ToyFigure(enum.StrEnum):
    value_surface = "value-surface"   # Figure 1a
    gradnorm = "gradnorm"             # Figure 1b


# gan_toy.py: lambda 0.1 (not 10), batch 256, Adam 1e-4 (0.5, 0.9), n_critic 5. Clipping keeps RMSProp 5e-5.
TOY_PRESET = {"train": dict(gp_weight=0.1, batch_size=256, lr=1e-4, betas=(0.5, 0.9), n_critic=5, iters=2000)}


@dataclass(frozen=True)
class ToyOptions:
    dataset: str = "8gaussians"
    dim: int = 512
    depth: int = 3
    fixed_generator: bool = False
    plot_every: int = 500
    n_eval: int = 1000


# ---- `wgan train`: image GANs --------------------------------------------------------------------------------


class ImageArch(enum.StrEnum):
    dcgan = "dcgan"           # gan_mnist.py nets at 28x28, gan_cifar.py / gan_64x64.py DCGAN at 32+
    resnet = "resnet"         # gan_cifar_resnet.py (Appendix F)
    resnet64 = "resnet64"     # gan_64x64.py Good G/D
    resnet101 = "resnet101"   # gan_64x64.py deep bottleneck ResNet
    mlp = "mlp"               # Figure 2: 4 x 512 ReLU MLP generator
    random = "random"         # Section 5.1: an architecture drawn from Table 1 by --arch-seed


class CriticNorm(enum.StrEnum):
    none = "none"
    layernorm = "layernorm"
    batchnorm = "batchnorm"   # only for the baselines without a gradient penalty


class Variant(enum.StrEnum):
    """Figure 2's architecture variants of the DCGAN nets."""

    default = "default"
    no_norm = "no-norm"                     # no normalisation anywhere
    tanh = "tanh"                           # tanh nonlinearities in G and D
    gated = "gated"                         # gated multiplicative nonlinearities, sigmoid(a) * tanh(b)
    constant_filters = "constant-filters"   # G: constant filter count, no BN


class Init(enum.StrEnum):
    """Weight initialisation of the networks (models/init.py)."""

    tflib = "tflib"   # tflib's scheme, as the official code
    torch = "torch"   # PyTorch's default (reset_parameters of every linear and convolution layer)


@dataclass(frozen=True)
class ImageOptions:
    """What `wgan train` needs besides TrainConfig and RunOptions. None means 'the preset's value, else the
    architecture's default'."""

    dataset: str | None = None
    data_dir: str | None = None   # None: $WGAN_DATA_DIR, else ./data
    arch: str | None = None
    dim: int | None = None
    size: int | None = None
    arch_seed: int | None = None   # --arch random: which Table 1 architecture (default 0)
    train_images: int | None = None   # train on the first N training images only (Section 5.6); None: all
    variant: str = "default"
    critic_norm: str | None = None
    init: str | None = None    # "tflib" | "torch"; None: tflib (models/init.py; docs/train-fashion-mnist.md)
    dequantize: bool | None = None
    sample_every: int = 1000
    eval_every: int = 1000
    n_val: int = 1000          # validation images per Wasserstein estimate
    eval_metrics: str = ""     # in-training scores (e.g. "fid,is") every eval_every iterations; "" = none
    eval_n: int = 10_000       # generated images per in-training score
    eval_ref: str | None = None   # reference for FID/KID; default: the dataset's train split
    workers: int = 4
    strict: bool = False
    download: bool = True
    preset: str | None = None
    val_share: float = 0.05       # share of a set of image files held out for validation (when it has no split)
    memory_budget: float = 4.0    # GiB: a prepared set up to this size is held on the device


IMAGE_DEFAULTS = dict(dataset="cifar10", arch="dcgan")

# The paper's image runs.
IMAGE_PRESETS = {
    # gan_mnist.py: DIM 64, batch 50, Adam 1e-4 (0.5, 0.9), 200k iterations, data in [0, 1]
    "mnist-dcgan": dict(train=dict(batch_size=50, n_critic=5, gp_weight=10.0, lr=1e-4, betas=(0.5, 0.9),
                                   iters=200_000),
                        image=dict(dataset="mnist", arch="dcgan", dim=64, dequantize=False)),
    # gan_cifar.py: DIM 128, batch 64, Adam 1e-4 (0.5, 0.9), 200k iterations
    "cifar10-dcgan": dict(train=dict(batch_size=64, n_critic=5, gp_weight=10.0, lr=1e-4, betas=(0.5, 0.9),
                                     iters=200_000),
                          image=dict(dataset="cifar10", arch="dcgan", dim=128, dequantize=False)),
    # Appendix F: batch 64, G step on 128, n_critic 5, lambda 10, Adam 2e-4 (0, 0.9) decayed linearly, 100k
    "cifar10-resnet": dict(train=dict(batch_size=64, gen_batch_size=128, n_critic=5, gp_weight=10.0, lr=2e-4,
                                      betas=(0.0, 0.9), lr_decay="linear", iters=100_000),
                           image=dict(dataset="cifar10", arch="resnet", dim=128, dequantize=True)),
    # Table 3 "supervised": the same with conditional BN in G and an auxiliary classifier in D
    "cifar10-resnet-cond": dict(train=dict(batch_size=64, gen_batch_size=128, n_critic=5, gp_weight=10.0,
                                           lr=2e-4, betas=(0.0, 0.9), lr_decay="linear", iters=100_000,
                                           conditional=True),
                                image=dict(dataset="cifar10", arch="resnet", dim=128, dequantize=True)),
    # gan_64x64.py: DIM 64, batch 64, Adam 1e-4 (0, 0.9), 200k iterations, LayerNorm in the critic
    "lsun64-resnet": dict(train=dict(batch_size=64, n_critic=5, gp_weight=10.0, lr=1e-4, betas=(0.0, 0.9),
                                     iters=200_000),
                          image=dict(dataset="lsun-bedroom", arch="resnet64", dim=64, critic_norm="layernorm",
                                     dequantize=False)),
}


# ---- `wgan textgen` ------------------------------------------------------------------------------------------

# gan_language.py: batch 64, n_critic 10, lambda 10, Adam 1e-4 (0.5, 0.9), 200,000 generator iterations.
TEXT_PRESET = {"train": dict(gp_weight=10.0, batch_size=64, lr=1e-4, betas=(0.5, 0.9), n_critic=10,
                             iters=200_000)}


@dataclass(frozen=True)
class TextOptions:
    corpus: str = ""                  # a file, a folder of files, or "billion-word"
    output: str | None = None         # -o: also write the final generator checkpoint here
    seq_len: int = 32
    vocab_size: int = 2048            # unk + the 2047 most frequent characters
    max_lines: int | None = 10_000_000   # the official max_n_examples
    split_sentences: bool = False
    heldout: int = 5000               # held-out lines for evaluation (at most a tenth of the corpus)
    dim: int = 512
    eval_every: int = 1000            # JS divergences and a samples/iter-N.txt file
    n_eval: int = 640                 # samples per evaluation, as the paper
    data_dir: str | None = None       # where billion-word is downloaded; None: $WGAN_DATA_DIR, else ./data
