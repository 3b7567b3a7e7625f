"""The run skeleton shared by every training command (`toy`, `train`, `textgen`).

`train_run(task, cfg, run, sinks, should_stop)` is the one path of a training command: resolve the options,
read the data (before anything is created on disk), open the run directory, build the engine, resume, record
the options, log to metrics.jsonl, wire the checkpoints and the task's callbacks, run the loop and return the
task's summary. A Task (toy.py, train.py, textgen.py) says only what differs: what it builds, its callbacks and
its summary.

The run directory itself (layout, resume, the checkpoint callback) is rundir.py.

Under torchrun every rank runs `train_run` (torchrun.py, distributed.py): each node's first rank reads the data first, only
rank 0 writes (the run directory, metrics.jsonl, outputs, checkpoints), every rank loads the checkpoint rank 0
picked, and the other ranks run only the collective callbacks (checkpoints, sharded evaluations).
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import asdict
from typing import Callable, Iterable

import torch

from wgan_cli import distributed, fields, tensorboard, torchrun
from wgan_cli.config import RunOptions, TrainConfig
from wgan_cli.engine import Callback, Engine, configure_backends, fit, pick_device
from wgan_cli.events import Note
from wgan_cli.rundir import RunDir, checkpoint_callback, resume
from wgan_cli.ui import JsonlSink, LastValues

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
    fields.check_all(cfg, run, task.opts)
    if run.tensorboard:
        tensorboard.require()   # a missing optional package stops the run before any work
    cfg = task.resolve(cfg)
    group = torchrun.join(pick_device(run.device), cfg)   # alone, or this rank of a torchrun job
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
