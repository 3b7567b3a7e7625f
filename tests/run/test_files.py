"""files.atomic_path: the destination appears whole or not at all; failures leave the previous file, no temp file,
and an OutputError naming the path."""

import os
import stat

import pytest

from wgan_cli.errors import OutputError
from wgan_cli.files import atomic_path, read_header, write_safetensors


def test_writes_through_a_temp_file_in_the_same_folder(tmp_path):
    out = tmp_path / "sub" / "walk.gif"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp != out
        assert not out.exists()                                   # nothing at the destination while writing
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert [p.name for p in out.parent.iterdir()] == ["walk.gif"]


def test_failure_in_the_body_keeps_the_previous_file(tmp_path):
    out = tmp_path / "grid.png"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_os_errors_become_output_errors(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write .*not-a-folder"):
        with atomic_path(blocker / "walk.mp4"):
            pass
    out = tmp_path / "walk.gif"
    with pytest.raises(OutputError, match="No space left"):
        with atomic_path(out):
            raise OSError(28, "No space left on device")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]


def test_the_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640   # 0666 & ~027, not mkstemp's 0600


def test_safetensors_header_is_read_and_a_cut_file_is_not_one(tmp_path):
    import torch

    path = write_safetensors(tmp_path / "t.safetensors", {"x": torch.arange(10.0)}, {"k": "v"})
    header = read_header(path)
    assert header["__metadata__"] == {"k": "v"} and header["x"]["shape"] == [10]
    data = path.read_bytes()
    path.write_bytes(data[:-4])   # the tensor data now ends beyond the end of the file
    assert read_header(path) is None
    path.write_bytes(b"\xff" * 16)
    assert read_header(path) is None
