"""--fps has a range, checked before any work: a GIF keeps each frame's time in hundredths of a second, so
above 100 fps (infinity among them) a walk would be written with no frame time at all."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from wgan_cli.cli import app


@pytest.mark.parametrize("fps", ["inf", "1e308", "101", "0.05", "nan"])
def test_fps_out_of_range_is_refused_before_anything_is_written(tiny_ckpt, tmp_path, fps):
    path, _ = tiny_ckpt
    out = tmp_path / "walk.gif"
    r = CliRunner().invoke(app, ["sample", str(path), "-n", "4", "--interpolate", "--fps", fps, "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and "--fps" in r.stderr
    assert not out.exists()


def test_fps_at_the_top_of_the_range_keeps_a_frame_time(tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    out = tmp_path / "walk.gif"
    r = CliRunner().invoke(app, ["sample", str(path), "-n", "4", "--interpolate", "--fps", "100", "-o", str(out)])
    assert r.exit_code == 0, r.output
    with Image.open(out) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 10   # 1000 ms / 100 fps: one hundredth of a second
