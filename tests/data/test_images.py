"""Datasets read from small stand-in files in each dataset's own on-disk format, written by the tests."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from standins import write_cifar10, write_mnist, write_pngs
from wgan_cli.data.formats import read_cifar_batch
from wgan_cli.data.images import load_image_data
from wgan_cli.data.pixels import scale_real, to_uint8_nhwc
from wgan_cli.data.samplers import DeviceImages
from wgan_cli.errors import DataError, UsageError

FASHION = Path("/usr/share/datasets/fashion-mnist")


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- pixels ------------------------------------------------------------------------------------------------
def test_to_uint8_matches_official_conversion():
    g = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    expected = [int((v + 1) * 255.99 / 2) for v in g.flatten().tolist()]
    out = to_uint8_nhwc(g, "tanh")
    assert out.shape == (1, 1, 5, 1) and out.dtype == np.uint8
    assert out.flatten().tolist() == expected == [0, 63, 127, 255, 255]
    s = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    assert to_uint8_nhwc(s, "sigmoid").flatten().tolist() == [int(v * 255.99) for v in (0.0, 0.5, 1.0)]


def test_dequantisation_as_the_resnet_script():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8).repeat(1000)
    out = scale_real(x, "tanh", True, torch.Generator().manual_seed(0))
    base = 2 * (x.float() / 256 - 0.5)
    noise = out - base
    assert noise.min() >= 0 and noise.max() < 1 / 128 + 1e-6
    # U(0, 1/128) has mean 1/256 and std 1/(128 sqrt 12) = 2.26e-3: the mean of 3,000 draws is 1/256 within
    # 4.1e-5 (one std), so 2e-4 is ~5 std; the draws come from a seeded CPU generator, the same on every machine
    assert abs(noise.mean().item() - 1 / 256) < 2e-4
    plain = scale_real(x, "tanh", False, None)
    assert plain.min() == -1 and plain.max() == 1
    assert scale_real(x, "sigmoid", False, None).max() == 1


def test_device_sampler_draws_only_from_the_given_generator():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    data = DeviceImages(images, torch.arange(50), "tanh", True)
    a, ya = data.sample(8, torch.Generator().manual_seed(3))
    torch.manual_seed(123)   # the global RNG must not matter
    b, yb = data.sample(8, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert a.shape == (8, 1, 4, 4)


# ---- stand-ins per dataset ---------------------------------------------------------------------------------
def test_mnist_idx_standin(tmp_path):
    write_mnist(tmp_path)
    data = load_image_data("mnist", tmp_path, size=28, device="cpu", batch_size=8, pixel_range="sigmoid",
                           download=False)
    assert (data.n_train, data.n_val, data.channels, data.n_classes) == (64, 32, 1, 10)
    x, y = data.train.sample(8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    # the square's side encodes the label: the data and labels were read together
    sides = (x[:, 0, 4, 4:] > 0.5).sum(1)
    assert torch.equal(sides, 2 + 2 * y)
    # resized for a 32-pixel architecture
    data32 = load_image_data("mnist", tmp_path, size=32, device="cpu", batch_size=8, download=False)
    assert data32.train.sample(2, torch.Generator())[0].shape == (2, 1, 32, 32)


def test_cifar10_pickled_batches_standin(tmp_path):
    write_cifar10(tmp_path)
    data = load_image_data("cifar10", tmp_path, size=32, device="cpu", batch_size=8, download=False)
    assert (data.n_train, data.n_val, data.channels) == (80, 16, 3)
    x, y = data.train.sample(16, torch.Generator().manual_seed(0))
    red = ((x[:, 0, 0, 0] + 1) / 2 * 255).round()
    assert torch.equal(red, (y * 25).float())


def test_cifar100_standin(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((8, 3072), np.uint8), "fine_labels": list(range(8)),
                         "coarse_labels": [0] * 8}, f)
    data = load_image_data("cifar100", tmp_path, size=32, device="cpu", batch_size=4, download=False)
    assert (data.n_train, data.n_classes) == (8, 100)


def test_svhn_mat_standin(tmp_path):
    import scipy.io

    (tmp_path / "svhn").mkdir()
    for split in ("train", "test"):
        X = np.zeros((32, 32, 3, 10), np.uint8)
        X[0, 0, 0, :] = np.arange(10) * 20
        scipy.io.savemat(tmp_path / "svhn" / f"{split}_32x32.mat", {"X": X, "y": np.arange(1, 11).reshape(-1, 1)})
    data = load_image_data("svhn", tmp_path, size=32, device="cpu", batch_size=4, download=False)
    assert data.n_train == 10 and data.train.labels.tolist() == list(range(1, 10)) + [0]   # 10 means digit 0
    assert data.train.images[3, 0, 0, 0].item() == 60   # (H, W, C, N) transposed to (N, C, H, W)


def test_folder_with_class_subfolders(tmp_path):
    write_pngs(tmp_path / "cats", 30, seed=1)
    write_pngs(tmp_path / "dogs", 30, seed=2)
    data = load_image_data(f"folder:{tmp_path}", "unused", size=32, device="cpu", batch_size=8, workers=0,
                           download=False)
    assert data.n_classes == 2 and data.n_train + data.n_val == 60 and data.n_val == 3   # 5% held out
    x, y = data.train.sample(8, torch.Generator())
    assert x.shape == (8, 3, 32, 32) and set(y.tolist()) <= {0, 1}
    assert data.in_memory and data.train.images.device.type == "cpu"   # 60 small images fit the memory budget


def test_celeba_layout_standin(tmp_path):
    images = tmp_path / "celeba" / "img_align_celeba"
    paths = write_pngs(images, 12, size=60)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        "\n".join(f"{p.name} {0 if i < 8 else 1}" for i, p in enumerate(paths)))
    data = load_image_data("celeba", tmp_path, size=64, device="cpu", batch_size=4, workers=0, download=False)
    assert (data.n_train, data.n_val) == (8, 4)
    assert data.train.sample(4, torch.Generator())[0].shape == (4, 3, 64, 64)


def test_lsun_lmdb_standin(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    import io

    from PIL import Image

    for split, n in (("train", 8), ("val", 4)):
        env = lmdb.open(str(tmp_path / f"bedroom_{split}_lmdb"), map_size=1 << 24)
        with env.begin(write=True) as txn:
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(np.full((70, 90, 3), i * 20, np.uint8)).save(buf, format="JPEG")
                txn.put(f"{i:040x}".encode(), buf.getvalue())
        env.close()
    data = load_image_data("lsun-bedroom", tmp_path, size=64, device="cpu", batch_size=4, workers=0)
    assert (data.n_train, data.n_val) == (8, 4)
    assert data.train.sample(4, torch.Generator())[0].shape == (4, 3, 64, 64)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_found_without_download(tmp_path):
    data = load_image_data("fashion-mnist", tmp_path / "nothing-here", size=28, device="cpu", batch_size=50,
                           pixel_range="sigmoid", download=False)
    assert (data.n_train, data.n_val, data.channels) == (60000, 10000, 1)
    assert data.where == str(FASHION)
    assert sorted(torch.bincount(data.train.labels).tolist()) == [6000] * 10


# ---- bad input ---------------------------------------------------------------------------------------------
def test_missing_data_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        load_image_data("mnist", tmp_path, size=28, device="cpu", batch_size=8, download=False)
    assert str(tmp_path / "MNIST" / "raw") in e.value.message and "network" in e.value.hint
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_image_data("cifar10", tmp_path, size=32, device="cpu", batch_size=8, download=False)
    with pytest.raises(UsageError, match="unknown dataset"):
        load_image_data("imagenet", tmp_path, size=32, device="cpu", batch_size=8)


def test_corrupt_image_skipped_and_reported_or_refused_with_strict(tmp_path):
    write_pngs(tmp_path, 39)
    bad = tmp_path / "img999.png"
    bad.write_bytes(b"\x89PNG not really")
    # decoded by 2 worker processes while the set is prepared: the skipped file is named with its reason
    data = load_image_data(f"folder:{tmp_path}", "unused", size=32, device="cpu", batch_size=38, workers=2)
    assert data.n_train + data.n_val == 39
    assert [(s["name"], s["reason"]) for s in data.skipped] == [("img999.png", "not an image")]
    with pytest.raises(DataError) as e:
        load_image_data(f"folder:{tmp_path}", "unused", size=32, device="cpu", batch_size=8, workers=0, strict=True)
    assert str(bad) in e.value.message


def test_truncated_idx_names_the_file(tmp_path):
    folder = write_mnist(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:1000]))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_image_data("mnist", tmp_path, size=28, device="cpu", batch_size=8, download=False)


def test_cifar_reader_refuses_a_pickle_that_would_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(DataError, match="refusing to build"):
        read_cifar_batch(path, "labels")
