"""clean-fid's "clean" resize: equal to clean-fid's own resizer (exactly), plus properties that need no reference."""

import numpy as np
import pytest
import torch
from PIL import Image

from wgan_cli.metrics.resize import resize_clean


def random_images(n, c, h, w, seed):
    return torch.from_numpy(np.random.RandomState(seed).randint(0, 256, size=(n, c, h, w), dtype=np.uint8))


def test_shape_range_and_dtype():
    x = random_images(2, 3, 32, 32, seed=0)
    y = resize_clean(x)
    assert y.shape == (2, 3, 299, 299) and y.dtype == torch.float32
    assert 0 <= float(y.min()) and float(y.max()) <= 255
    assert resize_clean(x, size=64).shape == (2, 3, 64, 64)


def test_constant_image_stays_constant_and_same_size_is_identity():
    flat = torch.full((1, 1, 28, 28), 77, dtype=torch.uint8)
    torch.testing.assert_close(resize_clean(flat), torch.full((1, 1, 299, 299), 77.0), rtol=0, atol=1e-4)
    x = random_images(1, 3, 40, 40, seed=1)
    assert torch.equal(resize_clean(x, size=40), x.float())


def test_overshoot_is_clipped():
    # a black/white checkerboard: bicubic rings past 0 and 255 between the squares
    board = ((np.indices((16, 16)).sum(axis=0) % 2) * 255).astype(np.float32)
    raw = np.asarray(Image.fromarray(board).resize((299, 299), resample=Image.BICUBIC))
    assert raw.min() < 0 and raw.max() > 255                     # the unclipped resize does overshoot
    y = resize_clean(torch.from_numpy(board.astype(np.uint8))[None, None])
    assert float(y.min()) == 0 and float(y.max()) == 255
    np.testing.assert_array_equal(y[0, 0].numpy(), raw.clip(0, 255))


def test_grayscale_plane_equals_each_channel_of_its_rgb_copy():
    gray = random_images(2, 1, 28, 28, seed=2)
    np.testing.assert_array_equal(resize_clean(gray).expand(-1, 3, -1, -1).numpy(),
                                  resize_clean(gray.expand(-1, 3, -1, -1)).numpy())


def test_refuses_float_images():
    with pytest.raises(TypeError, match="uint8"):
        resize_clean(torch.zeros(1, 3, 8, 8))


# ---- the reference implementation --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1), (64, 48, 3), (17, 23, 3), (320, 310, 3)])
def test_equals_clean_fid(shape):
    resize_mod = pytest.importorskip(
        "cleanfid.resize", reason="clean-fid not installed (pip install clean-fid==0.1.35; the test extra has it)")
    h, w, c = shape
    images = random_images(3, c, h, w, seed=h * w)
    if c == 1:
        images = images.expand(-1, 3, -1, -1)                        # 28x28 grayscale, repeated to 3 channels
    clean = resize_mod.build_resizer("clean")                        # make_resizer("PIL", False, "bicubic", (299, 299))
    expected = np.stack([clean(img) for img in images.permute(0, 2, 3, 1).numpy()])   # (N, 299, 299, 3) float32
    got = resize_clean(images).permute(0, 2, 3, 1).numpy()
    assert got.dtype == expected.dtype == np.float32
    # the same PIL calls in the same order: equal to the bit
    np.testing.assert_array_equal(got, expected)
