"""benchmarks/prepared_folder.py runs end to end on the CPU at tiny sizes and reports what it measured."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import prepared_folder  # noqa: E402


def test_tiny_prepared_folder_benchmark(tmp_path, capsys):
    out = tmp_path / "bench.json"
    prepared_folder.main(["--tiny", "--photos", str(tmp_path / "photos"), "--json", str(out)])
    r = json.loads(out.read_text())
    assert r["photos"] == r["prepared"] == 16 and r["skipped"] == {}   # every kind of photo it makes is readable
    assert r["prepare_images_s"] > 0 and r["second_use_s"] < r["first_use_s"]
    # the ratio is rounded to 0.01 and each rate to 0.1 photos/s: 0.05 bounds both roundings
    assert abs(r["decode_new_vs_old"] - r["decode_per_cpu_s"]["new"] / r["decode_per_cpu_s"]["old"]) < 0.05
    assert set(r["train_it_s"]) == {"array", "prepared", "mapped"} and all(v > 0 for v in r["train_it_s"].values())
    assert abs(r["prepared_vs_array"] - r["train_it_s"]["prepared"] / r["train_it_s"]["array"]) < 1e-2
    assert "cached, no decoding" in capsys.readouterr().out
