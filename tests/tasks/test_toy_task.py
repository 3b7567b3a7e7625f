"""The engine on the toy: what it learns, what it writes, how it resumes and stops."""


import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.config import TOY_PRESET, RunOptions, ToyOptions, TrainConfig, resolve_train
from wgan_cli.engine import Callback, fit
from wgan_cli.errors import CheckpointError, DivergedError, Interrupted
from wgan_cli.events import Artifact, Evaluated, RunFinished, Saved, StepDone
from wgan_cli.metrics.points import mode_coverage
from wgan_cli.penalties import interpolate, slopes
from wgan_cli.runs import train_run
from wgan_cli.toy import ToyTask, evaluate, toy_engine


def tiny(**kw):
    return resolve_train(TrainConfig(**kw), TOY_PRESET)


def train_toy(opts: ToyOptions, cfg: TrainConfig, out, sinks=(), **run) -> dict:
    return train_run(ToyTask(opts), cfg, RunOptions(out=str(out), device="cpu", **run), sinks)


def test_resolve_defaults_per_method():
    gp = tiny()
    assert (gp.optimizer, gp.lr, gp.betas, gp.gp_weight, gp.n_critic, gp.batch_size) == ("adam", 1e-4, (0.5, 0.9), 0.1, 5, 256)
    clip = tiny(penalty="clip")
    assert (clip.optimizer, clip.lr, clip.clip_value) == ("rmsprop", 5e-5, 0.01)
    dcgan = tiny(objective="gan")
    assert (dcgan.penalty, dcgan.lr, dcgan.betas, dcgan.n_critic) == ("none", 2e-4, (0.5, 0.999), 1)
    assert tiny(gp_weight=10, n_critic=3).gp_weight == 10 and tiny(n_critic=3).n_critic == 3


@pytest.mark.slow
def test_critic_against_fixed_generator_settles_near_unit_gradient_norm():
    cfg = tiny(gp_weight=10.0, iters=150, batch_size=128, lr=1e-3, seed=0)
    opts = ToyOptions(dataset="8gaussians", dim=64, fixed_generator=True)
    engine = toy_engine(opts, cfg, "cpu")
    fit(engine, log_every=50)
    g = torch.Generator().manual_seed(5)
    real, _ = engine.data.sample(512, g)
    fake = real + torch.randn(real.shape, generator=g)
    s = slopes(engine.D, interpolate(real, fake, g)).detach()
    assert abs(s.median().item() - 1.0) < 0.15, s.median()
    assert engine.opt_g is None   # nothing in the generator trains


@pytest.mark.slow
def test_toy_generator_moves_onto_the_modes(tmp_path, events):
    """The one training run that shows the toy learns: its own evaluation, what the run writes, and the generator
    checkpoint it leaves, sampled as a user would (`wgan sample`), all put the points onto the 8 modes."""
    opts = ToyOptions(dataset="8gaussians", dim=128, plot_every=10_000, n_eval=500)
    cfg = TrainConfig(iters=400, batch_size=128, lr=5e-4, seed=0)
    engine = toy_engine(opts, resolve_train(cfg, TOY_PRESET), "cpu")
    before = evaluate(engine, 500)
    result = train_toy(opts, cfg, tmp_path, sinks=[events.append], log_every=50, save_every=10_000)
    assert result["modes_covered"] == 8
    assert result["median_dist"] < before["median_dist"] / 3, (before, result)
    assert result["w1"] < before["w1"] / 2
    # what was written
    assert (tmp_path / "generator.safetensors").exists() and (tmp_path / "options.json").exists()
    assert (tmp_path / "figures" / "final.png").stat().st_size > 10_000
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert sum('"event": "step"' in r for r in rows) == 8
    assert any(isinstance(e, Evaluated) for e in events) and isinstance(events[-1], RunFinished)
    assert [e.path for e in events if isinstance(e, Artifact)] == [str(tmp_path / "figures" / "final.png")]
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.safetensors"))[-1] == "ckpt-0000400.safetensors"
    # the generator file holds the trained generator: its samples sit on the modes as the run's evaluation said
    r = CliRunner().invoke(app, ["sample", str(tmp_path / "generator.safetensors"), "-n", "500", "-o",
                                 str(tmp_path / "points.npy"), "--seed", "2"])
    assert r.exit_code == 0, r.output
    sampled = mode_coverage(torch.from_numpy(np.load(tmp_path / "points.npy")), engine.data.centers)
    assert sampled["median_dist"] < before["median_dist"] / 3, (before, sampled)


def run(tmp_path, iters, name="run", dataset="25gaussians"):
    opts = ToyOptions(dataset=dataset, dim=32, plot_every=10_000, n_eval=64)
    train_toy(opts, TrainConfig(iters=iters, batch_size=32, seed=3), tmp_path / name, log_every=5, save_every=10_000)
    return checkpoint.load(tmp_path / name / f"ckpt-{iters:07d}.safetensors")[0]


@pytest.mark.slow
def test_resume_is_bit_identical(tmp_path):
    straight = run(tmp_path, 12, "straight")
    run(tmp_path, 6, "halves")
    resumed = run(tmp_path, 12, "halves")  # same run directory: --resume auto continues at 6
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_interrupt_saves_and_raises(tmp_path, events):
    from wgan_cli.rundir import RunDir, checkpoint_callback

    cfg = tiny(iters=50, batch_size=16)
    engine = toy_engine(ToyOptions(dim=16), cfg, "cpu")
    run_dir = RunDir(tmp_path).create()
    cb = checkpoint_callback(run_dir, task="toy", model={"arch": "toy-mlp"}, train={}, every=1000)
    with pytest.raises(Interrupted) as e:
        fit(engine, sinks=[events.append], callbacks=[cb], should_stop=lambda: 2 if engine.step >= 7 else 0)
    assert e.value.exit_code == 130
    assert [p.name for p in run_dir.checkpoints()] == ["ckpt-0000007.safetensors"]
    assert any(isinstance(ev, Saved) and ev.step == 7 for ev in events)


class NaNData:
    def sample(self, n, gen):
        return torch.full((n, 2), float("nan")), None

    def state_dict(self):
        return {}

    def load_state_dict(self, s):
        pass


def test_divergence_stops_with_clear_error_and_saves_nothing(tmp_path):
    from wgan_cli.engine import Engine
    from wgan_cli.models.toy import toy_mlp
    from wgan_cli.rundir import RunDir, checkpoint_callback

    G, D = toy_mlp(dim=8)
    engine = Engine(G, D, NaNData(), tiny(iters=20, batch_size=8))
    run_dir = RunDir(tmp_path).create()
    cb = checkpoint_callback(run_dir, task="toy", model={"arch": "toy-mlp"}, train={}, every=10)
    with pytest.raises(DivergedError, match="between iterations 0 and 5"):
        fit(engine, callbacks=[cb], log_every=5)
    assert run_dir.checkpoints() == []


def test_stats_are_averages_over_the_window():
    """A logged value is the mean over the window's iterations; reading the statistics changes nothing."""
    every_step, windowed = [], []
    engines = []
    for log_every, sink in ((1, every_step), (5, windowed)):
        engine = toy_engine(ToyOptions(dim=16), tiny(iters=10, batch_size=16), "cpu")
        fit(engine, sinks=[sink.append], log_every=log_every)
        engines.append(engine)
    per_step = [e.stats for e in every_step if isinstance(e, StepDone)]
    windows = [e for e in windowed if isinstance(e, StepDone)]
    assert [e.step for e in windows] == [5, 10] and len(per_step) == 10
    for w, window in enumerate(windows):
        for key in ("loss_d", "w_dist", "gp", "loss_g"):
            mean = sum(s[key] for s in per_step[5 * w: 5 * w + 5]) / 5
            assert window.stats[key] == pytest.approx(mean, rel=1e-5, abs=1e-7), (key, w)
    a, b = (e.state_tensors() for e in engines)
    assert all(torch.equal(a[k], b[k]) for k in a)   # logging every step vs every 5th: the same training


def test_callbacks_run_on_cadence_and_at_end():
    engine = toy_engine(ToyOptions(dim=8), tiny(iters=7, batch_size=8), "cpu")
    seen = []
    fit(engine, callbacks=[Callback(lambda e, final: seen.append((e.step, final)) or [], every=3)], log_every=100)
    assert seen == [(3, False), (6, False), (7, True)]


def test_resuming_with_another_dataset_is_refused(tmp_path):
    run(tmp_path, 4, "r", dataset="8gaussians")
    with pytest.raises(CheckpointError, match="dataset: 8gaussians vs 25gaussians"):
        run(tmp_path, 8, "r", dataset="25gaussians")
