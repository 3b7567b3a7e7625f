"""Every numeric option of toy, train, textgen, sample and score: NaN, infinity and out-of-range values are refused
at once with exit code 2 and the range in the message, and nothing is created on disk."""

import pytest
import torch
from checkpoints import save_generator
from typer.testing import CliRunner

from wgan_cli import checkpoint, fields
from wgan_cli.cli import app

runner = CliRunner()
BIG = str(2**64)   # beyond 64 bits

# option -> bad values; every numeric option of the training commands appears here
TRAINING = {
    "--lr": ["nan", "inf", "-1", "0"],
    "--lambda": ["nan", "-1", "inf"],
    "--betas": [["2", "2"], ["0.5", "1"], ["nan", "0.9"], ["-0.1", "0.9"]],
    "--clip-value": ["nan", "0", "-1"],
    "--n-critic": ["0", "-3", BIG],
    "--batch-size": ["0", BIG],
    "--iters": ["0", BIG],
    "--seed": ["-1", BIG, str(2**63)],
    "--log-every": ["0"],
    "--save-every": ["0", BIG],
}
TOY = {**TRAINING, "--dim": ["0", BIG], "--depth": ["0", "5000"], "--plot-every": ["0"]}
TRAIN = {**TRAINING, "--dim": ["0", BIG], "--size": ["0", "5000"], "--gen-batch-size": ["0"],
         "--ema-decay": ["nan", "1", "-0.1", "inf"], "--sample-every": ["0"], "--eval-every": ["0"],
         "--n-val": ["0"], "--eval-n": ["1"], "--workers": ["-1", "5000"]}
TEXTGEN = {**TRAINING, "--dim": ["0"], "--seq-len": ["2"], "--vocab-size": ["1", "40000"], "--max-lines": ["1"],
           "--heldout": ["0"], "--eval-every": ["0"]}


def cases(command: str, table: dict) -> list:
    return [pytest.param(command, opt, v, id=f"{command}{opt}={'_'.join(v) if isinstance(v, list) else v}")
            for opt, values in table.items() for v in values]


def run_training(command, opt, value, out):
    args = {"toy": ["toy"],
            "train": ["train", "--dataset", "folder:/nonexistent-never-read"],
            "textgen": ["textgen", "--corpus", "/nonexistent-never-read.txt"]}[command]
    value = value if isinstance(value, list) else [value]
    return runner.invoke(app, [*args, opt, *value, "--out", str(out), "--device", "cpu", "--quiet"])


@pytest.mark.parametrize("command,opt,value", cases("toy", TOY) + cases("train", TRAIN) + cases("textgen", TEXTGEN))
def test_training_options_refused_before_anything_exists(tmp_path, command, opt, value):
    out = tmp_path / "run"
    r = run_training(command, opt, value, out)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("error: ") and opt.lstrip("-").split("-")[0] in lines[0], r.output
    assert lines[1].startswith("hint: ") and len(lines) == 2, r.output
    assert isinstance(r.exception, SystemExit)
    assert not out.exists()          # nothing created: not even an empty run directory


def test_the_message_gives_the_range():
    r = runner.invoke(app, ["toy", "--lr", "nan", "--dry-run"])
    assert r.exit_code == 2 and "error: --lr nan: must be a finite number > 0" in r.output
    r = runner.invoke(app, ["toy", "--betas", "2", "2", "--dry-run"])
    assert "each value must be a finite number in [0, 1)" in r.output
    r = runner.invoke(app, ["train", "--ema-decay", "1", "--dry-run"])
    assert r.exit_code == 2 and "--ema-decay 1.0: must be a finite number in [0, 1)" in r.output
    r = runner.invoke(app, ["toy", "--seed", str(2**64), "--dry-run"])
    assert r.exit_code == 2 and "[0, 2^63 - 1]" in r.output
    r = runner.invoke(app, ["toy", "--seed", str(2**63 - 1), "--dry-run"])   # the largest seed is accepted
    assert r.exit_code == 0, r.output


def test_good_values_pass_the_checks():
    from wgan_cli.config import RunOptions, TrainConfig

    fields.check_all(TrainConfig(lr=1e-4, betas=(0.0, 0.9), gp_weight=0.0, ema_decay=0.0, seed=2**63 - 1),
                     RunOptions())


@pytest.fixture
def toy_ckpt(tmp_path):
    return save_generator(tmp_path / "g.safetensors", {"arch": "toy-mlp", "dim": 4, "depth": 1, "z_dim": 2,
                                                         "data_dim": 2})


@pytest.mark.parametrize("opt,value", [("-n", "0"), ("-n", "-5"), ("-n", BIG), ("--seed", "-1"), ("--seed", BIG)])
def test_sample_numbers(tmp_path, toy_ckpt, opt, value):
    out = tmp_path / "out" / "p.csv"
    r = runner.invoke(app, ["sample", str(toy_ckpt), opt, value, "-o", str(out)])
    assert r.exit_code == 2 and r.output.startswith("error: "), r.output
    assert not out.parent.exists()


@pytest.mark.parametrize("opt,value", [("--n", "1"), ("--n", BIG), ("--splits", "0"), ("--batch-size", "0"),
                                       ("--seed", "-1"), ("--seed", BIG), ("--kid-subsets", "0"),
                                       ("--kid-subset-size", "1")])
def test_score_numbers(tmp_path, opt, value):
    r = runner.invoke(app, ["score", str(tmp_path / "a.npz"), "--ref", str(tmp_path / "b.npz"), opt, value,
                            "--save-stats", str(tmp_path / "stats" / "s.safetensors")])
    assert r.exit_code == 2 and r.output.startswith("error: "), r.output
    assert not (tmp_path / "stats").exists()


@pytest.mark.parametrize("opt,value", [("-n", "0"), ("--seed", BIG)])
def test_textgen_generation_numbers(tmp_path, opt, value):
    ckpt = save_generator(tmp_path / "lm.safetensors", {"arch": "text-resnet", "vocab_size": 4, "seq_len": 4,
                                                         "dim": 2, "z_dim": 3, "n_blocks": 1})
    r = runner.invoke(app, ["textgen", "--ckpt", str(ckpt), opt, value])
    assert r.exit_code == 2 and r.output.startswith("error: "), r.output


@pytest.mark.slow
def test_the_largest_seed_trains(tmp_path, one_thread):
    """Seeds up to 2^63 - 1 work everywhere they are used (models, noise, the data order)."""
    r = runner.invoke(app, ["toy", "--seed", str(2**63 - 1), "--iters", "2", "--dim", "4", "--depth", "1",
                            "--batch-size", "4", "--n-critic", "1", "--plot-every", "100",
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert torch.isfinite(checkpoint.load(tmp_path / "run" / "generator.safetensors")[0]["G.net.0.weight"]).all()


def test_one_range_for_the_flag_the_config_file_and_the_checkpoint(tmp_path):
    """--seq-len's range is declared once: the flag, a --config file and a checkpoint's model spec all refuse 3
    and take 4."""
    from wgan_cli.errors import CheckpointError

    corpus = tmp_path / "c.txt"
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus), "--seq-len", "3", "--dry-run"])
    assert r.exit_code == 2 and "--seq-len 3: must be an integer in [4, 4096]" in r.output, r.output
    config = tmp_path / "opts.json"
    config.write_text('{"textgen": {"seq_len": 3}}')
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus), "--config", str(config), "--dry-run"])
    assert r.exit_code == 2 and "textgen.seq_len 3: must be an integer in [4, 4096]" in r.output, r.output
    config.write_text('{"textgen": {"seq_len": 4}}')
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus), "--config", str(config), "--dry-run"])
    assert r.exit_code == 0, r.output
    for seq_len, ok in ((3, False), (4, True)):
        spec = {"arch": "text-resnet", "vocab_size": 4, "seq_len": seq_len, "dim": 2, "z_dim": 3, "n_blocks": 1}
        path = save_generator(tmp_path / f"lm{seq_len}.safetensors", spec)
        if ok:
            checkpoint.load(path, task="text")
        else:
            with pytest.raises(CheckpointError, match="seq_len"):
                checkpoint.load(path, task="text")
