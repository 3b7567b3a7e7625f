"""`wgan toy`: the paper's 2-D experiments (gan_toy.py and Figure 1) on the shared engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from wgan_cli import models, plots
from wgan_cli.config import TOY_PRESET, ToyOptions, TrainConfig, resolve_train
from wgan_cli.data.toy import make_toy_data
from wgan_cli.engine import Callback, Engine, fit, pick_device
from wgan_cli.events import Evaluated, Note
from wgan_cli.metrics.points import mode_coverage, wasserstein1
from wgan_cli.models.toy import NoisyCopyGenerator
from wgan_cli.runs import RunDir, checkpoint_callback, resume

DATASETS = ["8gaussians", "25gaussians", "swissroll"]


def model_spec(opts: ToyOptions) -> dict:
    return {"arch": "toy-mlp", "dim": opts.dim, "depth": opts.depth, "z_dim": 2, "data_dim": 2}


def build_engine(opts: ToyOptions, cfg: TrainConfig, device) -> Engine:
    data = make_toy_data(opts.dataset, device=device, seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G, D = models.build(model_spec(opts))
    if opts.fixed_generator:
        G = NoisyCopyGenerator(data)
    engine = Engine(G, D, data, cfg, device)
    if opts.fixed_generator:
        G.gen = engine.gen
    return engine


@torch.no_grad()
def evaluate(engine: Engine, n: int, seed: int = 1234) -> dict:
    """W1 (exact, optimal assignment) between n generated and n real points; mode coverage where modes exist.
    Drawn from its own generator so that evaluating never changes the training run."""
    g = torch.Generator(device=engine.device).manual_seed(seed)
    real, _ = type(engine.data)(device=engine.device, seed=seed + 1).sample(n, g)
    fake = sample_points(engine.G, n, engine.device, g)
    out = {"w1": wasserstein1(fake, real)}
    centers = getattr(engine.data, "centers", None)
    if centers is not None:
        cov = mode_coverage(fake, centers)
        out.update({k: v for k, v in cov.items() if k != "mode_share"})
    return out


@torch.no_grad()
def sample_points(G, n: int, device, gen: torch.Generator | None = None) -> torch.Tensor:
    G.eval()
    z = torch.randn(n, G.z_dim, device=device, generator=gen)
    out = G(z)
    G.train()
    return out


def train_toy(opts: ToyOptions, cfg: TrainConfig, sinks=(), should_stop=lambda: 0) -> dict:
    """Train (or resume) one toy run in `opts.out`. Returns the final evaluation."""
    cfg = resolve_train(cfg, TOY_PRESET)
    device = pick_device(opts.device)
    run = RunDir(opts.out).create()
    engine = build_engine(opts, cfg, device)
    spec = model_spec(opts)
    if opts.fixed_generator:
        spec = {**spec, "fixed_generator": True}
    from wgan_cli.ui import JsonlSink

    jsonl = JsonlSink(run.metrics_path)
    sinks = [*sinks, jsonl]
    try:
        for note in resume(engine, run, opts.resume, task="toy", model=spec):
            for s in sinks:
                s(note)
        run.write_options({"command": "toy", "toy": dataclasses.asdict(opts), "train": cfg.to_json(),
                           "device": str(device)})
        result: dict = {}

        def figure(engine: Engine, final: bool):
            g = torch.Generator(device=device).manual_seed(0)
            real, _ = type(engine.data)(device=device, seed=1).sample(opts.n_eval, g)
            fake = sample_points(engine.G, opts.n_eval, device, g)
            name = "final.png" if final else f"iter-{engine.step:07d}.png"
            title = f"{opts.dataset}, {cfg.penalty}, iteration {engine.step}"
            path = plots.save_toy_figure(run.path / "figures" / name, engine.D, real, fake, device, title)
            yield Note(f"figure {path}")

        def final_eval(engine: Engine, final: bool):
            if opts.fixed_generator:   # nothing to evaluate: the generator is the data plus noise
                return
            metrics = evaluate(engine, opts.n_eval)
            result.update(metrics)
            yield Evaluated(engine.step, metrics)

        callbacks = [
            checkpoint_callback(run, task="toy", model=spec, train=cfg.to_json(),
                                extra={"dataset": opts.dataset}, every=opts.save_every),
            Callback(figure, every=opts.plot_every),
            Callback(final_eval, every=0),
        ]
        fit(engine, sinks=sinks, callbacks=callbacks, log_every=opts.log_every, should_stop=should_stop,
            description=f"toy {opts.dataset} {cfg.penalty}")
        if not result and not opts.fixed_generator:   # finished in an earlier run: evaluate what is there
            result.update(evaluate(engine, opts.n_eval))
        return result
    finally:
        jsonl.close()


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
            opts = ToyOptions(dataset=name, fixed_generator=True, device=str(device))
            engine = build_engine(opts, c, device)
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
        opts = ToyOptions(dataset="swissroll", depth=depth, device=str(device))
        engine = build_engine(opts, c, device)
        fit(engine, sinks=sinks, log_every=max(iters // 4, 1), description=f"figure 1b {label}")
        g = torch.Generator(device=device).manual_seed(0)
        real, _ = engine.data.sample(c.batch_size, g)
        fake = sample_points(engine.G, c.batch_size, device, g)
        curves[label] = layer_grad_norms(engine.D, real, fake)
    path = plots.save_gradnorm_figure(out, curves, f"Figure 1b: {depth}-layer critic on swiss roll, "
                                                   f"{iters} generator iterations")
    return path, curves
