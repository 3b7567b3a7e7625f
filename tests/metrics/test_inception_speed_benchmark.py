"""benchmarks/inception_speed.py runs end to end on the CPU at tiny sizes and reports consistent numbers."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import inception_speed  # noqa: E402


@pytest.mark.slow
def test_tiny_inception_speed_benchmark(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:   # two threads: the CPU split (metrics/fastpath.Split) is one of the paths
        inception_speed.main(["--tiny", "--threads", "2", "--no-training", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    r = json.loads(out.read_text())
    # FID Inception-v3 at 299 x 299: 5.71 G multiply-adds, counted as 2 FLOPs each (real or random weights alike)
    assert 11.3 < r["gflop_per_image"] < 11.5
    assert set(r["paths"]) == {"eager NCHW", "eager", "eager split"}   # --tiny compiles nothing
    peak = r["matmul_gflop_s"]["median"]
    for path in r["paths"].values():
        assert path["images_per_s"] > 0
        # shares are the path's GFLOP/s over the same run's matmul; GFLOP/s is images/s times the count above
        assert path["share_of_matmul"] == pytest.approx(path["gflop_s"] / peak, rel=1e-9)
        assert path["gflop_s"] == pytest.approx(path["images_per_s"] * r["gflop_per_image"], rel=1e-9)
    assert set(r["pipeline_s_per_image"]) == {"decode PNG files", "resize to 299 (tf1)", "sample the 28 px dcgan",
                                              "statistics and FID (per image of 2000)"}
    assert all(s > 0 for s in r["pipeline_s_per_image"].values())
    assert "eager NCHW" in capsys.readouterr().out
