"""No output replaces one of the command's inputs, and no output replaces a wgan checkpoint unless it is a
checkpoint of the same run (the model and data a --resume would accept): exit code 2 with a hint, before any
work, and the file is left byte for byte as it was. One check (outputs.check_output) serves every writer."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from standins import write_pngs
from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.errors import UsageError


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def refused(r, flag, words):
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {flag} ") and words in lines[0], r.stderr
    assert lines[1].startswith(f"hint: give {flag} another path")


@pytest.fixture
def ckpt(tiny_ckpt):
    path, _ = tiny_ckpt
    return path, path.read_bytes()


def test_textgen_out_that_is_its_own_checkpoint_is_refused(ckpt):
    path, data = ckpt
    refused(invoke("textgen", "--ckpt", path, "--out", path, "-n", 3), "--out", "is also --ckpt")
    assert path.read_bytes() == data


def test_textgen_out_that_is_its_eval_text_is_refused(ckpt, tmp_path):
    path, _ = ckpt
    text = tmp_path / "heldout.txt"
    text.write_text("some held-out line\n")
    refused(invoke("textgen", "--ckpt", path, "--eval", text, "--out", text, "-n", 3), "--out", "is also --eval")
    assert text.read_text() == "some held-out line\n"


def test_textgen_out_over_another_checkpoint_is_refused(ckpt, tmp_path):
    path, data = ckpt
    refused(invoke("textgen", "--ckpt", tmp_path / "lm.safetensors", "--out", path, "-n", 3),
            "--out", "is a wgan image checkpoint")
    assert path.read_bytes() == data


def test_score_save_stats_over_a_generator_is_refused(ckpt, tmp_path):
    path, data = ckpt
    refused(invoke("score", "--ref", tmp_path / "images", "--save-stats", path), "--save-stats",
            "is a wgan image checkpoint")
    assert path.read_bytes() == data


@pytest.mark.parametrize("name", ["grid.png", "samples.npz", "walk.gif", "pngs/000000.png"])
def test_sample_output_over_a_checkpoint_of_any_name_is_refused(ckpt, tmp_path, name):
    path, data = ckpt
    target = tmp_path / name
    target.parent.mkdir(exist_ok=True)
    shutil.copy(path, target)   # a checkpoint saved under a name that sample would write
    out = tmp_path / "pngs/" if name.startswith("pngs/") else target
    extra = ["--interpolate"] if name.endswith(".gif") else []
    refused(invoke("sample", path, "-n", 4, *extra, "-o", f"{out}/" if name.startswith("pngs/") else out),
            "-o", "is a wgan image checkpoint")
    assert target.read_bytes() == data


def test_report_into_one_of_its_run_directories_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "options.json").write_text(json.dumps({"command": "toy", "train": {}, "run": {}, "toy": {}}))
    (run / "metrics.jsonl").write_text(json.dumps({"event": "step", "step": 1, "w_dist": 0.5}) + "\n")
    before = sorted(run.iterdir())
    refused(invoke("report", run, "-o", run), "-o", "is also run directory")
    assert sorted(run.iterdir()) == before


def test_training_into_its_own_image_folder_is_refused(tmp_path):
    pictures = tmp_path / "pictures"
    write_pngs(pictures, 4, size=8)
    before = sorted(pictures.iterdir())
    refused(invoke("train", "--dataset", f"folder:{pictures}", "--out", pictures, "--iters", 1, "--batch-size", 2,
                   "--dim", 4, "--device", "cpu", "--quiet"), "--out", "is also --dataset")
    assert sorted(pictures.iterdir()) == before


def test_a_checkpoint_is_replaced_only_by_one_of_the_same_model_and_data(ckpt):
    from wgan_cli.outputs import check_output

    path, _ = ckpt
    meta = checkpoint.read_meta(path)
    same = {"task": meta["task"], "model": meta["model"], "same": {}}
    assert check_output(path, "-o", checkpoint=same) == path   # what a resumed run writes again: allowed
    with pytest.raises(UsageError, match="another model or data"):
        check_output(path, "-o", checkpoint={**same, "model": {**meta["model"], "z_dim": 8}})
    with pytest.raises(UsageError, match="another model or data"):
        check_output(path, "-o", checkpoint={**same, "same": {"vocab": ["a", "b"]}})
    with pytest.raises(UsageError, match="this output would replace it"):
        check_output(path, "-o")


def test_textgen_training_output_over_another_run_s_checkpoint_is_refused_before_training(ckpt, tmp_path):
    path, data = ckpt
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i} of text\n" for i in range(40)))
    out = tmp_path / "run"
    refused(invoke("textgen", "--corpus", corpus, "--dim", 4, "--batch-size", 4, "--heldout", 4, "--iters", 1,
                   "--out", out, "-o", path, "--device", "cpu", "--quiet"), "-o", "another model or data")
    assert path.read_bytes() == data and not out.exists()


@pytest.mark.slow
def test_resuming_from_a_path_into_another_run_s_directory_is_refused(tmp_path):
    toy = ["toy", "--iters", 2, "--batch-size", 16, "--device", "cpu", "--quiet"]
    assert invoke(*toy, "--dim", 8, "--out", tmp_path / "a").exit_code == 0
    assert invoke(*toy, "--dim", 16, "--out", tmp_path / "b").exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir() if p.is_file()}
    # b's model, resumed into a: a's generator.safetensors would be replaced and its train-states pruned
    r = invoke(*toy[:2], 4, *toy[3:], "--dim", 16, "--out", tmp_path / "a", "--resume",
               tmp_path / "b" / "ckpt-0000002.safetensors")
    refused(r, "--out", "another model or data")
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir() if p.is_file()} == before
