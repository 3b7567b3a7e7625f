"""`wgan textgen`: the character-level language GAN of Section 5.5 (gan_language.py) on the shared engine.

TextTask (training, on the run skeleton of runs.train_run) reads a corpus, builds the character map (stored in
every checkpoint), trains the 1-D ResNets and evaluates the JS divergence of the n-gram distributions of argmax
samples against held-out lines. Generation rebuilds the generator and its character map from a checkpoint alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from wgan_cli import bounds, checkpoint, models, outputs
from wgan_cli.config import TEXT_PRESET, RunOptions, TextOptions, TrainConfig, resolve_train
from wgan_cli.data.text import PAD, CharMap, TextSampler, fetch_billion_word, read_lines
from wgan_cli.engine import Callback, Engine
from wgan_cli.errors import CheckpointError, DataError, UsageError
from wgan_cli.events import Artifact, Evaluated, Note, Saved
from wgan_cli.metrics.ngrams import distributions, js_report
from wgan_cli.rundir import RunDir, generator_state
from wgan_cli.runs import Plan, Task
from wgan_cli.ui import LastValues

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
    path = fetch_billion_word(opts.data_dir) if opts.corpus == "billion-word" else Path(opts.corpus)
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
def sample_indices(G, n: int, gen: torch.Generator) -> torch.Tensor:
    """n argmax-decoded sequences (n, T) int64 on the CPU; no sampling from the softmax, as the paper."""
    probs, _ = models.draw(G, n, gen, chunk=1024)
    return probs.argmax(-1).cpu()


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
        idx = sample_indices(G, self.n_eval, torch.Generator(device=self.device).manual_seed(EVAL_SEED))
        return js_report(idx, self.reference, self.base), idx


def check_ckpt_suffix(path: Path) -> None:
    """-o must be a .safetensors path (checked before the corpus is read)."""
    checkpoint.refuse_pickle(path)
    if path.suffix.lower() != ".safetensors":
        raise UsageError(f"-o {path}: checkpoints are .safetensors files", "e.g. -o lm.safetensors")


# ---- training ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextData:
    corpus: Corpus
    evaluator: TextEvaluator


class TextTask(Task):
    """`wgan textgen --corpus`: the language GAN on a corpus."""

    name = "text"

    def same(self, plan: Plan, data: TextData | None) -> tuple[str, ...]:   # the vocabulary: no data needed
        return ("vocab",)

    def plan(self, cfg: TrainConfig, run: RunOptions) -> Plan:
        opts = self.opts
        model = {"arch": "text-resnet", "dim": opts.dim, "seq_len": opts.seq_len,
                 "vocab_size": f"at most {opts.vocab_size}, from the corpus"}
        return Plan("textgen", "textgen", resolve_train(cfg, TEXT_PRESET), run, opts,
                    description=f"textgen dim {opts.dim}", model=model,
                    data={"corpus": opts.corpus, "max_lines": opts.max_lines, "heldout": opts.heldout,
                          "data_dir": opts.data_dir})

    def prepare(self, plan: Plan, device) -> TextData:
        opts, cfg = plan.opts, plan.cfg
        if opts.output:
            check_ckpt_suffix(Path(opts.output))
        corpus = load_corpus(opts)
        if opts.output:   # before training: writable, and replacing no checkpoint but one of this model and data
            extra = text_extra(corpus.charmap, opts, corpus.source)
            same = {k: extra[k] for k in self.same(plan, None)}
            outputs.check_output(opts.output, "-o", self.inputs(plan),
                                 checkpoint={"task": self.name, "model": model_spec(opts, corpus.charmap),
                                             "same": same})
        if len(corpus.train) < cfg.batch_size:
            raise DataError(f"{corpus.source}: {len(corpus.train)} training lines, fewer than one batch "
                            f"({cfg.batch_size})", "use a smaller --batch-size or a larger corpus")
        return TextData(corpus, TextEvaluator(corpus, opts.n_eval, device))

    def data_json(self, plan: Plan, data: TextData) -> dict:
        c = data.corpus
        return {"corpus_lines": {"train": len(c.train), "heldout": len(c.heldout)}, "vocab_size": len(c.charmap)}

    def spec(self, plan: Plan, data: TextData) -> dict:
        return model_spec(plan.opts, data.corpus.charmap)

    def extra(self, plan: Plan, data: TextData) -> dict:
        return text_extra(data.corpus.charmap, plan.opts, data.corpus.source)

    def inputs(self, plan: Plan) -> dict:
        return {"--corpus": plan.opts.corpus}

    def build(self, plan: Plan, data: TextData, device) -> Engine:
        G, D = models.build_seeded(self.spec(plan, data), plan.cfg.seed)
        sampler = TextSampler(data.corpus.train, len(data.corpus.charmap), device)
        return Engine(G, D, sampler, plan.cfg, device)

    def notes(self, plan: Plan, data: TextData):
        c = data.corpus
        yield Note(f"corpus {c.source}: {len(c.train)} training lines, {len(c.heldout)} held out, "
                   f"{len(c.charmap)} characters")

    @staticmethod
    def evaluate(data: TextData, engine: Engine, samples: Path):
        metrics, idx = data.evaluator(engine.G)
        path = outputs.write_lines(samples / f"iter-{engine.step:07d}.txt", data.corpus.charmap.decode(idx))
        yield Evaluated(engine.step, metrics)
        yield Artifact(engine.step, str(path), "text")

    def callbacks(self, plan: Plan, data: TextData, engine: Engine, run_dir: RunDir) -> list[Callback]:
        samples = run_dir.path / "samples"
        return [Callback(lambda engine, final: self.evaluate(data, engine, samples), every=plan.opts.eval_every)]

    def start(self, plan: Plan, data: TextData, engine: Engine):
        if engine.step == 0:   # a fresh run: the floor and the untrained generator's numbers, logged once
            baseline = data.evaluator.baseline()
            for event in self.evaluate(data, engine, Path(plan.run.out) / "samples"):
                yield Evaluated(0, {**event.metrics, **baseline}) if isinstance(event, Evaluated) else event

    def finish(self, plan: Plan, data: TextData, engine: Engine):
        if plan.opts.output:
            path = checkpoint.save(plan.opts.output, generator_state(engine.G), kind="generator", task=self.name,
                                   model=self.spec(plan, data), train=plan.cfg.to_json(), step=engine.step,
                                   extra=self.extra(plan, data))
            yield Saved(engine.step, str(path), "generator")

    def summary(self, plan: Plan, data: TextData, engine: Engine, last: LastValues) -> dict:
        """js1..js4 of the final generator (evaluated now when the run had finished earlier) and the floor."""
        metrics = {k: v for k, v in last.metrics.items() if k.startswith("js") and not k.endswith("_real")}
        return {**data.evaluator.baseline(), **(metrics or data.evaluator(engine.G)[0])}


# ---- generation --------------------------------------------------------------------------------------------
def load_text_generator(ckpt: Path, device, sink: Callable[[Note], None] | None = None
                        ) -> tuple[torch.nn.Module, CharMap, dict]:
    """G and its character map from a text checkpoint (train-state or generator); weights mapped to `device`; what
    the user should know about the file goes to `sink` as a Note."""
    notes: list[str] = []
    G, meta = checkpoint.load_generator(ckpt, device=device, task="text", command="wgan textgen --ckpt", notes=notes)
    for text in notes if sink else ():
        sink(Note(text, "warning"))
    vocab = meta.get("extra", {}).get("vocab")
    if not vocab or len(vocab) != meta["model"].get("vocab_size"):
        raise CheckpointError(f"{ckpt}: the checkpoint holds no character map matching its model",
                              "use a checkpoint written by `wgan textgen`")
    return G, CharMap.from_json(vocab), meta


def generate(ckpt: Path, n: int, seed: int, device, eval_file: Path | None = None,
             n_eval: int = 640, sink: Callable[[Note], None] | None = None) -> tuple[list[str], dict | None]:
    """n argmax-decoded lines (padding stripped); with `eval_file`, the JS divergences of max(n, n_eval)
    samples against that text's lines."""
    bounds.check_value("-n", n, bounds.SAMPLES)
    bounds.check_value("--seed", seed, bounds.SEED)
    G, charmap, meta = load_text_generator(ckpt, device, sink)
    reference = None
    if eval_file is not None:   # read the reference before generating: a bad file fails fast
        seq_len = meta["model"]["seq_len"]
        ref_idx = charmap.encode(read_lines(eval_file), seq_len)
        reference = distributions(ref_idx, len(charmap))
    gen = torch.Generator(device=device).manual_seed(seed)
    idx = sample_indices(G, max(n, n_eval) if reference else n, gen)
    lines = charmap.decode(idx[:n])
    if reference is None:
        return lines, None
    metrics = js_report(idx, reference, len(charmap))
    return lines, {**metrics, "samples": len(idx), "reference_lines": len(ref_idx)}


def generate_command(ckpt: Path, n: int, seed: int, device, eval_file: Path | None, out: Path | None,
                     sink: Callable[[Note], None] | None = None) -> tuple[str, dict | None]:
    """`wgan textgen --ckpt`: what to print (the lines, or where they were written) and the --eval metrics."""
    if out is not None:   # refused before the model is loaded
        outputs.check_output(out, "--out", {"--ckpt": ckpt, "--eval": eval_file})
    lines, metrics = generate(ckpt, n, seed, device, eval_file, sink=sink)
    if out is None:
        return "\n".join(lines), metrics
    outputs.write_lines(out, lines, "--out")
    return f"wrote {len(lines)} lines to {out}", metrics
