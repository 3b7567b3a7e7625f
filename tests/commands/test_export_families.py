"""`wgan export`: every generator family exports to ONNX and .pt2, and the exported model computes what the
checkpoint's model computes, on latents neither exporter saw (a batch size other than the traced one)."""

import io
import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from checkpoints import FAMILIES, make_checkpoint
from wgan_cli import api, export
from wgan_cli.cli import app
from wgan_cli.data.pixels import to_uint8

pytestmark = pytest.mark.usefixtures("one_thread")
onnxruntime = pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
pytest.importorskip("onnxscript", reason="the [export] extra is not installed")

# float32 re-implementations of the same graph (other kernels, other summation orders) differ by a few ulps per
# operation: |out| <= 1 through a handful of layers of tiny widths gives ~1e-6. 1e-4 is the acceptance bound,
# 100x above that, and far below the 1/128 a pixel level spans.
FLOAT_BOUND = 1e-4


def reference(G: api.Generator, args) -> torch.Tensor:
    with torch.no_grad():
        return G.module(*args)


def run_onnx(path, args):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["z", "classes"][:len(args)]
    return torch.from_numpy(session.run(None, {n: a.numpy() for n, a in zip(names, args)})[0])


def run_pt2(path, args):
    with torch.no_grad():
        return torch.export.load(io.BytesIO(path.read_bytes())).module()(*args)


def uint8_agreement(got: torch.Tensor, want: torch.Tensor, pixel_range: str) -> float:
    return float((to_uint8(got, pixel_range) == to_uint8(want, pixel_range)).float().mean())


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_exports_to_onnx_and_pt2_and_computes_the_same(tmp_path, family):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", family)
    G = api.load(ckpt)
    args = export.example_inputs(G, 5, seed=7)   # 5 rows: neither the traced batch (2) nor the checked one (16)
    want = reference(G, args)
    for fmt, run in ((".onnx", run_onnx), (".pt2", run_pt2)):
        path, check = export.export(G, tmp_path / f"g{fmt}")
        assert check.max_abs_diff <= FLOAT_BOUND, (fmt, check)
        got = run(path, args)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert float((got - want).abs().max()) <= FLOAT_BOUND, fmt
        if G.spec.task == "image":   # the bytes `wgan sample` would save: exact on >= 99.9% of pixels
            assert uint8_agreement(got, want, G.spec.pixel_range) >= 0.999, fmt
        if G.spec.task == "text":
            assert float((got.argmax(-1) == want.argmax(-1)).float().mean()) >= 0.99, fmt
        one = run(path, tuple(a[:1] for a in args))   # the batch is dynamic: one row alone gives its own output
        assert float((one[0] - want[0]).abs().max()) <= FLOAT_BOUND


@pytest.mark.slow
def test_uint8_and_ids_heads_quantise_as_sample_saves(tmp_path):
    ckpt = make_checkpoint(tmp_path / "c.safetensors", "resnet-cond")
    G = api.load(ckpt)
    path, check = export.export(G, tmp_path / "c.onnx", head="uint8")
    assert check.equal_fraction >= 0.999 and check.max_abs_diff <= 1
    z, y = G.latents(seeds=range(6))
    got = run_onnx(path, (z, y))
    assert got.dtype == torch.uint8 and got.shape == (6, 32, 32, 3)
    # exactly the images `wgan sample --seeds 0-5` saves (G.sample is that path), on >= 99.9% of the bytes
    assert float((got == G.sample(seeds=range(6))).float().mean()) >= 0.999
    path, _ = export.export(G, tmp_path / "c.pt2", head="uint8-nchw")
    assert run_pt2(path, (z, y)).shape == (6, 3, 32, 32)
    text = api.load(make_checkpoint(tmp_path / "t.safetensors", "text"))
    path, check = export.export(text, tmp_path / "t.pt2", head="ids")
    ids = run_pt2(path, text.latents(seeds=range(4))[:1])
    assert ids.dtype == torch.int64 and float((ids == text.sample(seeds=range(4))).float().mean()) >= 0.99


@pytest.mark.slow
def test_metadata_names_the_checkpoint_digest_spec_and_head(tmp_path):
    import onnx

    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan28")
    r = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "g.onnx"), "--head", "uint8"])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout and "checked: 100.0000% of values identical" in r.stdout
    meta = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "g.onnx")).metadata_props}["wgan"])
    G = api.load(ckpt)
    assert meta["digest"] == G.spec.digest and meta["head"] == "uint8" and meta["spec"]["size"] == 28
    assert meta["spec"]["pixel_range"] == "sigmoid" and meta["inputs"] == {"z": ["batch", 16, "float32"]}
    extra = {"wgan.json": ""}
    export.export(G, tmp_path / "g.pt2")
    torch.export.load(str(tmp_path / "g.pt2"), extra_files=extra)
    assert json.loads(extra["wgan.json"])["digest"] == G.spec.digest


def test_requests_that_cannot_be_met_are_refused_before_work(tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan28")
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "g.tflite")])
    assert r.exit_code == 2 and "unknown format" in r.output and ".pt2" in r.output
    r = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "g.onnx"), "--head", "ids"])
    assert r.exit_code == 2 and "does not fit an image model" in r.output
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # as if the [export] extra were not installed
    r = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "g.onnx")])
    assert r.exit_code == 2 and "onnxruntime" in r.output and "pip install 'wgan-cli[export]'" in r.output
    assert not (tmp_path / "g.onnx").exists() and not list(tmp_path.glob(".g.onnx*"))


def test_a_disagreeing_export_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", "toy")
    G = api.load(ckpt)
    real_run = export.run_pt2
    monkeypatch.setattr(export, "run_pt2", lambda path, args: real_run(path, args) + 0.01)
    (tmp_path / "g.pt2").write_bytes(b"an older export")
    with pytest.raises(export.OutputError, match="disagrees"):
        export.export(G, tmp_path / "g.pt2")
    assert (tmp_path / "g.pt2").read_bytes() == b"an older export"
