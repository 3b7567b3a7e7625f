"""The one training loop, shared by `toy`, `train` and `textgen`.

Algorithm 1 of the paper: each generator iteration is `n_critic` critic steps, each on a fresh real batch and
fresh fakes, then one generator step with the critic frozen. The engine never prints and never saves: it emits
events to sinks, and callbacks (checkpoints, figures, evaluation) run at their own cadence.

No host synchronisation inside the loop: noise, interpolation weights and data indices are drawn on the device
from the engine's own torch.Generator, and the step statistics stay on the device until `read_stats` is called
at the logging cadence. The engine holds no global state, so several can live in one process (or one per rank
under torchrun).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from wgan_cli import models
from wgan_cli.augment import ADA_INTERVAL, Augmenter
from wgan_cli.config import TrainConfig
from wgan_cli.distributed import LOCAL
from wgan_cli.errors import DivergedError, Interrupted, UsageError
from wgan_cli.events import RunFinished, RunStarted, StepDone
from wgan_cli.objectives import OBJECTIVES
from wgan_cli.optim import load_optimizer_tensors, make_optimizer, optimizer_tensors  # noqa: F401 (re-exported)
from wgan_cli.penalties import CONSTRAINTS, PENALTIES, PER_SAMPLE, batchnorm_refusal, critic_score, has_batchnorm

STAT_NAMES_D = ("loss_d", "w_dist", "gp")
STAT_NAMES_G = ("loss_g",)


class Sampler(Protocol):
    """Real data on the device: `sample(n, gen)` -> (x, labels or None). Under torchrun a sampler with `reads_rows`
    is also given `shard=` and returns only that rank's rows of the global batch of n (distributed.Group.sample)."""

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("the device cuda was asked for but CUDA is not available", "choose the device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("the device mps was asked for but MPS is not available", "choose the device auto or cpu")
    return torch.device(name)


def configure_backends(precision: str, device: torch.device) -> None:
    """Process-wide math settings for a run (called by the commands, never by the Engine itself).

    fp32: exact float32 matmuls and convolutions; tf32 and bf16: TensorFloat-32 for the float32 parts on CUDA.
    cuDNN autotuning is on for CUDA: the shapes of a GAN loop never change.
    """
    if device.type != "cuda":
        return
    tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


class Engine:
    """Models, optimisers, penalty and RNG of one run; `iteration()` does one generator iteration.

    `channels_last` (default: on CUDA for image data) keeps convolutions in NHWC end to end, which removes the
    layout conversions cuDNN otherwise inserts; it changes no result beyond floating-point reassociation.
    """

    def __init__(self, G: nn.Module, D: nn.Module, data: Sampler, cfg: TrainConfig,
                 device: torch.device | str = "cpu", *, channels_last: bool | None = None,
                 augment: Augmenter | None = None):
        self.cfg = cfg
        self.augment = augment   # what the critic sees of every batch (augment.py); None: the images as they are
        self.device = torch.device(device)
        if channels_last is None:
            channels_last = self.device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in D.modules())
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.G = G.to(self.device, memory_format=self.memory_format) if channels_last else G.to(self.device)
        self.D = D.to(self.device, memory_format=self.memory_format) if channels_last else D.to(self.device)
        self.data = data
        if cfg.penalty in PER_SAMPLE and has_batchnorm(D):
            raise batchnorm_refusal(cfg.penalty)
        self.penalty = PENALTIES[cfg.penalty]
        self.constraint = CONSTRAINTS.get(cfg.penalty)
        self.objective = OBJECTIVES[cfg.objective]()
        self.train_generator = any(p.requires_grad for p in self.G.parameters())
        self.opt_d = make_optimizer(self.D.parameters(), cfg, self.device, weight_decay=cfg.weight_decay_d or 0.0)
        self.opt_g = make_optimizer(self.G.parameters(), cfg, self.device) if self.train_generator else None
        self.G_ema = None
        if cfg.ema_decay is not None:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.dist = LOCAL   # under torchrun a distributed.Group: global draws, this rank's rows, averaged gradients
        # a critic with BatchNorm (allowed only for the baselines) must see real and fake in separate passes
        self.joint_critic_pass = not has_batchnorm(self.D)
        self.autocast = (dict(device_type=self.device.type, dtype=torch.bfloat16)
                         if cfg.precision == "bf16" else None)
        self.step = 0   # generator iterations done
        self._sums = torch.zeros(len(STAT_NAMES_D) + len(STAT_NAMES_G), device=self.device)
        self._counts = [0, 0]

    # ---- inputs -------------------------------------------------------------------------------------------
    def noise(self, n: int) -> torch.Tensor:
        return self.dist.take(models.draw_z(self.G, n, self.gen))   # the global batch's draws, this rank's rows

    def fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.cfg.conditional:
            return None
        return self.dist.take(models.draw_labels(self.G, n, self.gen))

    def generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self.fake_labels(n)
        z = self.noise(n)
        return self.G(z, y), y

    def _ctx(self):
        return torch.autocast(**self.autocast) if self.autocast else torch.autocast(self.device.type, enabled=False)

    # ---- the two steps ------------------------------------------------------------------------------------
    def critic_step(self) -> None:
        cfg = self.cfg
        real, y_real = self.dist.sample(self.data, cfg.batch_size, self.gen)
        if real.dim() == 4:
            real = real.contiguous(memory_format=self.memory_format)
        with torch.no_grad(), self._ctx():
            fake, _ = self.generate(cfg.batch_size)
        fake = fake.to(real.dtype)
        plain_real, plain_fake = real, fake
        if self.augment is not None:
            real = self.augment.view_real(real, cfg.batch_size, self.gen, self.dist)
            fake = self.augment.view_fake(fake, cfg.batch_size, self.gen, self.dist)
            if real.dim() == 4:
                real = real.contiguous(memory_format=self.memory_format)
                fake = fake.contiguous(memory_format=self.memory_format)
        # the penalty between the images the critic scores (augmented, as DiffAugment's WGAN-GP), or the plain ones
        on_plain = self.augment is not None and not self.augment.policy.penalty_on_augmented
        gp_real, gp_fake = (plain_real, plain_fake) if on_plain else (real, fake)
        with self._ctx():
            if self.joint_critic_pass:
                # one pass over real and fake together: half the launches of two passes, same function
                out = self.D(torch.cat([real, fake]))
                d_all = critic_score(out)
                d_real, d_fake = d_all[: len(real)], d_all[len(real):]
                logits_real = out[1][: len(real)] if isinstance(out, tuple) else None
            else:
                out_real = self.D(real)
                d_real, d_fake = critic_score(out_real), critic_score(self.D(fake))
                logits_real = out_real[1] if isinstance(out_real, tuple) else None
            gp = self.penalty(self.D, gp_real, gp_fake, self.gen, self.dist)
        loss = self.objective.critic(d_real, d_fake)
        loss_d = loss + cfg.gp_weight * gp
        if cfg.conditional:
            loss_d = loss_d + cfg.ac_weight_real * F.cross_entropy(logits_real.float(), y_real)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.dist.average_grads(self.D)
        self.opt_d.step()
        if self.constraint is not None:
            self.constraint(self.D, cfg.clip_value)
        w_dist = d_real.detach().float().mean() - d_fake.detach().float().mean()
        self._sums[:3] += torch.stack([loss_d.detach().float(), w_dist, gp.detach().float()])
        self._counts[0] += 1

    def generator_step(self) -> None:
        cfg = self.cfg
        self.D.requires_grad_(False)
        try:
            with self._ctx():
                fake, y_fake = self.generate(cfg.gen_batch_size)
                if self.augment is not None:
                    fake = self.augment.view_fake(fake, cfg.gen_batch_size, self.gen, self.dist)
                out = self.D(fake)
            loss_g = self.objective.generator(critic_score(out))
            if cfg.conditional:
                loss_g = loss_g + cfg.ac_weight_fake * F.cross_entropy(out[1].float(), y_fake)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.dist.average_grads(self.G)
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        if self.G_ema is not None:
            self._update_ema()
        self._sums[3:] += loss_g.detach().float()
        self._counts[1] += 1

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_p = [p for p in self.G_ema.parameters()]
        torch._foreach_lerp_(ema_p, [p for p in self.G.parameters()], 1.0 - self.cfg.ema_decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def set_lr(self) -> None:
        """Linear decay to zero over the run (Appendix F), applied per generator iteration."""
        if self.cfg.lr_decay != "linear":
            return
        lr = self.cfg.lr * max(0.0, 1.0 - self.step / self.cfg.iters)
        for opt in (self.opt_d, self.opt_g):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr

    def iteration(self) -> None:
        self.set_lr()
        self.G.train()
        self.D.train()
        for _ in range(self.cfg.n_critic):
            self.critic_step()
        if self.train_generator:
            self.generator_step()
        self.finish_iteration()

    def finish_iteration(self) -> None:
        """Count the iteration; at the end of each ada interval, move p."""
        self.step += 1
        if self.augment is not None and self.augment.policy.ada and self.step % ADA_INTERVAL == 0:
            self.adjust_augment()

    @torch.no_grad()
    def adjust_augment(self) -> None:
        """--augment-p ada: score a training, a held-out and a generated batch together, each seen as in
        training, and move p."""
        aug, n = self.augment, self.cfg.batch_size
        buffers = [*self.G.buffers(), *self.D.buffers()]   # BatchNorm running statistics stay as they were
        saved = [b.clone() for b in buffers]
        train, _ = self.dist.sample(self.data, n, self.gen)
        held, _ = self.dist.sample(aug.val, n, self.gen)
        with self._ctx():
            fake, _ = self.generate(n)
        views = torch.cat([aug.view_real(train, n, self.gen, self.dist), aug.view_real(held, n, self.gen, self.dist),
                           aug.view_fake(fake.to(train.dtype), n, self.gen, self.dist)])
        if views.dim() == 4:
            views = views.contiguous(memory_format=self.memory_format)
        with self._ctx():
            d = critic_score(self.D(views)).float().view(3, -1).mean(1)
        for b, old in zip(buffers, saved):
            b.copy_(old)
        aug.adjust(d[0], d[1], d[2], self.dist, images=n * self.cfg.n_critic * ADA_INTERVAL)

    # ---- statistics (the only host sync, at the logging cadence) -----------------------------------------
    def read_stats(self) -> dict[str, float]:
        values = self.dist.mean(self._sums).tolist()   # every rank reads (and logs) the same values
        nd, ng = max(self._counts[0], 1), max(self._counts[1], 1)
        stats = {k: v / nd for k, v in zip(STAT_NAMES_D, values[:3])}
        if self._counts[1]:
            stats["loss_g"] = values[3] / ng
        if self.augment is not None and self.augment.policy.names:
            stats.update(self.augment.stats())
        self._sums.zero_()
        self._counts = [0, 0]
        return stats

    # ---- state for checkpoints ----------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, module in (("G.", self.G), ("D.", self.D), ("G_ema.", self.G_ema)):
            if module is not None:
                out.update({prefix + k: v for k, v in module.state_dict().items()})
        for prefix, opt, module in (("opt_d.", self.opt_d, self.D), ("opt_g.", self.opt_g, self.G)):
            if opt is not None:
                out.update(optimizer_tensors(prefix, opt, module))
        out["rng.engine"] = self.gen.get_state()
        if self.augment is not None:
            out["augment.state"] = self.augment.state.detach().cpu().clone()
        out.update({"data." + k: v for k, v in self.data.state_dict().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], step: int) -> None:
        def sub(prefix):
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.G.load_state_dict(sub("G."))
        self.D.load_state_dict(sub("D."))
        if self.G_ema is not None:
            ema = sub("G_ema.")
            self.G_ema.load_state_dict(ema if ema else self.G.state_dict())
        load_optimizer_tensors(self.opt_d, self.D, sub("opt_d."))
        if self.opt_g is not None:
            load_optimizer_tensors(self.opt_g, self.G, sub("opt_g."))
        self.gen.set_state(tensors["rng.engine"].cpu())
        if self.augment is not None and "augment.state" in tensors:
            self.augment.load(tensors["augment.state"])
        self.data.load_state_dict(sub("data."))
        self.step = step
        self.set_lr()


@dataclass
class Callback:
    """Runs `fn(engine)` every `every` generator iterations and at the end; yields events.

    `on_interrupt` callbacks (checkpointing) also run when a stop signal arrives. Under torchrun only rank 0 runs
    a callback, unless it is `collective` (checkpoints, sharded evaluations: every rank takes part).
    """

    fn: Callable[["Engine", bool], Iterable]
    every: int = 0
    on_interrupt: bool = False
    collective: bool = False

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0


def fit(engine: Engine, *, sinks: Iterable[Callable] = (), callbacks: Iterable[Callback] = (),
        log_every: int = 100, should_stop: Callable[[], int] = lambda: 0, description: str = "") -> None:
    """Run until `engine.cfg.iters` generator iterations are done; resumable (starts at engine.step).

    `should_stop()` returns a signal number once a stop was requested; the loop then runs the on_interrupt
    callbacks at the next step boundary and raises Interrupted.
    """
    sinks, callbacks = list(sinks), list(callbacks)

    def emit(event):
        for sink in sinks:
            sink(event)

    total = engine.cfg.iters
    emit(RunStarted(step=engine.step, total=total, description=description))
    t_start = t_window = time.perf_counter()
    window_start = engine.step
    last_good = engine.step
    while engine.step < total:
        engine.iteration()
        step = engine.step
        signum = should_stop()
        if step % log_every == 0 or step == total or signum:
            stats = engine.read_stats()
            now = time.perf_counter()
            if not all(map(math.isfinite, stats.values())):
                raise DivergedError(
                    f"training diverged: non-finite loss between iterations {last_good} and {step} ({stats})",
                    "lower the learning rate, raise the penalty weight lambda, or resume from the last checkpoint in "
                    "the run directory")
            last_good = step
            it_s = (step - window_start) / max(now - t_window, 1e-9)
            emit(StepDone(step=step, total=total, stats=stats, it_s=it_s, elapsed=now - t_start))
            t_window, window_start = now, step
        if signum:
            for cb in callbacks:
                if cb.on_interrupt:
                    for event in cb.fn(engine, True):
                        emit(event)
            raise Interrupted(signum, f"interrupted at iteration {step}; state saved",
                              "run the same command again to resume")
        for cb in callbacks:
            if cb.due(step) or step == total:
                for event in cb.fn(engine, step == total):
                    emit(event)
    emit(RunFinished(step=engine.step, elapsed=time.perf_counter() - t_start))

