"""`wgan toy`: the paper's 2-D experiments (gan_toy.py and Figure 1) on the shared engine.

ToyTask is what a toy run adds to the run skeleton (runs.train_run); `figure_value_surfaces` (Figure 1a) and
`figure_gradnorms` (Figure 1b) train several critics and draw one figure each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from wgan_cli import models, plots
from wgan_cli.config import TOY_PRESET, RunOptions, ToyOptions, TrainConfig, resolve_train
from wgan_cli.data.toy import make_toy_data
from wgan_cli.engine import Callback, Engine, fit, pick_device
from wgan_cli.events import Artifact, Evaluated
from wgan_cli.metrics.points import mode_coverage, wasserstein1
from wgan_cli.models.toy import NoisyCopyGenerator
from wgan_cli.rundir import RunDir
from wgan_cli.runs import Plan, Task
from wgan_cli.ui import LastValues

DATASETS = ["8gaussians", "25gaussians", "swissroll"]
# what each figure sets itself (data sets, penalties, widths, no run directory): these options are refused with it
_NO_RUN = ("dataset", "penalty", "fixed_generator", "dim", "depth", "resume", "resume_with_changes", "plot_every",
           "save_every", "log_every")
FIGURE_IGNORES = {"value-surface": _NO_RUN, "gradnorm": (*_NO_RUN, "clip_value")}


def toy_engine(opts: ToyOptions, cfg: TrainConfig, device) -> Engine:
    """The toy MLPs on a 2-D data set; with `fixed_generator`, Figure 1a's P_r + N(0, 1) instead of a G."""
    data = make_toy_data(opts.dataset, device=device, seed=cfg.seed)
    G, D = models.build_seeded(model_spec(opts), cfg.seed)
    if opts.fixed_generator:
        G = NoisyCopyGenerator(data)
    engine = Engine(G, D, data, cfg, device)
    if opts.fixed_generator:
        G.gen = engine.gen
    return engine


def model_spec(opts: ToyOptions) -> dict:
    spec = {"arch": "toy-mlp", "dim": opts.dim, "depth": opts.depth, "z_dim": 2, "data_dim": 2}
    return {**spec, "fixed_generator": True} if opts.fixed_generator else spec


def real_and_fake(engine: Engine, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n fresh real points and n generated ones, from their own generators: looking never changes the run."""
    g = torch.Generator(device=engine.device).manual_seed(seed)
    real, _ = type(engine.data)(device=engine.device, seed=seed + 1).sample(n, g)
    fake, _ = models.draw(engine.G, n, g, chunk=n)
    return real, fake


def evaluate(engine: Engine, n: int, seed: int = 1234) -> dict:
    """W1 (exact, optimal assignment) between n generated and n real points; mode coverage where modes exist."""
    real, fake = real_and_fake(engine, n, seed)
    out = {"w1": wasserstein1(fake, real)}
    centers = getattr(engine.data, "centers", None)
    if centers is not None:
        cov = mode_coverage(fake, centers)
        out.update({k: v for k, v in cov.items() if k != "mode_share"})
    return out


class ToyTask(Task):
    """`wgan toy`: one run on a 2-D data set (gan_toy.py). The data is drawn by the engine: nothing to prepare."""

    name = "toy"

    def same(self, plan: Plan, data) -> tuple[str, ...]:
        return ("dataset",)

    def plan(self, cfg: TrainConfig, run: RunOptions) -> Plan:
        cfg = resolve_train(cfg, TOY_PRESET)
        return Plan("toy", "toy", cfg, run, self.opts, description=f"toy {self.opts.dataset} {cfg.penalty}",
                    model=model_spec(self.opts), data={"dataset": self.opts.dataset, "drawn": "on the device, "
                                                       "from the run's seed"})

    def spec(self, plan: Plan, data) -> dict:
        return model_spec(plan.opts)

    def extra(self, plan: Plan, data) -> dict:
        return {"dataset": plan.opts.dataset}

    def build(self, plan: Plan, data, device) -> Engine:
        return toy_engine(plan.opts, plan.cfg, device)

    def callbacks(self, plan: Plan, data, engine: Engine, run_dir: RunDir) -> list[Callback]:
        opts = plan.opts

        def figure(engine: Engine, final: bool):
            real, fake = real_and_fake(engine, opts.n_eval, seed=0)
            name = "final.png" if final else f"iter-{engine.step:07d}.png"
            title = f"{opts.dataset}, {plan.cfg.penalty}, iteration {engine.step}"
            path = plots.save_toy_figure(run_dir.path / "figures" / name, engine.D, real, fake, engine.device, title)
            yield Artifact(engine.step, str(path), "figure")

        def final_eval(engine: Engine, final: bool):
            yield Evaluated(engine.step, evaluate(engine, opts.n_eval))

        callbacks = [Callback(figure, every=opts.plot_every)]
        if not opts.fixed_generator:   # nothing to evaluate: the generator is the data plus noise
            callbacks.append(Callback(final_eval, every=0))
        return callbacks

    def summary(self, plan: Plan, data, engine: Engine, last: LastValues) -> dict:
        """The final evaluation (made now when the run had finished in an earlier process)."""
        if plan.opts.fixed_generator:
            return {}
        return last.metrics or evaluate(engine, plan.opts.n_eval)


# ---- Figure 1a: value surfaces of critics trained against a fixed generator --------------------------------
def figure_value_surfaces(out: str | Path, cfg: TrainConfig, iters: int = 500, device="auto", sinks=(),
                          datasets=DATASETS) -> Path:
    """Weight clipping vs gradient penalty, critic trained to optimality against P_g = P_r + N(0, 1)."""
    device = pick_device(device)
    panels = {}
    methods = {"weight clipping": "clip", "gradient penalty": "gp"}
    for label, penalty in methods.items():
        for name in datasets:
            c = resolve_train(dataclasses.replace(cfg, penalty=penalty, iters=iters), TOY_PRESET)
            engine = toy_engine(ToyOptions(dataset=name, fixed_generator=True), c, device)
            fit(engine, sinks=sinks, log_every=max(iters // 4, 1), description=f"figure 1a {name} {penalty}")
            g = torch.Generator(device=device).manual_seed(0)
            real, _ = engine.data.sample(500, g)
            axis, values = plots.critic_surface(engine.D, device)
            panels[(label, name)] = (axis, values, real, None)
    return plots.save_value_surface_grid(
        out, panels, list(methods), list(datasets),
        f"Figure 1a: critic value surfaces against a fixed generator ({iters} x {cfg.n_critic or 5} critic steps)")


# ---- Figure 1b: gradient norms through a deep critic --------------------------------------------------------
def layer_grad_norms(D, real: torch.Tensor, fake: torch.Tensor) -> list[float]:
    """Norm of d(critic loss)/d(activation) for each hidden layer of an MLP critic (input side first)."""
    acts = []

    def keep(module, inputs, output):
        output.retain_grad()
        acts.append(output)

    hooks = [m.register_forward_hook(keep) for m in D.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        D.zero_grad(set_to_none=True)
        loss = D(fake).mean() - D(real).mean()
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    n = len(acts) // 2   # fake pass first, then real: take the fake pass's activations
    return [float(a.grad.norm()) for a in acts[:n]]


def figure_gradnorms(out: str | Path, cfg: TrainConfig, iters: int = 200, depth: int = 12, device="auto",
                     sinks=()) -> tuple[Path, dict]:
    """12-layer ReLU MLPs without normalisation on swiss roll; clipping c in {0.1, 0.01, 0.001} vs GP."""
    device = pick_device(device)
    curves = {}
    settings = [(f"weight clipping (c={c})", dict(penalty="clip", clip_value=c)) for c in (0.1, 0.01, 0.001)]
    settings.append(("gradient penalty", dict(penalty="gp")))
    for label, change in settings:
        c = resolve_train(dataclasses.replace(cfg, iters=iters, **change), TOY_PRESET)
        engine = toy_engine(ToyOptions(dataset="swissroll", depth=depth), c, device)
        fit(engine, sinks=sinks, log_every=max(iters // 4, 1), description=f"figure 1b {label}")
        g = torch.Generator(device=device).manual_seed(0)
        real, _ = engine.data.sample(c.batch_size, g)
        fake, _ = models.draw(engine.G, c.batch_size, g, chunk=c.batch_size)
        curves[label] = layer_grad_norms(engine.D, real, fake)
    path = plots.save_gradnorm_figure(out, curves, f"Figure 1b: {depth}-layer critic on swiss roll, "
                                                   f"{iters} generator iterations")
    return path, curves
