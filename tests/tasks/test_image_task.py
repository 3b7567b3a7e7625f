"""`wgan train` on the engine: every method learns, resume is exact, the run directory holds what it says."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from standins import write_mnist, write_pngs

from wgan_cli import models
from wgan_cli.config import ImageOptions, RunOptions, TrainConfig, resolve_train
from wgan_cli.data.samplers import DeviceImages
from wgan_cli.engine import Engine, fit
from wgan_cli.events import Artifact, StepDone
from wgan_cli.runs import train_run
from wgan_cli.image import ImageTask, validation_w_dist

pytestmark = pytest.mark.usefixtures("one_thread")


def squares(n: int = 256) -> DeviceImages:
    """28x28 images of one bright square at a random place: a distribution a tiny critic can tell from noise."""
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    corners = torch.randint(0, 20, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        images[i, 0, r:r + 8, c:c + 8] = 255
    return DeviceImages(images, None, "sigmoid", False)


@pytest.mark.parametrize("objective,penalty", [("wgan", "gp"), ("wgan", "lp"), ("wgan", "clip"),
                                               ("gan", "none"), ("lsgan", "none")])
def test_each_method_lowers_its_critic_loss(objective, penalty):
    cfg = resolve_train(TrainConfig(objective=objective, penalty=penalty, batch_size=8, iters=8, seed=0))
    torch.manual_seed(0)
    G, D = models.build(dict(arch="dcgan", dim=2, size=28, channels=1))
    engine = Engine(G, D, squares(), cfg)
    events = []
    fit(engine, sinks=[events.append], log_every=2)
    losses = [e.stats["loss_d"] for e in events if isinstance(e, StepDone)]
    assert losses[-1] < losses[0], losses


def test_validation_estimate_leaves_training_untouched():
    cfg = resolve_train(TrainConfig(batch_size=8, iters=2, n_critic=1))
    torch.manual_seed(0)
    G, D = models.build(dict(arch="dcgan", dim=4, size=32, channels=1))   # BN in G: running stats must survive
    engine = Engine(G, D, squares_32(), cfg)
    fit(engine, log_every=1)
    before = {k: v.clone() for k, v in engine.state_tensors().items()}
    a = validation_w_dist(engine, squares_32(), 24)
    b = validation_w_dist(engine, squares_32(), 24)
    after = engine.state_tensors()
    assert a == b   # same held-out images, same fakes, every time
    assert all(torch.equal(before[k], after[k]) for k in before)


def squares_32():
    d = squares(64)
    return DeviceImages(torch.nn.functional.pad(d.images, (2, 2, 2, 2)), None, "tanh", False)


def train_images(tmp_path, name, dataset, cfg, sinks=(), **kw) -> dict:
    base = dict(dataset=dataset, data_dir=str(tmp_path), arch="dcgan", dim=2, sample_every=100, eval_every=100,
                n_val=4, workers=0, download=False)
    run = RunOptions(out=str(tmp_path / name), device="cpu", log_every=2, save_every=100)
    return train_run(ImageTask(ImageOptions(**{**base, **kw})), cfg, run, sinks)


def _weights(path):
    return load_file(str(path))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mnist", "folder", "folder-mapped"])
def test_resume_is_bit_identical(tmp_path, dataset):
    """N iterations straight == N/2, then a fresh process-like start that resumes for N/2 (CPU). A folder is
    prepared once and held in memory; with --memory-budget 0 it is read from the memory map in the seeded order."""
    kw = {"memory_budget": 0.0} if dataset == "folder-mapped" else {}
    if dataset == "mnist":
        write_mnist(tmp_path)
        name = "mnist"
    else:
        write_pngs(tmp_path / "pics", 80, size=32)
        name = f"folder:{tmp_path / 'pics'}"
    cfg = TrainConfig(batch_size=4, n_critic=2, seed=3, ema_decay=0.9)
    straight = train_images(tmp_path, "a", name, dataclasses.replace(cfg, iters=4), **kw)
    train_images(tmp_path, "b", name, dataclasses.replace(cfg, iters=2), **kw)
    resumed = train_images(tmp_path, "b", name, dataclasses.replace(cfg, iters=4), **kw)
    assert straight["step"] == resumed["step"] == 4
    a, b = _weights(tmp_path / "a" / "ckpt-0000004.safetensors"), _weights(tmp_path / "b" / "ckpt-0000004.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("G_ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert straight["val_w_dist"] == resumed["val_w_dist"]   # the validation split: 5% of 80 = one batch


@pytest.mark.slow
def test_run_directory_contents(tmp_path):
    write_mnist(tmp_path)
    events = []
    result = train_images(tmp_path, "run", "mnist", TrainConfig(batch_size=8, n_critic=1, iters=4),
                          [events.append], sample_every=2, eval_every=2, dim=4)
    run = tmp_path / "run"
    assert (run / "generator.safetensors").is_file() and (run / "ckpt-0000004.safetensors").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["iter-0000002.png", "iter-0000004.png"]
    assert (run / "figures" / "loss-curves.png").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and all("val_w_dist" in r for r in evals)
    assert result["val_w_dist"] == evals[-1]["val_w_dist"]
    options = json.loads((run / "options.json").read_text())
    assert options["model"] == {"arch": "dcgan", "dim": 4, "size": 28, "channels": 1, "z_dim": 128,
                                "critic_norm": "none", "variant": "default"}
    assert options["train"]["gp_weight"] == 10.0
    assert options["run"]["out"] == str(run) and options["image"]["dataset"] == "mnist"
    shown = [(e.kind, e.path) for e in events if isinstance(e, Artifact)]
    assert shown == [("samples", str(run / "samples" / "iter-0000002.png")),
                     ("samples", str(run / "samples" / "iter-0000004.png")),
                     ("figure", str(run / "figures" / "loss-curves.png"))]
    logged = [r for r in rows if r["event"] == "artifact"]
    assert [(r["kind"], r["path"]) for r in logged] == shown
