"""The language GAN end to end: it learns a regular corpus, resumes exactly, and generates from checkpoints."""

import json
import random

import pytest
import torch
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.config import RunOptions, TextOptions, TrainConfig
from wgan_cli.errors import CheckpointError
from wgan_cli.runs import train_run
from wgan_cli.textgen import TextTask, generate, load_corpus
from wgan_cli.ui import read_jsonl

WORDS = ["cat", "dog", "sun"]


def regular_corpus(path, n=400, seed=0):
    """Lines of 2-3 words from a three-word vocabulary: a trivially regular language."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 3))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def small_run(tmp_path, iters, out="run", log_every=2, save_every=2, **kw):
    opts = dict(corpus=str(regular_corpus(tmp_path / "words.txt")), seq_len=12, dim=16, heldout=40, eval_every=2,
                n_eval=64)
    opts.update(kw)
    cfg = TrainConfig(iters=iters, n_critic=2, batch_size=8, seed=3)
    run = RunOptions(out=str(tmp_path / out), device="cpu", log_every=log_every, save_every=save_every)
    return TextOptions(**opts), cfg, run


def train_textgen(opts, cfg, run) -> dict:
    return train_run(TextTask(opts), cfg, run)


@pytest.mark.slow
def test_learns_a_regular_corpus(tmp_path, one_thread):
    opts, _, run = small_run(tmp_path, 0, eval_every=1000, save_every=1000, log_every=100)
    cfg = TrainConfig(iters=300, n_critic=2, batch_size=32, lr=2e-3, seed=0)
    result = train_textgen(opts, cfg, run)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    untrained = next(r for r in rows if r["event"] == "eval" and r["step"] == 0)
    assert untrained["js1"] > 0.15                      # random characters: far from the corpus
    assert result["js1"] < untrained["js1"] / 3         # trained: the right letters in the right amounts
    assert result["js2"] < untrained["js2"] / 3         # ... and in the right order
    samples = (tmp_path / "run" / "samples" / "iter-0000300.txt").read_text().splitlines()
    assert len(samples) == 64
    words = [w for line in samples for w in line.split()]
    assert sum(w in WORDS for w in words) > len(words) / 3   # whole words of the corpus appear


@pytest.mark.slow
def test_resume_is_exact_and_evaluation_leaves_training_alone(tmp_path):
    straight = train_textgen(*small_run(tmp_path, 4, out="straight", eval_every=1))
    train_textgen(*small_run(tmp_path, 2, out="resumed"))
    resumed = train_textgen(*small_run(tmp_path, 4, out="resumed"))
    a, _ = checkpoint.load(tmp_path / "straight" / "ckpt-0000004.safetensors")
    b, _ = checkpoint.load(tmp_path / "resumed" / "ckpt-0000004.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight["js1"] == resumed["js1"]
    # evaluating every iteration or only at the end trains the same model (evaluation has its own RNG)
    train_textgen(*small_run(tmp_path, 4, out="rare-eval", eval_every=1000))
    c, _ = checkpoint.load(tmp_path / "rare-eval" / "ckpt-0000004.safetensors")
    assert all(torch.equal(a[k], c[k]) for k in a)
    # the real-vs-real floor is logged once, at the start of the run
    rows = read_jsonl(tmp_path / "resumed" / "metrics.jsonl")
    assert sum("js1_real" in r for r in rows) == 1
    assert (tmp_path / "resumed" / "samples" / "iter-0000004.txt").is_file()


@pytest.mark.slow
def test_the_vocabulary_travels_in_the_checkpoint_and_generation_runs_on_cpu(tmp_path):
    opts, cfg, run = small_run(tmp_path, 2, output=str(tmp_path / "lm.safetensors"))
    train_textgen(opts, cfg, run)
    meta = checkpoint.read_meta(tmp_path / "lm.safetensors")
    corpus = load_corpus(opts)
    assert meta["kind"] == "generator" and meta["task"] == "text"
    assert meta["extra"]["vocab"] == corpus.charmap.to_json() and meta["extra"]["vocab"][0] == ""
    lines, metrics = generate(tmp_path / "lm.safetensors", 5, seed=1, device=torch.device("cpu"),
                              eval_file=tmp_path / "words.txt")
    assert len(lines) == 5 and all(len(s) <= 12 and not s.endswith("`") for s in lines)
    assert set(metrics) >= {"js1", "js2", "js3", "js4"} and metrics["samples"] == 640
    again, _ = generate(tmp_path / "lm.safetensors", 5, seed=1, device=torch.device("cpu"))
    assert again == lines   # --seed fixes the output

    result = CliRunner().invoke(app, ["textgen", "--ckpt", str(tmp_path / "lm.safetensors"), "-n", "3",
                                      "--device", "cpu", "--out", str(tmp_path / "gen.txt")])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "gen.txt").read_text().splitlines()) == 3


@pytest.mark.parametrize("args, code, words", [
    (["--corpus", "/nonexistent/corpus.txt"], 3, "/nonexistent/corpus.txt"),
    ([], 2, "exactly one of --corpus"),
    (["--corpus", "CORPUS", "-o", "lm.pt"], 4, "pickle"),
    (["--corpus", "CORPUS", "-o", "lm.txt"], 2, ".safetensors"),
])
def test_bad_input_gives_one_clear_error(tmp_path, args, code, words):
    corpus = str(regular_corpus(tmp_path / "c.txt"))
    args = [a.replace("CORPUS", corpus) for a in args]
    result = CliRunner().invoke(app, ["textgen", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == code, result.output
    assert words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "metrics.jsonl").exists()   # refused before any work


def test_billion_word_offline_says_how_to_provide_it(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("WGAN_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["textgen", "--corpus", "billion-word", "--out", str(tmp_path / "run")])
    assert result.exit_code == 3
    assert "billion-word" in result.output and "training-monolingual.tokenized.shuffled" in result.output


def test_dry_run_shows_the_paper_defaults():
    result = CliRunner().invoke(app, ["textgen", "--corpus", "x.txt", "--dry-run"])
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown["train"]["n_critic"] == 10 and shown["train"]["gp_weight"] == 10.0
    assert shown["train"]["betas"] == [0.5, 0.9] and shown["train"]["batch_size"] == 64
    assert shown["textgen"]["seq_len"] == 32 and shown["textgen"]["dim"] == 512
    assert shown["command"] == "textgen" and shown["run"]["out"] == "runs/textgen"


def test_resuming_on_a_corpus_with_another_character_map_is_refused(tmp_path):
    train_textgen(*small_run(tmp_path, 2))
    opts, cfg, run = small_run(tmp_path, 4)
    (tmp_path / "words.txt").write_text("xyz qrs\n" * 400)   # the same file name, other characters
    with pytest.raises(CheckpointError, match="vocab"):
        train_run(TextTask(opts), cfg, run)
