"""`wgan toy` through the CLI: its flags reach the config, --dry-run, Figure 1. That a run learns the modes is
tests/tasks/test_toy_task.py's test_toy_generator_moves_onto_the_modes."""

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from wgan_cli.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_flags_reach_the_config_and_the_models(tmp_path, captured):
    r = runner.invoke(app, ["toy", "--dataset", "swissroll", "--penalty", "lp", "--lambda", "2.5", "--n-critic", "3",
                            "--lr", "3e-4", "--betas", "0.1", "0.8", "--batch-size", "17", "--iters", "9",
                            "--seed", "4", "--dim", "24", "--depth", "2", "--log-every", "7", "--save-every", "5",
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    engine = captured["engine"]
    cfg = engine.cfg
    assert (cfg.penalty, cfg.gp_weight, cfg.n_critic, cfg.lr, cfg.betas) == ("lp", 2.5, 3, 3e-4, (0.1, 0.8))
    assert (cfg.batch_size, cfg.iters, cfg.seed, cfg.optimizer) == (17, 9, 4, "adam")
    assert captured["log_every"] == 7 and captured["description"] == "toy swissroll lp"
    linears = [m for m in engine.D.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [24, 24, 1]   # depth 2, width 24
    assert type(engine.data).__name__ == "SwissRoll"
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["toy"]["dataset"] == "swissroll" and options["run"]["save_every"] == 5
    assert options["train"]["gp_weight"] == 2.5


def test_clip_defaults_and_dry_run_write_nothing(tmp_path):
    r = runner.invoke(app, ["toy", "--penalty", "clip", "--out", str(tmp_path / "run"), "--dry-run"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert (shown["train"]["optimizer"], shown["train"]["lr"], shown["train"]["clip_value"]) == ("rmsprop", 5e-5, 0.01)
    assert shown["command"] == "toy" and shown["toy"]["dim"] == 512
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("figure,name", [("value-surface", "figure1a-value-surfaces.png"),
                                         ("gradnorm", "figure1b-gradnorms.png")])
@pytest.mark.slow
def test_each_figure_writes_its_png(tmp_path, figure, name):
    r = runner.invoke(app, ["toy", "--figure", figure, "--iters", "2", "--batch-size", "16", "--out",
                            str(tmp_path), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    image = Image.open(tmp_path / name)
    assert image.size[0] > 400 and image.size[1] > 300
    assert f"wrote {tmp_path / name}" in r.stdout
    if figure == "gradnorm":   # one line per method: clipping at three bounds, and GP
        assert sum("layer 1:" in line for line in r.stdout.splitlines()) == 4
