"""`--config FILE`: a run re-created from its options.json is the same run, bit for bit; flags override the file;
unknown keys and bad values are refused by name before anything is written; TOML works."""

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from wgan_cli.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def assert_same_tensors(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys() and len(ta) > 4
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key


def recorded(run_dir):
    options = json.loads((run_dir / "options.json").read_text())
    options["run"].pop("out")
    return options


# ---- re-creating a run ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_toy_run_recreated_from_its_options_json_is_bit_identical(tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    r = cli("toy", "--dataset", "swissroll", "--iters", "3", "--dim", "16", "--depth", "2", "--batch-size", "32",
            "--lambda", "0.5", "--lr", "1e-3", "--seed", "7", "--save-every", "3", "--plot-every", "100",
            "--out", first, "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    r = cli("toy", "--config", first / "options.json", "--out", again, "--quiet")
    assert r.exit_code == 0, r.output
    assert_same_tensors(first / "ckpt-0000003.safetensors", again / "ckpt-0000003.safetensors")
    assert recorded(first) == recorded(again)


@pytest.mark.slow
def test_an_image_run_recreated_from_its_options_json_is_bit_identical(tmp_path):
    from standins import write_cifar10

    write_cifar10(tmp_path)
    first, again = tmp_path / "first", tmp_path / "again"
    r = cli("train", "--dataset", "cifar10", "--data-dir", tmp_path, "--arch", "dcgan", "--dim", "8", "--iters", "2",
            "--batch-size", "8", "--n-val", "8", "--ema-decay", "0.9", "--seed", "3", "--out", first,
            "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    options = json.loads((first / "options.json").read_text())
    assert {"model", "data", "size", "device"} <= set(options)        # descriptive keys, ignored when read back
    r = cli("train", "--config", first / "options.json", "--out", again, "--quiet")
    assert r.exit_code == 0, r.output
    assert_same_tensors(first / "ckpt-0000002.safetensors", again / "ckpt-0000002.safetensors")
    assert_same_tensors(first / "generator.safetensors", again / "generator.safetensors")
    assert recorded(first) == recorded(again)


def test_a_text_run_recreated_from_its_options_json_is_bit_identical(tmp_path):
    corpus = tmp_path / "words.txt"
    corpus.write_text("\n".join(["the cat sat", "a dog ran", "the sun set"] * 40) + "\n")
    first, again = tmp_path / "first", tmp_path / "again"
    r = cli("textgen", "--corpus", corpus, "--out", first, "--iters", "2", "--dim", "8", "--seq-len", "12",
            "--batch-size", "8", "--n-critic", "2", "--heldout", "12", "--eval-every", "2", "--device", "cpu",
            "--quiet")
    assert r.exit_code == 0, r.output
    r = cli("textgen", "--config", first / "options.json", "--out", again, "--quiet")
    assert r.exit_code == 0, r.output
    assert_same_tensors(first / "ckpt-0000002.safetensors", again / "ckpt-0000002.safetensors")
    assert recorded(first) == recorded(again)


# ---- merging ---------------------------------------------------------------------------------------------------
def dry_run(*args):
    r = cli(*args, "--dry-run")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), r.stderr


@pytest.mark.slow
def test_flags_override_the_file_and_the_dry_run_shows_the_merge(tmp_path):
    first = tmp_path / "first"
    assert cli("toy", "--iters", "2", "--dim", "16", "--batch-size", "32", "--lr", "1e-3", "--out", first,
               "--device", "cpu", "--quiet").exit_code == 0
    shown, notes = dry_run("toy", "--config", first / "options.json", "--iters", "9", "--seed", "4",
                           "--out", tmp_path / "new")
    base = json.loads((first / "options.json").read_text())
    assert (shown["train"]["iters"], shown["train"]["seed"], shown["run"]["out"]) == (9, 4, str(tmp_path / "new"))
    for key in ("lr", "batch_size", "gp_weight", "n_critic", "betas"):
        assert shown["train"][key] == base["train"][key]
    assert shown["toy"] == base["toy"] and notes == ""
    # a flag given with its default value still counts as given
    shown, _ = dry_run("toy", "--config", first / "options.json", "--dim", "512")
    assert shown["toy"]["dim"] == 512


@pytest.mark.slow
def test_a_new_method_keeps_the_files_resolved_optimiser_and_says_so(tmp_path):
    first = tmp_path / "first"
    assert cli("toy", "--iters", "2", "--dim", "16", "--out", first, "--device", "cpu", "--quiet").exit_code == 0
    shown, notes = dry_run("toy", "--config", first / "options.json", "--penalty", "clip")
    assert (shown["train"]["penalty"], shown["train"]["optimizer"], shown["train"]["lr"]) == ("clip", "adam", 1e-4)
    assert notes.startswith("note: --penalty from the command line keeps") and "optimizer adam" in notes
    # the method's defaults apply where the file leaves the keys out
    hand = tmp_path / "clip.toml"
    hand.write_text('[train]\niters = 2\n[toy]\ndim = 16\n')
    shown, notes = dry_run("toy", "--config", hand, "--penalty", "clip")
    assert (shown["train"]["optimizer"], shown["train"]["lr"], shown["train"]["iters"]) == ("rmsprop", 5e-5, 2)
    assert notes == ""


@pytest.mark.slow
def test_a_toml_file_sets_the_options(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('command = "toy"\n\n[train]\niters = 2\nlr = 1\nbetas = [0, 0.9]\nlambda_ignored = false\n')
    r = cli("toy", "--config", path, "--dry-run")
    assert r.exit_code == 2 and "unknown key train.lambda_ignored" in r.stderr, r.output
    path.write_text('[train]\niters = 2\nlr = 1\nbetas = [0, 0.9]\n\n[toy]\ndataset = "swissroll"\n\n'
                    f'[run]\nout = "{tmp_path / "toml-run"}"\ndevice = "cpu"\nsave_every = 2\n')
    shown, _ = dry_run("toy", "--config", path)
    assert (shown["train"]["iters"], shown["train"]["lr"], shown["train"]["betas"]) == (2, 1.0, [0.0, 0.9])
    assert shown["toy"]["dataset"] == "swissroll" and shown["run"]["save_every"] == 2
    assert isinstance(shown["train"]["lr"], float)
    r = cli("toy", "--config", path, "--dim", "8", "--batch-size", "16", "--plot-every", "100", "--quiet")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "toml-run" / "ckpt-0000002.safetensors").is_file()


# ---- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,words,hint", [
    ({"train": {"lrr": 1, "iters": 2}, "foo": 2}, "unknown keys foo, train.lrr", "the sections are train, run, toy"),
    ({"iters": 2}, "unknown key iters", "put iters under [train]"),
    ({"image": {"arch": "dcgan"}}, "unknown key image", "the sections are"),
    ({"command": "train", "train": {}}, "holds the options of `wgan train`, not `wgan toy`", "wgan train --config"),
    ({"device": "cpu"}, "unknown key device", "put device under [run]"),     # descriptive only in a run's file
    ({"train": {"iters": 2.5}}, "train.iters: 2.5 is not an integer", "drop the key"),
    ({"train": {"n_critic": 0}}, "train.n_critic", "--n-critic"),
    ({"train": {"penalty": "spectral"}}, "train.penalty", "--penalty"),
    ({"train": {"betas": [0.5]}}, "train.betas", "drop the key"),
    ({"run": {"tensorboard": "yes"}}, "run.tensorboard: 'yes' is not true or false", "drop the key"),
    ([1, 2], "must hold a table of sections", "--dry-run"),
])
def test_bad_files_are_refused_by_name_before_anything_is_written(tmp_path, content, words, hint):
    path = tmp_path / "options.json"
    path.write_text(json.dumps(content))
    out = tmp_path / "run"
    r = cli("toy", "--config", path, "--out", out, "--device", "cpu")
    assert r.exit_code == 2, r.output
    error, given_hint = r.stderr.splitlines()
    assert error.startswith(f"error: --config {path}") and words in error, error
    assert given_hint.startswith("hint:") and hint in given_hint, given_hint
    assert not out.exists()


def test_unreadable_files_and_generation_with_a_config(tmp_path):
    r = cli("toy", "--config", tmp_path / "missing.json")
    assert r.exit_code == 2 and "cannot read it" in r.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\n")
    r = cli("toy", "--config", broken)
    assert r.exit_code == 2 and "not valid TOML" in r.stderr
    r = cli("textgen", "--ckpt", tmp_path / "lm.safetensors", "--config", broken)
    assert r.exit_code == 2 and "--config sets training options" in r.stderr


def test_an_options_json_written_before_a_rename_is_read(tmp_path):
    """image.eval_n (the field before it was named n_eval, as the toy's and textgen's) is read as n_eval."""
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"command": "train", "image": {"dataset": "mnist", "eval_n": 123}}))
    shown, _ = dry_run("train", "--config", path)
    assert shown["image"]["n_eval"] == 123 and "eval_n" not in shown["image"]
