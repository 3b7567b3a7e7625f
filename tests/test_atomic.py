"""atomic_path: the destination appears whole or not at all; failures leave the previous file and no temp file."""

import pytest

from wgan_cli.atomic import atomic_path
from wgan_cli.errors import OutputError


def test_writes_through_a_temp_file_in_the_same_folder(tmp_path):
    out = tmp_path / "sub" / "walk.gif"
    with atomic_path(out, "animation") as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".gif" and tmp != out
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
    with pytest.raises(OutputError, match="cannot write video .*not-a-folder"):
        with atomic_path(blocker / "walk.mp4", "video"):
            pass
    out = tmp_path / "walk.gif"
    with pytest.raises(OutputError, match="No space left"):
        with atomic_path(out, "animation"):
            raise OSError(28, "No space left on device")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]
