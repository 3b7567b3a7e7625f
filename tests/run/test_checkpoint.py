"""The checkpoint format: round trip, atomic and checked loads, refusals with clear errors."""

import struct

import numpy as np
import pytest
from checkpoints import save_generator
import torch
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.errors import CheckpointError


SPEC = {"arch": "toy-mlp", "dim": 4, "depth": 1, "z_dim": 2, "data_dim": 2}


def save_small(path, kind="generator", task="toy"):
    """A real (tiny) toy generator: the loader checks the tensors against the model its metadata builds."""
    from wgan_cli import models

    G, _ = models.build_seeded(SPEC, 0)
    tensors = {"G." + k: v for k, v in G.state_dict().items()}
    return checkpoint.save(path, tensors, kind=kind, task=task, model=SPEC, step=3), tensors


def test_round_trip_and_metadata(tmp_path):
    path, tensors = save_small(tmp_path / "a.safetensors")
    loaded, meta = checkpoint.load(path, kind="generator", task="toy")
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert meta["kind"] == "generator" and meta["task"] == "toy" and meta["step"] == 3
    assert meta["format"] == "wgan-checkpoint" and len(meta["digest"]) == 64
    assert not list(tmp_path.glob("*.tmp"))   # the temporary file was renamed away


def test_one_changed_byte_is_caught(tmp_path):
    path, _ = save_small(tmp_path / "a.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        checkpoint.load(path)


def test_truncated_and_garbage_files_are_refused(tmp_path):
    path, _ = save_small(tmp_path / "a.safetensors")
    data = path.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(tmp_path / "t.safetensors")
    (tmp_path / "short.safetensors").write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.read_meta(tmp_path / "short.safetensors")
    huge = struct.pack("<Q", 10**15) + b"{}"
    (tmp_path / "h.safetensors").write_bytes(huge)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        checkpoint.read_meta(tmp_path / "h.safetensors")


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a wgan checkpoint"):
        checkpoint.load(tmp_path / "other.safetensors")


TEXT_SPEC = {"arch": "text-resnet", "vocab_size": 4, "seq_len": 4, "dim": 2, "z_dim": 3, "n_blocks": 1}


def save_text(path):
    return save_generator(path, TEXT_SPEC)


def test_wrong_kind_or_task_is_refused(tmp_path):
    path = save_text(tmp_path / "g.safetensors")
    with pytest.raises(CheckpointError, match="a text checkpoint, but --resume needs a toy one"):
        checkpoint.load(path, kind="train-state", task="toy", command="--resume")
    with pytest.raises(CheckpointError, match="a generator checkpoint"):
        checkpoint.load(path, kind="train-state", task="text")


@pytest.mark.parametrize("command,kind,args,needs", [
    ("wgan score", "generator", ["score", "CKPT", "--ref", "REF"], "image"),
    ("wgan textgen --ckpt", "generator", ["textgen", "--ckpt", "CKPT", "--out", "OUT"], "text"),
    ("--resume", "train-state", ["train", "--dataset", "mnist", "--data-dir", "DATA", "--dim", "4", "--resume",
                                 "CKPT", "--out", "OUT", "--device", "cpu", "--quiet"], "image"),
], ids=["score", "textgen", "train-resume"])
def test_every_command_refuses_a_checkpoint_of_another_task(tmp_path, command, kind, args, needs):
    """Each command asks checkpoint.check for its own task: a toy checkpoint is refused with one error naming
    both tasks and a hint naming the command that takes it, before anything is written."""
    from standins import write_mnist

    toy = save_generator(tmp_path / "toy.safetensors", SPEC, kind=kind)
    ref = tmp_path / "ref.npz"
    np.savez(ref, images=np.zeros((4, 8, 8, 3), np.uint8))
    write_mnist(tmp_path / "data")
    out = tmp_path / "written" / ("run" if args[0] == "train" else "lines.txt")
    where = {"CKPT": str(toy), "REF": str(ref), "DATA": str(tmp_path / "data"), "OUT": str(out)}
    r = CliRunner().invoke(app, [where.get(a, a) for a in args])
    assert r.exit_code == 4, r.output
    lines = r.output.strip().splitlines()
    assert lines[0] == f"error: {toy}: a toy checkpoint, but {command} needs a {needs} one", r.output
    assert lines == [lines[0], "hint: sample toy checkpoints with `wgan sample CKPT -o points.csv`"], r.output
    assert not (tmp_path / "written").exists()


def test_non_finite_weights_are_never_saved(tmp_path):
    with pytest.raises(CheckpointError, match="non-finite"):
        checkpoint.save(tmp_path / "n.safetensors", {"w": torch.tensor([1.0, float("nan")])},
                        kind="generator", task="toy", model={})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".ckpt"])
def test_pickle_files_are_refused_without_opening(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04not really a pickle")
    result = CliRunner().invoke(app, ["sample", str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 4
    assert "pickle" in result.output and "never" in result.output


def test_sample_refuses_damaged_checkpoint_with_one_line(tmp_path):
    path, _ = save_small(tmp_path / "a.safetensors")
    path.write_bytes(path.read_bytes()[:-4])
    result = CliRunner().invoke(app, ["sample", str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 4
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ") and "truncated" in lines[0] and lines[1].startswith("hint: ")
    assert not (tmp_path / "p.csv").exists()
