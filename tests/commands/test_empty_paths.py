"""An empty path (`--out "$UNSET"`) is refused with exit code 2 by every option that names a path: it would
silently mean the current folder, and the command would write run files or samples among the user's files."""

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app

TOY = ["toy", "--iters", "1", "--dim", "8", "--batch-size", "16", "--device", "cpu"]


@pytest.mark.parametrize("args", [
    [*TOY, "--out", ""],
    [*TOY, "--out", "run", "--resume", ""],
    [*TOY, "--out", "run", "--config", ""],
    ["train", "--dataset", "mnist", "--iters", "1", "--out", ""],
    ["train", "--dataset", "mnist", "--iters", "1", "--out", "run", "--data-dir", ""],
    ["sample", "CKPT", "-n", "2", "-o", ""],
    ["sample", ""],
    ["textgen", "--ckpt", "CKPT", "--out", ""],
    ["textgen", "--corpus", "corpus.txt", "--out", "run", "-o", ""],
    ["score", "--ref", "images", "--save-stats", ""],
    ["score", "", "--ref", "images"],
    ["report", "run", "-o", ""],
])
def test_an_empty_path_is_refused_and_nothing_is_written(tiny_ckpt, tmp_path, monkeypatch, args):
    ckpt, _ = tiny_ckpt
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    r = CliRunner().invoke(app, [str(ckpt) if a == "CKPT" else a for a in args])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and "an empty path" in r.stderr, r.stderr
    assert set(tmp_path.iterdir()) == before


def test_an_empty_path_in_a_config_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "options.toml").write_text('[run]\nout = ""\n')
    r = CliRunner().invoke(app, [*TOY, "--config", "options.toml"])
    assert r.exit_code == 2, r.output
    assert "run.out" in r.stderr and "an empty path" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["options.toml"]
