"""The `wgan` command line. One thin function per subcommand: options -> config -> task -> engine; no maths here.
Each option is declared once: on a record's field (config.py), which `with_records` turns into the command's
parameters, or, for what belongs to one command only, in options.py.

Each command imports its own modules inside the function, on purpose: torch costs seconds to import, and
`wgan --help` or a mistyped option should answer at once.

Errors, the parser's error format and the shared body of the training commands are command.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from wgan_cli import bounds, fields
from wgan_cli.command import (WganGroup, handle_errors, keep_path_bytes, refuse_ignored, rounded, show_plan,
                              train_command, version_callback, with_config)
from wgan_cli.config import (Device, ImageOptions, RunOptions, ScoreRequest, TextOptions, ToyFigure, ToyOptions,
                             TrainConfig)
from wgan_cli.errors import UsageError
from wgan_cli.options import *  # noqa: F403 (the option aliases, each declared once)


class Wgan(WganGroup):
    optional_values = OPTIONAL_VALUES   # `--watch` alone: its default interval


app = typer.Typer(
    name="wgan",
    cls=Wgan,
    help="Train, sample and score Wasserstein GANs with gradient penalty (Gulrajani et al. 2017).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def main_callback(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True,
                                                    help="Show the version and exit.")] = None,
):
    """Train, sample and score Wasserstein GANs with gradient penalty (Gulrajani et al. 2017).

    Start with the toy (no data needed):  wgan toy --dataset 8gaussians --iters 2000 --out runs/toy
    """


@app.command()
@handle_errors
@with_records("toy", opts=ToyOptions, cfg=TrainConfig, run=RunOptions)
def toy(
    ctx: typer.Context, cfg: TrainConfig, run: RunOptions, opts: ToyOptions, out: ToyOutOpt = Path("runs/toy"),
    figure: FigureOpt = None, config: ConfigOpt = None, dry_run: DryRunOpt = False, quiet: QuietOpt = False,
    plain: PlainOpt = None, debug: DebugOpt = False,
):
    """Train on the paper's 2-D toy distributions (gan_toy.py) or make Figure 1.

    Defaults are the paper's: MLPs of 3 x 512 ReLU, lambda 0.1, n_critic 5, batch 256, Adam 1e-4 (0.5, 0.9);
    --penalty clip switches to RMSProp 5e-5 with c = 0.01.

    Examples:

      wgan toy --dataset 8gaussians --iters 2000 --out runs/toy-8g

      wgan toy --dataset swissroll --penalty clip --out runs/toy-clip

      wgan toy --figure value-surface --iters 500 --out runs/figures

      wgan toy --config runs/toy-8g/options.json --seed 1 --out runs/toy-8g-seed1
    """
    from wgan_cli import toy as toy_mod
    from wgan_cli.ui import terminal_sinks

    run = dataclasses.replace(run, out=str(out))
    cfg, run, opts = with_config(ctx, config, "toy", "toy", cfg, run, opts)
    task = toy_mod.ToyTask(opts)
    if figure is None:
        train_command(task, cfg, run, dry_run=dry_run, quiet=quiet, plain=plain)
        return
    if run.tensorboard:
        raise UsageError("--tensorboard logs a training run; --figure makes a figure", "drop one of the two")
    refuse_ignored(ctx, f"--figure {figure}", toy_mod.FIGURE_IGNORES[figure])
    if dry_run:
        show_plan(task, cfg, run, figure=figure)
        return
    fields.check_all(cfg)
    sinks = terminal_sinks(quiet, plain)
    if figure == ToyFigure.value_surface:
        path = toy_mod.figure_value_surfaces(out / "figure1a-value-surfaces.png", cfg, iters=cfg.iters or 500,
                                             device=run.device, sinks=sinks)
    else:
        path, curves = toy_mod.figure_gradnorms(out / "figure1b-gradnorms.png", cfg, iters=cfg.iters or 200,
                                                device=run.device, sinks=sinks)
        for label, norms in curves.items():
            typer.echo(f"{label:28s} layer 1: {norms[0]:.3g}  layer {len(norms)}: {norms[-1]:.3g}")
    typer.echo(f"wrote {path}")


@app.command()
@handle_errors
def sample(
    ctx: typer.Context, ckpt: CkptArg, n: SampleNOpt = 64, out: SampleOutOpt = None, seed: SampleSeedOpt = 0,
    device: SampleDeviceOpt = Device.cpu, ema: EmaOpt = False, label: ClassOpt = None,
    interpolate: InterpolateOpt = False, fps: FpsOpt = 16.0, seeds: SeedsOpt = None, latents: LatentsOpt = None,
    save_latents: SaveLatentsOpt = None, truncation: TruncationOpt = None, show_seeds: ShowSeedsOpt = False,
    debug: DebugOpt = False,
):
    """Draw samples from a checkpoint; the model is rebuilt from the checkpoint's metadata.

    Examples:

      wgan sample runs/toy/generator.safetensors -n 1000 -o points.csv

      wgan sample runs/cifar/generator.safetensors -n 64 -o grid.png

      wgan sample runs/cifar/generator.safetensors -n 50000 -o samples.npz

      wgan sample runs/cifar-cond/generator.safetensors -n 64 --class 3 -o cats/

      wgan sample runs/cifar/generator.safetensors --interpolate -n 96 -o walk.gif

      wgan sample runs/cifar/generator.safetensors --seeds 0-15,200 --truncation 1.0 --show-seeds -o grid.png

      wgan sample runs/cifar/generator.safetensors --seeds 0-99 --save-latents z.npz -o faces/

    More in docs/api.md (the Python API that this command uses).
    """
    from wgan_cli.engine import pick_device
    from wgan_cli.sample import sample_command

    for given, name in ((seeds, "--seeds"), (latents, "--latents")):
        explicit = [f for f, p in (("-n", "n"), ("--seed", "seed")) if given is not None
                    and ctx.get_parameter_source(p).name not in ("DEFAULT", "DEFAULT_MAP")]
        if explicit:
            raise UsageError(f"{name} says which samples to draw; {' and '.join(explicit)} would be ignored",
                             f"drop {' and '.join(explicit)}")
    notes: list = []
    summary = sample_command(ckpt, n, out, seed, pick_device(device), ema=ema, label=label, interpolate=interpolate,
                             fps=fps, notes=notes, seeds=seeds, latents_file=latents, save_latents=save_latents,
                             truncation=truncation, show_seeds=show_seeds)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(summary)


@app.command()
@handle_errors
def export(
    ckpt: CkptArg, out: ExportOutOpt, head: HeadOpt = None, ema: EmaOpt = False, debug: DebugOpt = False,
):
    """Export a checkpoint's generator to ONNX or torch.export (.pt2), checked on the spot against the model.

    Inputs: z (batch, z_dim) float32 ~ N(0, I), and classes (batch,) int64 for a conditional model. The file's
    metadata records the checkpoint's digest and spec. ONNX needs the optional extra: pip install 'wgan-cli\\[export]'.

    Examples:

      wgan export runs/cifar/generator.safetensors -o cifar.onnx --head uint8

      wgan export runs/cifar/generator.safetensors -o cifar.pt2

    More in docs/api.md.
    """
    from wgan_cli import api
    from wgan_cli import export as export_mod

    notes: list = []
    G = api.load(ckpt, ema=ema, device="cpu", notes=notes)
    head = head or "float"
    export_mod.check_request(out, head, G.spec)   # before the slow part
    path, check = export_mod.export(G, out, head)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    inputs = f"z ({G.spec.z_dim},)" + (f" and classes (0..{G.spec.n_classes - 1})" if G.spec.n_classes else "")
    typer.echo(f"wrote {path} ({G.spec.arch}, head {head}, inputs {inputs}); checked: {check.describe(head)}")


@app.command()
@handle_errors
@with_records("train", opts=ImageOptions, cfg=TrainConfig, run=RunOptions)
def train(
    ctx: typer.Context, cfg: TrainConfig, run: RunOptions, opts: ImageOptions, out: TrainOutOpt = Path("runs/train"),
    config: ConfigOpt = None, dry_run: DryRunOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None,
    debug: DebugOpt = False,
):
    """Train an image GAN (WGAN-GP and the paper's baselines) and write a run directory.

    Examples:

      wgan train --dataset cifar10 --penalty gp --lambda 10 --out runs/cifar

      wgan train --preset cifar10-resnet --out runs/cifar-resnet

      wgan train --dataset fashion-mnist --arch dcgan --iters 2000 --out runs/fmnist

      wgan train --dataset folder:~/pictures --arch resnet64 --out runs/pictures

      wgan train --config runs/cifar/options.json --out runs/cifar-again --tensorboard

      wgan train --dataset cifar10 --arch random --arch-seed 7 --objective gan --out runs/random/7-gan
    """
    from wgan_cli.image import ImageTask
    from wgan_cli.ui import prepare_progress

    run = dataclasses.replace(run, out=str(out))
    cfg, run, opts = with_config(ctx, config, "train", "image", cfg, run, opts)
    train_command(ImageTask(opts, progress=prepare_progress(quiet, plain)), cfg, run, dry_run=dry_run, quiet=quiet,
                  plain=plain)


@app.command()
@handle_errors
def prepare(
    src: PrepareSrcArg, out: PrepareOutOpt, size: PrepareSizeOpt = 64, fit: FitOpt = "crop",
    background: BackgroundOpt = "white", channels: ChannelsOpt = "auto", workers: PrepareWorkersOpt = None,
    strict: PrepareStrictOpt = False, as_json: JsonOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None,
    debug: DebugOpt = False,
):
    """Decode a folder of images once into a prepared set that `wgan train --dataset DIR` and `wgan score --ref
    DIR` read at memory speed (`--dataset folder:PATH` does the same into a cache by itself).

    Every file is read once: EXIF orientation applied, every image mode made 8-bit RGB (or grayscale), alpha
    composited on --background, resized (JPEGs decoded at a reduced scale first) and centre-cropped or padded.
    Files that give no image are skipped and listed with the reason.

    Examples:

      wgan prepare ~/pictures -o data/pictures-64 --size 64

      wgan prepare ~/logos -o data/logos-32 --size 32 --fit pad --background black
    """
    from wgan_cli.prepare import prepare_command
    from wgan_cli.ui import prepare_progress

    result = prepare_command(src, out, size=size, fit=fit, background=background, channels=channels,
                             workers=workers, strict=strict, progress=prepare_progress(quiet, plain))
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(result["summary"])


@app.command()
@handle_errors
@with_records("score", req=ScoreRequest)
def score(
    req: ScoreRequest, input: ScoreInputArg = None, as_json: JsonOpt = False, quiet: QuietOpt = False,
    dry_run: DryRunOpt = False, debug: DebugOpt = False,
):
    """Inception Score, FID and KID, computed as torch-fidelity computes them (TF-2015 Inception weights), and
    precision/recall and density/coverage on the same network's pool3 features; --nearest K: each sample's K
    nearest training images (a memorisation check).

    Progress goes to stderr; the result to stdout (--json for machine-readable output).

    Examples:

      wgan score runs/fm/generator.safetensors --ref fashion-mnist:train --n 1000

      wgan score samples.npz --ref fashion-mnist:test --metrics fid,kid --json

      wgan score --ref fashion-mnist:train --save-stats fm-train.safetensors

      wgan score runs/fm/generator.safetensors --ref fashion-mnist:train --n 1000 --metrics fid,pr,dc --repeats 3

      wgan score runs/fm/generator.safetensors --ref fashion-mnist --nearest 5 -o nearest.png
    """
    from wgan_cli import score as score_mod
    from wgan_cli.torchrun import main_process
    from wgan_cli.events import Note
    from wgan_cli.ui import note_lines, plain_progress

    req = dataclasses.replace(req, input=input)
    if dry_run:
        score_mod.validate(req)
        typer.echo(json.dumps({"score": dataclasses.asdict(req)}, indent=2))
        return
    rank0 = main_process()   # under torchrun every rank scores its share; rank 0 reports
    sink = None if quiet or not rank0 else note_lines()
    result = score_mod.score(req, progress=None if quiet or not rank0 else plain_progress(), sink=sink)
    if not rank0:
        return
    if as_json:   # JSON has no NaN or infinity: such a value is reported as null
        from wgan_cli.outputs import json_safe

        result, replaced = json_safe(result)
        if replaced and sink:
            sink(Note(f"{', '.join(replaced)} not finite; reported as null"))
    typer.echo(json.dumps(result, allow_nan=False) if as_json else score_mod.format_result(result))


@app.command()
@handle_errors
@with_records("textgen", opts=TextOptions, cfg=TrainConfig, run=RunOptions)
def textgen(
    ctx: typer.Context, cfg: TrainConfig, run: RunOptions, opts: TextOptions, ckpt: TextCkptOpt = None,
    out: TextOutOpt = None, n: LinesOpt = 20, eval_file: EvalFileOpt = None, config: ConfigOpt = None,
    dry_run: DryRunOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None, debug: DebugOpt = False,
):
    """The character-level language GAN of Section 5.5: train on a corpus, or generate from a checkpoint.

    Defaults are the paper's: 32 characters, 1-D ResNets of width 512, n_critic 10, lambda 10, batch 64,
    Adam 1e-4 (0.5, 0.9), 200,000 iterations. Evaluation: JS divergence (bits) of character 1..4-gram
    distributions of 640 argmax samples against held-out lines, next to the real-vs-real floor.

    Examples:

      wgan textgen --corpus sentences.txt --dim 64 --iters 2000 --out runs/lm -o lm.safetensors

      wgan textgen --corpus billion-word --out runs/billion-word

      wgan textgen --ckpt lm.safetensors -n 20 --seed 1

      wgan textgen --config runs/lm/options.json --iters 4000 --out runs/lm-longer
    """
    if ckpt is not None and config is not None:
        raise UsageError("--config sets training options; generating with --ckpt takes none",
                         "wgan textgen --config runs/lm/options.json   or   wgan textgen --ckpt lm.safetensors")
    if (not opts.corpus and config is None) == (ckpt is None):
        raise UsageError("give exactly one of --corpus (train) and --ckpt (generate)",
                         "wgan textgen --corpus sentences.txt   or   wgan textgen --ckpt lm.safetensors")
    if ckpt is not None and dry_run:
        typer.echo(json.dumps({"textgen": {"ckpt": str(ckpt), "n": n, "seed": cfg.seed, "device": run.device,
                                           "out": out and str(out), "eval": eval_file and str(eval_file)}},
                              indent=2))
        return
    if ckpt is not None:
        from wgan_cli.engine import pick_device
        from wgan_cli.textgen import generate_command
        from wgan_cli.ui import note_lines

        text, metrics = generate_command(ckpt, n, cfg.seed, pick_device(run.device), eval_file, out, note_lines())
        typer.echo(text)
        if metrics:
            typer.echo(json.dumps(rounded(metrics)))
        return
    from wgan_cli.textgen import TextTask

    run = dataclasses.replace(run, out=str(out or "runs/textgen"))
    cfg, run, opts = with_config(ctx, config, "textgen", "textgen", cfg, run, opts)
    train_command(TextTask(opts), cfg, run, dry_run=dry_run, quiet=quiet, plain=plain, generator=opts.output)


@app.command()
@handle_errors
def report(
    runs: ReportRunsArg, out: ReportOutOpt = Path("report"), table2: Table2Opt = None,
    thresholds: ThresholdsOpt = None, below: BelowOpt = None, watch: WatchOpt = None, as_json: JsonOpt = False,
    debug: DebugOpt = False,
):
    """Compare runs: curves against iterations and wall-clock time, metrics, a summary table, sample GIFs and
    one self-contained index.html; with --table2, the paper's Table 2 over a sweep of random architectures.

    Examples:

      wgan report runs/toy-gp runs/toy-clip -o reports/toy

      wgan report runs/random-architectures/* -o reports/table2 --table2 is --thresholds 1 3 5 7 9

      wgan report runs/toy -o reports/live --watch
    """
    from wgan_cli.outputs import refuse_input
    from wgan_cli.report import make_report, table2_markdown

    refuse_input(out, "-o", {f"run directory {run}": run for run in runs})
    bounds.check_value("--watch", watch, WATCH_RANGE)
    say = (lambda line: None) if as_json else typer.echo
    result = make_report(runs, out, table2=table2, thresholds=thresholds, below=below, watch=watch, say=say)
    if watch is not None and not as_json:
        return   # each rewrite has been said
    if as_json:
        typer.echo(json.dumps(result, allow_nan=False))
        return
    if result["table2"] is not None:
        typer.echo(table2_markdown(result["table2"]))
    for name in result["files"]:
        typer.echo(f"wrote {out / name}")


def main() -> None:
    keep_path_bytes()
    app()


if __name__ == "__main__":
    main()
