"""benchmarks/throughput.py runs end to end on the CPU at tiny sizes and reports what it says."""

import pytest
import json
import sys

from paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import throughput  # noqa: E402


@pytest.mark.slow
def test_tiny_benchmark_writes_a_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    throughput.main(["--tiny", "--cases", "toy,dcgan", "--device", "cpu", "--warmup", "1", "--iters", "1",
                     "--repeats", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    assert [r["case"] for r in data["results"]] == ["toy", "dcgan"]
    for r in data["results"]:
        assert r["engine"]["ms_per_iter"] > 0 and r["eager"]["ms_per_iter"] > 0
        assert abs(r["speedup"] - r["eager"]["ms_per_iter"] / r["engine"]["ms_per_iter"]) < 1e-9
        assert r["flop_per_iter"] > 0
    table = capsys.readouterr().out
    assert "speedup" in table and "toy" in table and "dcgan" in table
