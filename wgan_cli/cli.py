"""The `wgan` command line. One thin function per subcommand: options -> config -> task -> engine; no maths here.
The options themselves (types, defaults, help texts) are declared once in options.py.

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

from wgan_cli import bounds
from wgan_cli.command import (WganGroup, handle_errors, refuse_ignored, rounded, train_command, version_callback,
                              with_config)
from wgan_cli.config import (Device, ImageOptions, Objective, Precision, Resize, RunOptions, TextOptions,
                             ToyDataset, ToyFigure, ToyOptions, TrainConfig, Variant)
from wgan_cli.errors import UsageError
from wgan_cli.options import *  # noqa: F403 (the option aliases, each declared once)

app = typer.Typer(
    name="wgan",
    cls=WganGroup,
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
def toy(
    ctx: typer.Context, dataset: ToyDatasetOpt = ToyDataset.eight, objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None, gp_weight: LambdaOpt = None, n_critic: NCriticOpt = None, lr: LrOpt = None,
    betas: BetasOpt = None, batch_size: BatchOpt = None, iters: ItersOpt = None, clip_value: ClipOpt = 0.01,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto, out: ToyOutOpt = Path("runs/toy"), resume: ResumeOpt = "auto",
    resume_with_changes: ResumeChangesOpt = False, dim: ToyDimOpt = 512, depth: ToyDepthOpt = 3,
    fixed_generator: FixedGeneratorOpt = False,
    figure: FigureOpt = None, plot_every: PlotEveryOpt = 500, save_every: SaveEveryOpt = 1000,
    log_every: LogEveryOpt = 100, tensorboard: TensorBoardOpt = False, config: ConfigOpt = None,
    dry_run: DryRunOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None, debug: DebugOpt = False,
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

    cfg = TrainConfig(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                      betas=betas, batch_size=batch_size, iters=iters, clip_value=clip_value, seed=seed)
    run = RunOptions(out=str(out), device=device, resume=resume, log_every=log_every, save_every=save_every,
                     tensorboard=tensorboard, resume_with_changes=resume_with_changes)
    opts = ToyOptions(dataset=dataset, dim=dim, depth=depth, fixed_generator=fixed_generator, plot_every=plot_every)
    cfg, run, opts = with_config(ctx, config, "toy", "toy", cfg, run, opts)
    task = toy_mod.ToyTask(opts)
    if figure is None:
        train_command(task, cfg, run, dry_run=dry_run, quiet=quiet, plain=plain)
        return
    if run.tensorboard:
        raise UsageError("--tensorboard logs a training run; --figure makes a figure", "drop one of the two")
    refuse_ignored(ctx, f"--figure {figure}", toy_mod.FIGURE_IGNORES[figure])
    bounds.check_training(cfg)
    if dry_run:
        typer.echo(json.dumps({"figure": figure, **task.record(task.resolve(cfg), run)}, indent=2))
        return
    sinks = terminal_sinks(quiet, plain)
    if figure == ToyFigure.value_surface:
        path = toy_mod.figure_value_surfaces(out / "figure1a-value-surfaces.png", cfg, iters=iters or 500,
                                             device=device, sinks=sinks)
    else:
        path, curves = toy_mod.figure_gradnorms(out / "figure1b-gradnorms.png", cfg, iters=iters or 200,
                                                device=device, sinks=sinks)
        for label, norms in curves.items():
            typer.echo(f"{label:28s} layer 1: {norms[0]:.3g}  layer {len(norms)}: {norms[-1]:.3g}")
    typer.echo(f"wrote {path}")


@app.command()
@handle_errors
def sample(
    ckpt: CkptArg, n: SampleNOpt = 64, out: SampleOutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = Device.cpu,
    ema: EmaOpt = False, label: ClassOpt = None, interpolate: InterpolateOpt = False, fps: FpsOpt = 16.0,
    debug: DebugOpt = False,
):
    """Draw samples from a checkpoint; the model is rebuilt from the checkpoint's metadata.

    Examples:

      wgan sample runs/toy/generator.safetensors -n 1000 -o points.csv

      wgan sample runs/cifar/generator.safetensors -n 64 -o grid.png

      wgan sample runs/cifar/generator.safetensors -n 50000 -o samples.npz

      wgan sample runs/cifar-cond/generator.safetensors -n 64 --class 3 -o cats/

      wgan sample runs/cifar/generator.safetensors --interpolate -n 96 -o walk.gif
    """
    from wgan_cli.engine import pick_device
    from wgan_cli.sample import sample_command

    notes: list = []
    summary = sample_command(ckpt, n, out, seed, pick_device(device), ema=ema, label=label, interpolate=interpolate,
                             fps=fps, notes=notes)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(summary)


@app.command()
@handle_errors
def train(
    ctx: typer.Context, dataset: DatasetOpt = None, data_dir: DataDirOpt = None, preset: PresetOpt = None,
    arch: ArchOpt = None, arch_seed: ArchSeedOpt = None, dim: DimOpt = None, size: SizeOpt = None,
    variant: VariantOpt = Variant.default, critic_norm: CriticNormOpt = None, init: InitOpt = None,
    conditional: ConditionalOpt = None, objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None, gp_weight: LambdaOpt = None, n_critic: NCriticOpt = None, lr: LrOpt = None,
    optimizer: OptimizerOpt = None, betas: BetasOpt = None, lr_decay: LrDecayOpt = None, batch_size: BatchOpt = None,
    gen_batch_size: GenBatchOpt = None, iters: ItersOpt = None, clip_value: ClipOpt = 0.01,
    ema_decay: EmaDecayOpt = None, dequantize: DequantizeOpt = None, precision: PrecisionOpt = Precision.fp32,
    seed: SeedOpt = 0, device: DeviceOpt = Device.auto, out: TrainOutOpt = Path("runs/train"),
    resume: ResumeOpt = "auto", resume_with_changes: ResumeChangesOpt = False, log_every: LogEveryOpt = 100,
    save_every: SaveEveryOpt = 1000, sample_every: SampleEveryOpt = 1000, eval_every: EvalEveryOpt = 1000,
    n_val: NValOpt = 1000,
    eval_metrics: EvalMetricsOpt = "", eval_n: EvalNOpt = 10_000, eval_ref: EvalRefOpt = None,
    train_images: TrainImagesOpt = None, workers: WorkersOpt = 4, strict: StrictOpt = False,
    val_share: ValShareOpt = 0.05, memory_budget: MemoryBudgetOpt = 4.0,
    download: DownloadOpt = True, tensorboard: TensorBoardOpt = False, config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False, plain: PlainOpt = None, debug: DebugOpt = False,
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
    from wgan_cli.train import ImageTask
    from wgan_cli.ui import prepare_progress

    cfg = TrainConfig(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                      optimizer=optimizer, betas=betas, batch_size=batch_size, gen_batch_size=gen_batch_size,
                      iters=iters, clip_value=clip_value, seed=seed, ema_decay=ema_decay, precision=precision,
                      lr_decay=lr_decay, conditional=conditional)
    run = RunOptions(out=str(out), device=device, resume=resume, log_every=log_every, save_every=save_every,
                     tensorboard=tensorboard, resume_with_changes=resume_with_changes)
    opts = ImageOptions(dataset=dataset, data_dir=data_dir and str(data_dir), arch=arch, arch_seed=arch_seed,
                        dim=dim, size=size, train_images=train_images, variant=variant, critic_norm=critic_norm,
                        init=init, dequantize=dequantize, sample_every=sample_every, eval_every=eval_every,
                        n_val=n_val, eval_metrics=eval_metrics, eval_n=eval_n, eval_ref=eval_ref, workers=workers,
                        strict=strict, download=download, preset=preset, val_share=val_share,
                        memory_budget=memory_budget)
    cfg, run, opts = with_config(ctx, config, "train", "image", cfg, run, opts)
    task = ImageTask(opts)
    task.progress = prepare_progress(quiet, plain)
    train_command(task, cfg, run, dry_run=dry_run, quiet=quiet, plain=plain)


@app.command()
@handle_errors
def prepare(
    src: PrepareSrcArg, out: PrepareOutOpt, size: PrepareSizeOpt = 64, fit: FitOpt = "crop",
    background: BackgroundOpt = "white", channels: ChannelsOpt = "auto", workers: PrepareWorkersOpt = None,
    strict: StrictOpt = False, as_json: JsonOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None,
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
def score(
    input: ScoreInputArg = None, ref: RefOpt = None, metrics: MetricsOpt = None, n: ScoreNOpt = 50_000,
    splits: SplitsOpt = 10, batch_size: ScoreBatchOpt = 50, device: DeviceOpt = Device.auto, seed: SeedOpt = 0,
    weights: WeightsOpt = None, save_stats: SaveStatsOpt = None, ema: EmaOpt = False,
    kid_subsets: KidSubsetsOpt = 100, kid_subset_size: KidSubsetSizeOpt = 1000, data_dir: DataDirOpt = None,
    resize: ResizeOpt = Resize.tf1, repeats: RepeatsOpt = 1,
    as_json: JsonOpt = False, quiet: QuietOpt = False, dry_run: DryRunOpt = False, debug: DebugOpt = False,
):
    """Inception Score, FID and KID, computed as torch-fidelity computes them (TF-2015 Inception weights), and
    precision/recall and density/coverage on the same network's pool3 features.

    Progress goes to stderr; the result to stdout (--json for machine-readable output).

    Examples:

      wgan score runs/fm/generator.safetensors --ref fashion-mnist:train --n 1000

      wgan score samples.npz --ref fashion-mnist:test --metrics fid,kid --json

      wgan score --ref fashion-mnist:train --save-stats fm-train.safetensors

      wgan score runs/fm/generator.safetensors --ref fashion-mnist:train --n 1000 --metrics fid,pr,dc --repeats 3
    """
    from wgan_cli import score as score_mod
    from wgan_cli.torchrun import main_process
    from wgan_cli.ui import plain_progress

    req = score_mod.ScoreRequest(input=input, ref=ref, metrics=metrics, n=n, splits=splits, batch_size=batch_size,
                                 device=device, seed=seed, weights=weights and str(weights),
                                 save_stats=save_stats and str(save_stats), ema=ema, kid_subsets=kid_subsets,
                                 kid_subset_size=kid_subset_size, data_dir=data_dir and str(data_dir),
                                 resize=resize.value, repeats=repeats)
    if dry_run:
        score_mod.validate(req)
        typer.echo(json.dumps({"score": dataclasses.asdict(req)}, indent=2))
        return
    rank0 = main_process()   # under torchrun every rank scores its share; rank 0 reports
    say = None if quiet or not rank0 else lambda text: typer.echo(f"note: {text}", err=True)
    result = score_mod.score(req, progress=None if quiet or not rank0 else plain_progress(), note=say)
    if not rank0:
        return
    if as_json:   # JSON has no NaN or infinity: such a value is reported as null
        from wgan_cli.outputs import json_safe

        result, replaced = json_safe(result)
        if replaced and say:
            say(f"{', '.join(replaced)} not finite; reported as null")
    typer.echo(json.dumps(result, allow_nan=False) if as_json else score_mod.format_result(result))


@app.command()
@handle_errors
def textgen(
    ctx: typer.Context, corpus: CorpusOpt = None, ckpt: TextCkptOpt = None, out: TextOutOpt = None,
    output: TextOutputOpt = None, n: LinesOpt = 20, eval_file: EvalFileOpt = None, seq_len: SeqLenOpt = 32,
    vocab_size: VocabOpt = 2048, max_lines: MaxLinesOpt = 10_000_000, split_sentences: SplitSentencesOpt = False,
    heldout: HeldoutOpt = 5000,
    dim: TextDimOpt = 512, data_dir: DataDirOpt = None, objective: ObjectiveOpt = Objective.wgan,
    penalty: PenaltyOpt = None, gp_weight: LambdaOpt = None, n_critic: NCriticOpt = None, lr: LrOpt = None,
    betas: BetasOpt = None, batch_size: BatchOpt = None, iters: ItersOpt = None, clip_value: ClipOpt = 0.01,
    seed: SeedOpt = 0, device: DeviceOpt = Device.auto, resume: ResumeOpt = "auto",
    resume_with_changes: ResumeChangesOpt = False, eval_every: TextEvalEveryOpt = 1000,
    save_every: SaveEveryOpt = 1000, log_every: LogEveryOpt = 100, tensorboard: TensorBoardOpt = False,
    config: ConfigOpt = None, dry_run: DryRunOpt = False, quiet: QuietOpt = False, plain: PlainOpt = None,
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

      wgan textgen --config runs/lm/options.json --iters 4000 --out runs/lm-longer
    """
    if ckpt is not None and config is not None:
        raise UsageError("--config sets training options; generating with --ckpt takes none",
                         "wgan textgen --config runs/lm/options.json   or   wgan textgen --ckpt lm.safetensors")
    if (corpus is None and config is None) == (ckpt is None):
        raise UsageError("give exactly one of --corpus (train) and --ckpt (generate)",
                         "wgan textgen --corpus sentences.txt   or   wgan textgen --ckpt lm.safetensors")
    if ckpt is not None and dry_run:
        typer.echo(json.dumps({"textgen": {"ckpt": str(ckpt), "n": n, "seed": seed, "device": device,
                                           "out": out and str(out), "eval": eval_file and str(eval_file)}},
                              indent=2))
        return
    if ckpt is not None:
        from wgan_cli.engine import pick_device
        from wgan_cli.textgen import generate_command

        notes: list = []
        text, metrics = generate_command(ckpt, n, seed, pick_device(device), eval_file, out, notes)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(text)
        if metrics:
            typer.echo(json.dumps(rounded(metrics)))
        return
    from wgan_cli.textgen import TextTask

    cfg = TrainConfig(objective=objective, penalty=penalty, gp_weight=gp_weight, n_critic=n_critic, lr=lr,
                      betas=betas, batch_size=batch_size, iters=iters, clip_value=clip_value, seed=seed)
    run = RunOptions(out=str(out or "runs/textgen"), device=device, resume=resume, log_every=log_every,
                     save_every=save_every, tensorboard=tensorboard, resume_with_changes=resume_with_changes)
    opts = TextOptions(corpus=corpus or "", output=output and str(output), seq_len=seq_len, vocab_size=vocab_size,
                       max_lines=max_lines, split_sentences=split_sentences, heldout=heldout, dim=dim,
                       eval_every=eval_every, data_dir=data_dir and str(data_dir))
    cfg, run, opts = with_config(ctx, config, "textgen", "textgen", cfg, run, opts)
    train_command(TextTask(opts), cfg, run, dry_run=dry_run, quiet=quiet, plain=plain, generator=opts.output)


@app.command()
@handle_errors
def report(
    runs: ReportRunsArg, out: ReportOutOpt = Path("report"), table2: Table2Opt = None,
    thresholds: ThresholdsOpt = None, below: BelowOpt = None, as_json: JsonOpt = False, debug: DebugOpt = False,
):
    """Compare runs: curves against iterations and wall-clock time, metrics, a summary table, sample GIFs and
    one self-contained index.html; with --table2, the paper's Table 2 over a sweep of random architectures.

    Examples:

      wgan report runs/toy-gp runs/toy-clip -o reports/toy

      wgan report runs/random-architectures/* -o reports/table2 --table2 is --thresholds 1 3 5 7 9
    """
    from wgan_cli.report import make_report, table2_markdown

    result = make_report(runs, out, table2=table2, thresholds=thresholds, below=below)
    if as_json:
        typer.echo(json.dumps(result, allow_nan=False))
        return
    if result["table2"] is not None:
        typer.echo(table2_markdown(result["table2"]))
    for name in result["files"]:
        typer.echo(f"wrote {out / name}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
