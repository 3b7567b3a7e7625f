"""A command refused for its input leaves nothing behind, not even the empty folder its output would have gone to:
an output's folder is checked (its nearest existing ancestor takes a new file) but made only by the write."""

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app


@pytest.fixture
def damaged(tiny_ckpt, tmp_path):
    """A checkpoint whose header reads but whose digest fails: refused only when it is loaded, after the outputs
    were checked."""
    path, _ = tiny_ckpt
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF   # the last byte of the last tensor
    bad = tmp_path / "damaged.safetensors"
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("args", [
    ["sample", "CKPT", "-n", "4", "-o", "new/deeper/grid.png"],
    ["sample", "CKPT", "-n", "4", "-o", "new/deeper/pngs/"],
    ["textgen", "--ckpt", "CKPT", "-n", "3", "--out", "new/deeper/lines.txt"],
])
def test_a_refused_checkpoint_leaves_no_output_folder(damaged, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, [str(damaged) if a == "CKPT" else a for a in args])
    assert r.exit_code == 4, r.output
    assert not (tmp_path / "new").exists()


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path, tiny_ckpt):
    path, _ = tiny_ckpt
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(app, ["sample", str(path), "-n", "4", "-o", str(tmp_path / "afile" / "sub" / "grid.png")])
    assert r.exit_code == 7, r.output
    assert f"{tmp_path / 'afile'} is a file" in r.stderr
