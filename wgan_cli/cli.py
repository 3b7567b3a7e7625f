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
         "[default: gp for wgan, none for the baselines]", show_default=False)]
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
                                                  "Rich display. [default: Rich on a terminal]", show_default=False)]
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
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .csv/.npy for toy points.")] = Path("samples.csv"),
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.cpu,
    ema: Annotated[bool, typer.Option("--ema", help="Use the EMA generator, where the run kept one.")] = False,
    debug: DebugOpt = False,
):
    """Draw samples from a checkpoint; the model is rebuilt from the checkpoint's metadata.

    Examples:

      wgan sample runs/toy/generator.safetensors -n 1000 -o points.csv

      wgan sample runs/toy/generator.safetensors -n 1000 -o points.npy
    """
    from wgan_cli.engine import pick_device
    from wgan_cli.sample import sample_command

    typer.echo(sample_command(ckpt, n, out, seed, pick_device(device.value), ema=ema))


# ---- commands that arrive in their own issues -------------------------------------------------------------
def _not_yet(name: str):
    raise UsageError(f"`wgan {name}` is not implemented in this version", "see the README for what is available")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def train(debug: DebugOpt = False):
    """Train an image GAN (not available yet).

    Example: wgan train --dataset cifar10 --penalty gp --lambda 10
    """
    _not_yet("train")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def score(debug: DebugOpt = False):
    """Inception Score, FID and KID (not available yet).

    Example: wgan score runs/cifar/generator.safetensors --ref cifar10:train
    """
    _not_yet("score")


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
