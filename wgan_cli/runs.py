"""The run skeleton shared by every training command (`toy`, `train`, `textgen`).

`train_run(task, cfg, run, sinks, should_stop)` is the one path of a training command: check the options and
resolve them into a frozen Plan, read the data and build the engine (before anything is created on disk), open
the run directory, resume, record the options, log to metrics.jsonl, wire the checkpoints and the task's
callbacks, run the loop and return the task's summary. A Task (toy.py, image.py, textgen.py) holds only its
options and says what differs: how it resolves them, what it reads and builds, its callbacks and its summary;
every step after the plan receives the plan and the data. `preview` is --dry-run: the plan, nothing read.

The run directory itself (layout, resume, the checkpoint callback) is rundir.py.

Under torchrun every rank runs `train_run` (torchrun.py, distributed.py): each node's first rank reads the data
first, only rank 0 writes (the run directory, metrics.jsonl, outputs, checkpoints), every rank loads the checkpoint
rank 0 picked, and the other ranks run only the collective callbacks (checkpoints, sharded evaluations).
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import torch

from wgan_cli import distributed, fields, outputs, tensorboard, torchrun
from wgan_cli.config import RunOptions, TrainConfig
from wgan_cli.errors import Interrupted
from wgan_cli.engine import Callback, Engine, configure_backends, fit, pick_device
from wgan_cli.events import Note
from wgan_cli.rundir import RunDir, checkpoint_callback, resume_every_rank
from wgan_cli.ui import JsonlSink, LastValues

class StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves at the next step boundary and exits 130 / 143.
    A second SIGINT while saving is ignored only until the save completes: the default handler returns after."""

    def __init__(self):
        self.signum = 0
        self._old = {}
        self._now = ""   # what at_once() is doing

    def __call__(self) -> int:
        return self.signum

    def _handler(self, signum, frame):
        self.signum = signum
        if self._now:
            self._stop_now()

    def _stop_now(self):
        raise Interrupted(self.signum, f"{signal.Signals(self.signum).name} while {self._now}: stopped, nothing "
                          "written", "run the same command again to start it")

    @contextlib.contextmanager
    def at_once(self, doing: str):
        """Within: a signal stops at once (raises Interrupted) instead of at the next step boundary. For work
        before the run exists, which can take hours (preparing a large folder): nothing is lost by stopping it,
        and what it writes is a temporary folder removed on the way out."""
        self._now = doing
        try:
            if self.signum:   # arrived just before
                self._stop_now()
            yield
        finally:
            self._now = ""

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


@dataclass(frozen=True)
class Plan:
    """A run resolved before anything is read or written: every option concrete (presets and the method's
    defaults applied). `--dry-run` prints it; options.json records it with what the data added."""

    command: str          # the CLI command, recorded in options.json
    section: str          # the options.json key of the command's own options
    cfg: TrainConfig
    run: RunOptions
    opts: Any             # the command's own options (ToyOptions, ImageOptions, TextOptions), resolved
    description: str      # the progress line's title
    resolved: dict = field(default_factory=dict)   # facts the options imply, recorded beside them (image: size)
    model: dict = field(default_factory=dict)      # the model, as far as it is known without the data
    data: dict = field(default_factory=dict)       # the data it will read (--dry-run shows it)

    def options_json(self) -> dict:
        return {"command": self.command, self.section: asdict(self.opts), "train": self.cfg.to_json(),
                "run": asdict(self.run), **self.resolved}


class Task:
    """What one training command adds to the run skeleton. A Task holds only its options; `plan` resolves them
    into a frozen Plan (no data read), `prepare` reads the data, and every later step receives both. train_run
    calls: plan -> prepare -> build -> (run directory) -> notes -> resume -> callbacks -> start -> fit ->
    finish -> summary."""

    name = ""       # the checkpoint's task: toy | image | text

    def __init__(self, opts):
        self.opts = opts

    def plan(self, cfg: TrainConfig, run: RunOptions) -> Plan:
        """Fill presets and defaults and check what needs no data."""
        raise NotImplementedError

    def prepare(self, plan: Plan, device: torch.device) -> Any:
        """Read the data and check what needs it, before the run directory is created; returns the data."""
        return None

    def data_json(self, plan: Plan, data) -> dict:
        """What options.json records of the data, beside the plan's options."""
        return {}

    def spec(self, plan: Plan, data) -> dict:
        """The model spec stored in every checkpoint (rebuilds G and D)."""
        raise NotImplementedError

    def same(self, plan: Plan, data) -> tuple[str, ...]:
        """The `extra` keys that identify the data: they must match on resume."""
        return ()

    def extra(self, plan: Plan, data) -> dict:
        """What else a checkpoint stores; its `same` keys must match on resume."""
        return {}

    def inputs(self, plan: Plan) -> dict:
        """The files and folders the run reads (option -> path), which --out must not be."""
        return {}

    def build(self, plan: Plan, data, device: torch.device) -> Engine:
        raise NotImplementedError

    def notes(self, plan: Plan, data) -> Iterable[Note]:
        return ()

    def callbacks(self, plan: Plan, data, engine: Engine, run_dir: RunDir) -> list[Callback]:
        return []

    def start(self, plan: Plan, data, engine: Engine) -> Iterable:
        """Events before the first iteration (e.g. an evaluation of the untrained model)."""
        return ()

    def finish(self, plan: Plan, data, engine: Engine) -> Iterable:
        """Events after the last iteration (e.g. writing an extra output)."""
        return ()

    def summary(self, plan: Plan, data, engine: Engine, last: LastValues) -> dict:
        return {"step": engine.step, **last.stats, **last.metrics}


def plan_run(task: Task, cfg: TrainConfig, run: RunOptions) -> Plan:
    """Check every option (before anything is read or written) and resolve them into the run's plan."""
    fields.check_all(cfg, run, task.opts)
    if run.tensorboard:
        tensorboard.require()   # a missing optional package stops the run before any work
    return task.plan(cfg, run)


def preview(task: Task, cfg: TrainConfig, run: RunOptions) -> dict:
    """What `--dry-run` prints: the plan's options, the model as far as it is known without the data, where the
    data comes from, the device and the number of ranks. Nothing is read, built or written."""
    plan = plan_run(task, cfg, run)
    return {**plan.options_json(), "model": plan.model, "data": plan.data, "device": str(pick_device(run.device)),
            "ranks": torchrun.world_size()}


def _prepare(task: Task, plan: Plan, device: torch.device, should_stop: Callable[[], int]):
    """The task's data; under a StopFlag a signal stops the preparation at once (a large folder takes hours)."""
    if isinstance(should_stop, StopFlag):
        with should_stop.at_once("reading the data, before the run started"):
            return task.prepare(plan, device)
    return task.prepare(plan, device)


def train_run(task: Task, cfg: TrainConfig, run: RunOptions, sinks: Iterable[Callable] = (),
              should_stop: Callable[[], int] = lambda: 0) -> dict:
    """Train (or resume) one run in `run.out`; returns the task's summary (on every rank under torchrun).

    Nothing is written before the options are checked, the data is read and the models are built; then the run
    directory is locked (one writer: rank 0 under torchrun), the leftovers of a killed write are removed, and the
    run starts."""
    plan = plan_run(task, cfg, run)
    cfg = plan.cfg
    outputs.refuse_input(run.out, "--out", task.inputs(plan))   # e.g. the folder the images are read from
    group = torchrun.join(pick_device(run.device), cfg)   # alone, or this rank of a torchrun job
    device = group.device
    configure_backends(cfg.precision, device)
    data = group.per_node(lambda: _prepare(task, plan, device, should_stop))
    engine = task.build(plan, data, device)
    spec = task.spec(plan, data)
    torchrun.attach(group, engine, {"train": cfg.to_json(), "model": spec, "data": same_data(task, plan, data)})
    run_dir = RunDir(run.out)
    same = same_data(task, plan, data)
    if run.resume != "auto" and not run.resume_with_changes:
        # --resume auto compares the run directory's newest checkpoint with the options; with never or a PATH,
        # nothing does: a directory holding another model's or data's checkpoints would see its generator
        # replaced and its train-states pruned
        for path in (run_dir.generator_path, *run_dir.checkpoints()[:1]):
            outputs.refuse_checkpoint(path, "--out", {"task": task.name, "model": spec, "same": same})

    def load() -> list:
        return resume_every_rank(group, engine, run_dir, run.resume, task=task.name, model=spec, same=same,
                                 allow_changes=run.resume_with_changes, train=cfg.to_json())

    resumed = load() if run.resume not in ("auto", "never") else None   # --resume PATH: before anything is made
    with contextlib.ExitStack() as held:
        def open_run_dir():   # rank 0 alone creates the run directory and holds its lock
            run_dir.create()
            held.enter_context(run_dir.lock())

        group.agree(open_run_dir, here=group.is_writer)
        run_dir.check_shared(group)
        return _locked_run(task, plan, data, spec, run_dir, engine, group, sinks, should_stop,
                           resumed if resumed is not None else load)


def same_data(task: Task, plan: Plan, data) -> dict:
    """The checkpoint's `extra` keys that identify the data."""
    extra = task.extra(plan, data)
    return {k: extra[k] for k in task.same(plan, data)}


def _locked_run(task: Task, plan: Plan, data, spec: dict, run_dir: RunDir, engine: Engine, group: distributed.Group,
                sinks: Iterable[Callable], should_stop: Callable[[], int],
                resumed: list | Callable[[], list]) -> dict:
    """`resumed`: the notes of a --resume PATH already loaded, or how to resume from the run directory (read
    now, under its lock)."""
    cfg, run, device = plan.cfg, plan.run, group.device
    last = LastValues()
    jsonl = JsonlSink(run_dir.metrics_path) if group.is_writer else None
    sinks = [*sinks, jsonl, last] if jsonl else [last]
    opened = [jsonl] if jsonl else []   # the sinks writing into the run directory, closed at the end

    def emit(event):
        for sink in sinks:
            sink(event)

    try:
        for note in [*(run_dir.clean() if group.is_writer else ()), *task.notes(plan, data)]:
            emit(note)
        for note in resumed() if callable(resumed) else resumed:
            emit(note)
        if run.tensorboard and group.is_writer:   # opened after resume: a crashed run's tail is dropped
            purge = engine.step + 1 if engine.step else None
            opened.append(tensorboard.TensorBoardSink(run_dir.path / "tensorboard", purge_step=purge))
            sinks.insert(-1, opened[-1])
        options = {**plan.options_json(), **task.data_json(plan, data), "device": str(device), "ranks": group.world}
        group.agree(lambda: run_dir.write_options(options), here=group.is_writer)
        callbacks = [checkpoint_callback(run_dir, task=task.name, model=spec, train=cfg.to_json(),
                                         extra=task.extra(plan, data), every=run.save_every),
                     *task.callbacks(plan, data, engine, run_dir)]
        callbacks = [cb for cb in callbacks if group.is_writer or cb.collective]
        for event in task.start(plan, data, engine) if group.is_writer else ():
            emit(event)
        fit(engine, sinks=sinks, callbacks=callbacks, log_every=run.log_every, should_stop=group.vote(should_stop),
            description=plan.description)
        for event in task.finish(plan, data, engine) if group.is_writer else ():
            emit(event)
        return task.summary(plan, data, engine, last)
    finally:
        for sink in opened:
            sink.close()
