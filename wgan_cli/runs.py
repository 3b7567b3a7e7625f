"""The run skeleton shared by every training command (`toy`, `train`, `textgen`), and run directories.

`train_run(task, cfg, run, sinks, should_stop)` is the one path of a training command: resolve the options,
read the data (before anything is created on disk), open the run directory, build the engine, resume, record
the options, log to metrics.jsonl, wire the checkpoints and the task's callbacks, run the loop and return the
task's summary. A Task (toy.py, train.py, textgen.py) says only what differs: what it builds, its callbacks and
its summary.

A run directory holds:
  options.json                     the resolved options of the command (appended to on resume: options.N.json)
  metrics.jsonl                    one JSON object per logging interval, evaluation and save
  ckpt-0001000.safetensors         train-state checkpoints (G, D, optimisers, RNG, data cursor); newest kept
  generator.safetensors            generator-only checkpoint of the newest state (for `sample`, `score`)
  .lock                            held by the run that writes here (locking.py): one writer per directory
Resume: `--resume auto` (default) continues from the newest train-state checkpoint that loads and verifies,
skipping damaged ones with a warning; `--resume never` refuses a directory that already holds checkpoints
(nothing already written is overwritten); `--resume PATH` starts from that checkpoint. A checkpoint of another
model or other data is refused with the difference shown, unless `--resume-with-changes` is given (the weights
must still fit the model).

Under torchrun every rank runs `train_run` (distributed.py): each node's first rank reads the data first, only
rank 0 writes (the run directory, metrics.jsonl, outputs, checkpoints), every rank loads the checkpoint rank 0
picked, and the other ranks run only the collective callbacks (checkpoints, sharded evaluations).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable

import torch

from wgan_cli import bounds, checkpoint, distributed, files, tensorboard
from wgan_cli.config import RunOptions, TrainConfig
from wgan_cli.engine import Callback, Engine, configure_backends, fit, pick_device
from wgan_cli.errors import CheckpointError, OutputError, UsageError
from wgan_cli.events import Note, Saved
from wgan_cli.locking import RunLock
from wgan_cli.ui import JsonlSink, LastValues

CKPT_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def create(self) -> "RunDir":
        """Make the folder; whether it can be written is found by taking its lock (`lock`)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create run directory {self.path}: {e.strerror or e}",
                              "choose a writable --out") from None
        if not self.path.is_dir():
            raise OutputError(f"cannot create run directory {self.path}: a file of that name exists",
                              "choose another --out")
        return self

    def lock(self) -> RunLock:
        """The run directory's exclusive lock, taken by `with run_dir.lock():` (LockedError naming the owner if
        another run holds it)."""
        return RunLock(self.path)

    def clean(self) -> list[Note]:
        """Remove the temporary files of a write that a killed process left (only ours, by name)."""
        removed = files.clean_temporaries(self.path, ("samples", "figures"))
        if not removed:
            return []
        names = ", ".join(str(p.relative_to(self.path)) for p in removed[:5]) + (" ..." if len(removed) > 5 else "")
        return [Note(f"removed {len(removed)} temporary file(s) left by an interrupted write: {names}")]

    def ckpt_path(self, step: int) -> Path:
        return self.path / f"ckpt-{step:07d}.safetensors"

    @property
    def generator_path(self) -> Path:
        return self.path / "generator.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoints(self) -> list[Path]:
        """Train-state checkpoints, newest first."""
        if not self.path.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := CKPT_RE.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def write_options(self, options: dict) -> Path:
        target = self.path / "options.json"
        n = 1
        while target.exists():   # a resumed run keeps the first options and adds its own
            n += 1
            target = self.path / f"options.{n}.json"
        return files.write_text(target, json.dumps(options, indent=2, sort_keys=True, default=str) + "\n")


def resume(engine: Engine, run: RunDir, mode: str, *, task: str, model: dict, same: dict | None = None,
           allow_changes: bool = False, train: dict | None = None) -> list:
    """Load the state to resume from into `engine`; returns Note events to show.

    The checkpoint must hold the same model spec, and the same values of `same` in its "extra" metadata (what
    identifies the data, e.g. the character map of a text run). With `allow_changes` a difference in either is
    shown and accepted, as long as the checkpoint's weights load into the model the options build. Changed
    training options (`train`, e.g. more --iters) are shown as a note."""
    notes = []
    if mode == "never":
        if run.checkpoints():
            raise UsageError(f"{run.path} already holds checkpoints and --resume never was given",
                             "use --resume auto to continue that run, or a new --out directory")
        return notes
    if mode == "auto":
        candidates = run.checkpoints()
    else:
        candidates = [Path(mode)]
    for path in candidates:
        try:
            tensors, meta = checkpoint.load(path, kind="train-state", task=task, command="--resume")
        except CheckpointError as e:
            if mode != "auto":
                raise
            notes.append(Note(f"skipping damaged checkpoint: {e.message}", "warning"))
            continue
        override = "; or add --resume-with-changes to continue from this state anyway"
        if meta["model"] != model:
            what = f"a different model ({meta['model'].get('arch')}, {_diff(meta['model'], model)})"
            if not allow_changes:
                raise CheckpointError(f"{path}: holds {what} than the options ask for",
                                      "use a new --out directory, or the original options" + override)
            notes.append(Note(f"--resume-with-changes: {path} holds {what}", "warning"))
        extra = meta.get("extra", {})
        changed = {k: v for k, v in (same or {}).items() if extra.get(k) != v}
        if changed:
            what = f"different data than the options give ({_diff({k: extra.get(k) for k in changed}, changed)})"
            if not allow_changes:
                raise CheckpointError(f"{path}: trained on {what}",
                                      "resume with the original options, or use a new --out directory" + override)
            notes.append(Note(f"--resume-with-changes: {path} was trained on {what}", "warning"))
        try:
            engine.load_state_tensors(tensors, meta["step"])
        except (RuntimeError, KeyError, ValueError) as e:   # only with changes allowed: weights of another shape
            raise CheckpointError(f"{path}: its weights do not fit the model the options build "
                                  f"({str(e).strip().splitlines()[0]})",
                                  "resume with the checkpoint's model options, or use a new --out directory") from None
        if train:
            changed_train = {k: v for k, v in train.items() if k in meta["train"] and meta["train"][k] != v}
            if changed_train:
                notes.append(Note("options changed since the checkpoint (checkpoint's vs now): "
                                  + _diff({k: meta["train"][k] for k in changed_train}, changed_train)))
        notes.append(Note(f"resumed from {path} at iteration {meta['step']}"))
        return notes
    return notes


def _diff(a: dict, b: dict) -> str:
    """`key: checkpoint's vs the options'` for each differing key; long lists by their length."""
    def shown(v):
        return f"{len(v)} entries" if isinstance(v, list) and len(v) > 8 else v

    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {shown(a.get(k))} vs {shown(b.get(k))}" for k in keys) or "same keys"


def generator_state(G: torch.nn.Module, G_ema: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a generator-only checkpoint: G (and its EMA copy under `G_ema.`)."""
    state = {"G." + k: v for k, v in G.state_dict().items()}
    if G_ema is not None:
        state.update({"G_ema." + k: v for k, v in G_ema.state_dict().items()})
    return state


def checkpoint_callback(run: RunDir, *, task: str, model: dict, train: dict, extra: dict | None = None,
                        every: int = 1000, keep: int = 3) -> Callback:
    """Save a train-state and a generator-only checkpoint every `every` iterations, at the end and on a signal.
    Old train-states are pruned only after the new one is in place; at least 2 are kept."""
    keep = max(keep, 2)

    def write(engine: Engine):
        step = engine.step
        path = checkpoint.save(run.ckpt_path(step), engine.state_tensors(), kind="train-state", task=task,
                               model=model, train=train, step=step, extra=extra)
        yield Saved(step, str(path), "train-state")
        checkpoint.save(run.generator_path, generator_state(engine.G, engine.G_ema), kind="generator", task=task,
                        model=model, train=train, step=step, extra=extra)
        for old in run.checkpoints()[keep:]:
            old.unlink(missing_ok=True)

    def save(engine: Engine, final: bool):
        group = engine.dist   # under torchrun: replicas compared, rank 0 writes, every rank waits for it
        group.check_replicas(engine)
        yield from group.agree(lambda: list(write(engine)), here=group.is_writer) or ()

    return Callback(save, every=every, on_interrupt=True, collective=True)


class StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves at the next step boundary and exits 130 / 143.
    A second SIGINT while saving is ignored only until the save completes: the default handler returns after."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __call__(self) -> int:
        return self.signum

    def _handler(self, signum, frame):
        self.signum = signum

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:   # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


# ---- the run skeleton ---------------------------------------------------------------------------------------


class Task:
    """What one training command adds to the run skeleton; `train_run` calls these in order:
    resolve -> prepare -> (run directory) -> build -> notes -> resume -> record -> callbacks -> start ->
    fit -> finish -> summary."""

    name = ""       # the checkpoint's task: toy | image | text
    command = ""    # the CLI command, recorded in options.json
    section = ""    # the options.json key of the command's own options

    def __init__(self, opts):
        self.opts = opts

    def resolve(self, cfg: TrainConfig) -> TrainConfig:
        """Fill presets and defaults (self.opts too) and check what needs no data; idempotent."""
        return cfg

    def record(self, cfg: TrainConfig, run: RunOptions) -> dict:
        """options.json (and `--dry-run`): every resolved option."""
        return {"command": self.command, self.section: asdict(self.opts), "train": cfg.to_json(), "run": asdict(run)}

    def prepare(self, cfg: TrainConfig, device: torch.device) -> None:
        """Read the data and check what needs it, before the run directory is created."""

    def build(self, cfg: TrainConfig, device: torch.device) -> Engine:
        raise NotImplementedError

    @property
    def spec(self) -> dict:
        """The model spec stored in every checkpoint (rebuilds G and D)."""
        raise NotImplementedError

    @property
    def extra(self) -> dict:
        """What else a checkpoint stores; its `same` keys must match on resume."""
        return {}

    same: tuple[str, ...] = ()   # the `extra` keys that identify the data

    def data_identity(self) -> dict:
        return {k: self.extra[k] for k in self.same}
    description = ""

    def notes(self) -> Iterable[Note]:
        return ()

    def callbacks(self, engine: Engine, run: RunDir, cfg: TrainConfig, options: RunOptions) -> list[Callback]:
        return []

    def start(self, engine: Engine) -> Iterable:
        """Events before the first iteration (e.g. an evaluation of the untrained model)."""
        return ()

    def finish(self, engine: Engine) -> Iterable:
        """Events after the last iteration (e.g. writing an extra output)."""
        return ()

    def summary(self, engine: Engine, last: LastValues) -> dict:
        return {"step": engine.step, **last.stats, **last.metrics}


def train_run(task: Task, cfg: TrainConfig, run: RunOptions, sinks: Iterable[Callable] = (),
              should_stop: Callable[[], int] = lambda: 0) -> dict:
    """Train (or resume) one run in `run.out`; returns the task's summary (on every rank under torchrun).

    Nothing is written before the options are checked, the data is read and the models are built; then the run
    directory is locked (one writer: rank 0 under torchrun), the leftovers of a killed write are removed, and the
    run starts."""
    bounds.check_training(cfg, run, task.opts)
    if run.tensorboard:
        tensorboard.require()   # a missing optional package stops the run before any work
    cfg = task.resolve(cfg)
    group = distributed.join(pick_device(run.device), cfg)   # alone, or this rank of a torchrun job
    device = group.device
    configure_backends(cfg.precision, device)
    group.per_node(lambda: task.prepare(cfg, device))
    engine = task.build(cfg, device)
    group.attach(engine, {"train": cfg.to_json(), "model": task.spec, "data": task.data_identity()})
    run_dir = RunDir(run.out)
    with contextlib.ExitStack() as held:
        def open_run_dir():   # rank 0 alone creates the run directory and holds its lock
            run_dir.create()
            held.enter_context(run_dir.lock())

        group.agree(open_run_dir, here=group.is_writer)
        group.check_shared(run_dir.path)
        return _locked_run(task, cfg, run, run_dir, engine, group, sinks, should_stop)


def _locked_run(task: Task, cfg: TrainConfig, run: RunOptions, run_dir: RunDir, engine: Engine,
                group: distributed.Group, sinks: Iterable[Callable], should_stop: Callable[[], int]) -> dict:
    device = group.device
    last = LastValues()
    jsonl = JsonlSink(run_dir.metrics_path) if group.is_writer else None
    sinks = [*sinks, jsonl, last] if jsonl else [last]
    opened = [jsonl] if jsonl else []   # the sinks writing into the run directory, closed at the end

    def emit(event):
        for sink in sinks:
            sink(event)

    try:
        for note in [*(run_dir.clean() if group.is_writer else ()), *task.notes()]:
            emit(note)
        def load(mode: str) -> list:
            return resume(engine, run_dir, mode, task=task.name, model=task.spec, same=task.data_identity(),
                          allow_changes=run.resume_with_changes, train=cfg.to_json())

        for note in group.resume(load, run.resume, run_dir.ckpt_path, engine):
            emit(note)
        if run.tensorboard and group.is_writer:   # opened after resume: a crashed run's tail is dropped
            purge = engine.step + 1 if engine.step else None
            opened.append(tensorboard.TensorBoardSink(run_dir.path / "tensorboard", purge_step=purge))
            sinks.insert(-1, opened[-1])
        record = {**task.record(cfg, run), "device": str(device), "ranks": group.world}
        group.agree(lambda: run_dir.write_options(record), here=group.is_writer)
        callbacks = [checkpoint_callback(run_dir, task=task.name, model=task.spec, train=cfg.to_json(),
                                         extra=task.extra, every=run.save_every),
                     *task.callbacks(engine, run_dir, cfg, run)]
        callbacks = [cb for cb in callbacks if group.is_writer or cb.collective]
        for event in task.start(engine) if group.is_writer else ():
            emit(event)
        fit(engine, sinks=sinks, callbacks=callbacks, log_every=run.log_every, should_stop=group.vote(should_stop),
            description=task.description)
        for event in task.finish(engine) if group.is_writer else ():
            emit(event)
        return task.summary(engine, last)
    finally:
        for sink in opened:
            sink.close()
