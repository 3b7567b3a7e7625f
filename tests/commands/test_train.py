"""`wgan train` through the CLI: the config the engine receives, a real stand-in run, clear errors."""

import json

import pytest
from standins import write_cifar10, write_mnist, write_pngs
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.data.formats import SYSTEM_DIRS

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_preset_cifar10_resnet_is_appendix_f(tmp_path, captured):
    write_cifar10(tmp_path)
    r = runner.invoke(app, ["train", "--preset", "cifar10-resnet", "--data-dir", str(tmp_path),
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    engine = captured["engine"]
    cfg = engine.cfg
    assert (cfg.batch_size, cfg.gen_batch_size, cfg.n_critic, cfg.gp_weight) == (64, 128, 5, 10.0)
    assert (cfg.optimizer, cfg.lr, cfg.betas, cfg.lr_decay, cfg.iters) == ("adam", 2e-4, (0.0, 0.9), "linear", 100_000)
    assert (cfg.objective, cfg.penalty, cfg.conditional) == ("wgan", "gp", False)
    assert type(engine.G).__name__ == "ResnetGenerator" and sum(p.numel() for p in engine.G.parameters()) == 1204483
    assert engine.data.dequantize and engine.data.pixel_range == "tanh"
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["model"]["arch"] == "resnet" and options["train"]["lr_decay"] == "linear"


@pytest.mark.slow
def test_explicit_options_override_the_preset(tmp_path, captured):
    write_cifar10(tmp_path)
    r = runner.invoke(app, ["train", "--preset", "cifar10-resnet-cond", "--data-dir", str(tmp_path), "--iters", "7",
                            "--lr", "1e-4", "--lr-decay", "none", "--dim", "8", "--ema-decay", "0.999",
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    cfg = captured["engine"].cfg
    assert (cfg.iters, cfg.lr, cfg.lr_decay, cfg.conditional, cfg.ema_decay) == (7, 1e-4, "none", True, 0.999)
    assert captured["engine"].G.n_classes == 10 and captured["engine"].G_ema is not None


@pytest.mark.slow
def test_baseline_keeps_its_own_optimiser(tmp_path, captured):
    write_mnist(tmp_path)
    r = runner.invoke(app, ["train", "--preset", "mnist-dcgan", "--objective", "gan", "--data-dir", str(tmp_path),
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    cfg = captured["engine"].cfg
    assert (cfg.penalty, cfg.n_critic, cfg.lr, cfg.betas, cfg.batch_size) == ("none", 1, 2e-4, (0.5, 0.999), 50)


def test_cifar10_command_runs_unchanged_on_standin_files(tmp_path):
    """The README's first `wgan train` command line, plus where the data is, where to write, and a short run."""
    write_cifar10(tmp_path)
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--dataset", "cifar10", "--penalty", "gp", "--lambda", "10",
                            "--data-dir", str(tmp_path), "--out", str(out), "--iters", "2", "--dim", "8",
                            "--batch-size", "8", "--n-val", "8", "--device", "cpu", "--plain"])
    assert r.exit_code == 0, r.output
    assert '"step": 2' in r.output and "val_w_dist" in r.output
    assert (out / "generator.safetensors").is_file() and (out / "samples" / "iter-0000002.png").is_file()
    meta = checkpoint.read_meta(out / "generator.safetensors")
    assert meta["task"] == "image" and meta["model"]["size"] == 32 and meta["extra"]["dataset"] == "cifar10"
    assert meta["extra"]["output"] == "tanh"   # the pixel range, under the key existing checkpoints hold it by
    r = runner.invoke(app, ["sample", str(out / "generator.safetensors"), "-n", "4", "-o", str(tmp_path / "s.npz")])
    assert r.exit_code == 0 and "(4, 32, 32, 3)" in r.output


@pytest.mark.parametrize("args,code,words", [
    (["--dataset", "mnist", "--no-download"], 3, "files not found"),
    (["--dataset", "imagenet"], 2, "unknown dataset"),
    (["--arch", "vgg"], 2, "vgg"),
    (["--dataset", "mnist", "--critic-norm", "batchnorm"], 2, "BatchNorm"),
    (["--dataset", "mnist", "--conditional"], 2, "--conditional needs conditional BN"),
    (["--preset", "imagenet-biggan"], 2, "unknown preset"),
    (["--dataset", "mnist", "--arch", "resnet64", "--size", "32"], 2, "works at 64, 128 pixels"),
])
def test_bad_train_options(tmp_path, args, code, words):
    r = runner.invoke(app, ["train", *args, "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert r.exit_code == code, r.output
    assert words in r.output, r.output


def test_missing_data_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setitem(SYSTEM_DIRS, "fashion-mnist", [str(tmp_path / "usr-share")])   # no Debian package
    r = runner.invoke(app, ["train", "--dataset", "fashion-mnist", "--no-download", "--data-dir",
                            str(tmp_path / "d"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 3, r.output
    assert str(tmp_path / "d") in r.output and str(tmp_path / "usr-share") in r.output
    assert "apt-get install dataset-fashion-mnist" in r.output


def test_corrupt_image_with_strict_names_the_file(tmp_path):
    write_pngs(tmp_path / "pics", 20)
    (tmp_path / "pics" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    r = runner.invoke(app, ["train", "--dataset", f"folder:{tmp_path / 'pics'}", "--strict", "--out",
                            str(tmp_path / "run"), "--workers", "0"])
    assert r.exit_code == 3 and "broken.jpg" in r.output, r.output


@pytest.mark.slow
def test_corrupt_image_skipped_and_counted_in_a_run(tmp_path):
    write_pngs(tmp_path / "pics", 40, size=32)
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG truncated")
    r = runner.invoke(app, ["train", "--dataset", f"folder:{tmp_path / 'pics'}", "--dim", "2", "--batch-size", "38",
                            "--n-critic", "1", "--iters", "1", "--workers", "0", "--out", str(tmp_path / "run"),
                            "--device", "cpu", "--plain"])
    assert r.exit_code == 0, r.output
    assert "skipped unreadable image" in r.output and "broken.png" in r.output
    assert '"skipped_images": 1' in r.output
