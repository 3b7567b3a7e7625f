"""`wgan textgen`: the character-level language GAN of Section 5.5 (gan_language.py) on the shared engine.

Training reads a corpus, builds the character map (stored in every checkpoint), trains the 1-D ResNets and
evaluates the JS divergence of the n-gram distributions of argmax samples against held-out lines. Generation
rebuilds the generator and its character map from a checkpoint alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from wgan_cli import checkpoint, models
from wgan_cli.config import TEXT_PRESET, TextOptions, TrainConfig, resolve_train
from wgan_cli.data.text import PAD, CharMap, TextSampler, fetch_billion_word, read_lines
from wgan_cli.engine import Callback, Engine, fit, pick_device
from wgan_cli.errors import CheckpointError, DataError, OutputError, UsageError
from wgan_cli.events import Evaluated, Note, Saved
from wgan_cli.metrics.ngrams import distributions, js_report
from wgan_cli.runs import RunDir, checkpoint_callback, resume

SPLIT_SEED = 0      # the held-out split does not depend on --seed: runs with different seeds share it
EVAL_SEED = 1234    # fixed noise for the evaluation samples: comparable over training, never the training RNG
Z_DIM, N_BLOCKS = 128, 5


# ---- data --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    charmap: CharMap
    train: torch.Tensor     # (N, T) int64 indices
    heldout: torch.Tensor   # (H, T)
    source: str


def load_corpus(opts: TextOptions) -> Corpus:
    """Read, map and split the corpus: the vocabulary counts every line, the held-out lines are a fixed draw."""
    if not opts.corpus:
        raise UsageError("no corpus given", "train with --corpus FILE_OR_FOLDER (or billion-word), "
                                            "or generate with --ckpt CKPT")
    path = fetch_billion_word() if opts.corpus == "billion-word" else Path(opts.corpus)
    lines = read_lines(path, max_lines=opts.max_lines, split_sentences=opts.split_sentences)
    if len(lines) < 2:
        raise DataError(f"{path}: only {len(lines)} line; training needs a held-out line and training lines",
                        "give a corpus with one sentence per line (or --split-sentences for running text)")
    charmap = CharMap.from_lines(lines, opts.seq_len, opts.vocab_size)
    idx = charmap.encode(lines, opts.seq_len)
    perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_held = max(1, min(opts.heldout, len(idx) // 10))
    return Corpus(charmap, idx[perm[n_held:]], idx[perm[:n_held]], str(path))


def model_spec(opts: TextOptions, charmap: CharMap) -> dict:
    return {"arch": "text-resnet", "vocab_size": len(charmap), "seq_len": opts.seq_len, "dim": opts.dim,
            "z_dim": Z_DIM, "n_blocks": N_BLOCKS}


def text_extra(charmap: CharMap, opts: TextOptions, source: str) -> dict:
    """What a checkpoint needs besides weights to turn indices back into text."""
    return {"vocab": charmap.to_json(), "seq_len": opts.seq_len, "pad": PAD, "corpus": source}


# ---- sampling and evaluation -------------------------------------------------------------------------------
@torch.no_grad()
def sample_indices(G, n: int, gen: torch.Generator, device, chunk: int = 1024) -> torch.Tensor:
    """n argmax-decoded sequences (n, T) int64 on the CPU; no sampling from the softmax, as the paper."""
    was_training = G.training
    G.eval()
    out = []
    for start in range(0, n, chunk):
        z = torch.randn(min(chunk, n - start), G.z_dim, device=device, generator=gen)
        out.append(G(z).argmax(-1).cpu())
    G.train(was_training)
    return torch.cat(out)


class TextEvaluator:
    """JS divergences (bits) of 640 argmax samples' n-grams (n = 1..4) against the held-out lines', with the
    real-vs-real floor: 640 training lines against the same held-out lines (what a generator that reproduced
    the training distribution exactly would score, with the same sample size)."""

    def __init__(self, corpus: Corpus, n_eval: int, device):
        self.base = len(corpus.charmap)
        self.n_eval, self.device = n_eval, device
        self.reference = distributions(corpus.heldout, self.base)
        self.train = corpus.train

    def baseline(self) -> dict:
        g = torch.Generator().manual_seed(EVAL_SEED)
        rows = torch.randperm(len(self.train), generator=g)[: self.n_eval]
        return js_report(self.train[rows], self.reference, self.base, suffix="_real")

    def __call__(self, G) -> tuple[dict, torch.Tensor]:
        g = torch.Generator(device=self.device).manual_seed(EVAL_SEED)
        idx = sample_indices(G, self.n_eval, g, self.device)
        return js_report(idx, self.reference, self.base), idx


def write_lines(path: Path, lines: list[str]) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}", "choose a writable path") from None
    return path


def check_ckpt_output(path: Path) -> None:
    """-o must be a .safetensors path in a folder that exists or can be made (checked before training)."""
    checkpoint.refuse_pickle(path)
    if path.suffix.lower() != ".safetensors":
        raise UsageError(f"-o {path}: checkpoints are .safetensors files", "e.g. -o lm.safetensors")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {path.parent}: {e.strerror}", "choose a writable -o path") from None


# ---- training ----------------------------------------------------------------------------------------------
def build_engine(opts: TextOptions, cfg: TrainConfig, corpus: Corpus, device) -> Engine:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G, D = models.build(model_spec(opts, corpus.charmap))
    return Engine(G, D, TextSampler(corpus.train, len(corpus.charmap), device), cfg, device)


def check_vocabulary(run: RunDir, charmap: CharMap, mode: str) -> None:
    """A run directory's checkpoints must speak the corpus's vocabulary (the corpus may have changed)."""
    if mode == "never":
        return
    for path in (run.checkpoints() if mode == "auto" else [Path(mode)]):
        try:
            meta = checkpoint.read_meta(path)
        except CheckpointError:
            continue   # resume() skips it with a warning
        vocab = meta.get("extra", {}).get("vocab")
        if meta.get("task") == "text" and vocab is not None and vocab != charmap.to_json():
            raise CheckpointError(f"{path}: trained with a different character map than this corpus gives "
                                  f"({len(vocab)} vs {len(charmap)} entries)",
                                  "resume with the original --corpus and options, or use a new --out directory")
        return


def train_textgen(opts: TextOptions, cfg: TrainConfig, sinks=(), should_stop=lambda: 0) -> dict:
    """Train (or resume) one language GAN in `opts.out`. Returns the final evaluation (js1..js4, js*_real)."""
    cfg = resolve_train(cfg, TEXT_PRESET)
    if opts.output:
        check_ckpt_output(Path(opts.output))
    device = pick_device(opts.device)
    corpus = load_corpus(opts)
    if len(corpus.train) < cfg.batch_size:
        raise DataError(f"{corpus.source}: {len(corpus.train)} training lines, fewer than one batch "
                        f"({cfg.batch_size})", "use a smaller --batch-size or a larger corpus")
    run = RunDir(opts.out).create()
    check_vocabulary(run, corpus.charmap, opts.resume)
    engine = build_engine(opts, cfg, corpus, device)
    spec = model_spec(opts, corpus.charmap)
    extra = text_extra(corpus.charmap, opts, corpus.source)
    evaluator = TextEvaluator(corpus, opts.n_eval, device)
    from wgan_cli.ui import JsonlSink

    jsonl = JsonlSink(run.metrics_path)
    sinks = [*sinks, jsonl]

    def emit(event):
        for s in sinks:
            s(event)

    try:
        for note in resume(engine, run, opts.resume, task="text", model=spec):
            emit(note)
        run.write_options({"command": "textgen", "textgen": dataclasses.asdict(opts), "train": cfg.to_json(),
                           "device": str(device), "corpus_lines": {"train": len(corpus.train),
                                                                   "heldout": len(corpus.heldout)},
                           "vocab_size": len(corpus.charmap)})
        emit(Note(f"corpus {corpus.source}: {len(corpus.train)} training lines, {len(corpus.heldout)} held out, "
                  f"{len(corpus.charmap)} characters"))
        result: dict = {}

        def evaluate(engine: Engine, final: bool):
            metrics, idx = evaluator(engine.G)
            result.update(metrics)
            path = write_lines(run.path / "samples" / f"iter-{engine.step:07d}.txt", corpus.charmap.decode(idx))
            yield Evaluated(engine.step, metrics)
            yield Note(f"samples {path}")

        baseline = evaluator.baseline()   # cheap; returned always, logged once (at the start of a fresh run)
        result.update(baseline)
        if engine.step == 0:   # a fresh run: the floor and the untrained generator's numbers
            for event in evaluate(engine, False):
                emit(Evaluated(0, {**event.metrics, **baseline}) if isinstance(event, Evaluated) else event)
        callbacks = [
            checkpoint_callback(run, task="text", model=spec, train=cfg.to_json(), extra=extra,
                                every=opts.save_every),
            Callback(evaluate, every=opts.eval_every),
        ]
        fit(engine, sinks=sinks, callbacks=callbacks, log_every=opts.log_every, should_stop=should_stop,
            description=f"textgen dim {opts.dim}")
        if "js1" not in result:
            result.update(evaluator(engine.G)[0])   # finished in an earlier run: evaluate what is there
        if opts.output:
            gen = {"G." + k: v for k, v in engine.G.state_dict().items()}
            path = checkpoint.save(opts.output, gen, kind="generator", task="text", model=spec,
                                   train=cfg.to_json(), step=engine.step, extra=extra)
            emit(Saved(engine.step, str(path), "generator"))
        return result
    finally:
        jsonl.close()


# ---- generation --------------------------------------------------------------------------------------------
def load_text_generator(ckpt: Path, device) -> tuple[torch.nn.Module, CharMap, dict]:
    """G and its character map from a text checkpoint (train-state or generator); weights mapped to `device`."""
    from wgan_cli.sample import load_generator

    G, meta = load_generator(ckpt, device=device, task="text", command="wgan textgen --ckpt")
    vocab = meta.get("extra", {}).get("vocab")
    if not vocab or len(vocab) != meta["model"].get("vocab_size"):
        raise CheckpointError(f"{ckpt}: the checkpoint holds no character map matching its model",
                              "use a checkpoint written by `wgan textgen`")
    return G, CharMap.from_json(vocab), meta


def generate(ckpt: Path, n: int, seed: int, device, eval_file: Path | None = None,
             n_eval: int = 640) -> tuple[list[str], dict | None]:
    """n argmax-decoded lines (padding stripped); with `eval_file`, the JS divergences of max(n, n_eval)
    samples against that text's lines."""
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})", "e.g. -n 20")
    G, charmap, meta = load_text_generator(ckpt, device)
    reference = None
    if eval_file is not None:   # read the reference before generating: a bad file fails fast
        seq_len = meta["model"]["seq_len"]
        ref_idx = charmap.encode(read_lines(eval_file), seq_len)
        reference = distributions(ref_idx, len(charmap))
    gen = torch.Generator(device=device).manual_seed(seed)
    idx = sample_indices(G, max(n, n_eval) if reference else n, gen, device)
    lines = charmap.decode(idx[:n])
    if reference is None:
        return lines, None
    metrics = js_report(idx, reference, len(charmap))
    return lines, {**metrics, "samples": len(idx), "reference_lines": len(ref_idx)}
