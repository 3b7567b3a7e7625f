"""A gzip file whose compressed data is damaged (not cut short) is refused as damaged data, exit code 3, by every
command that reads it; zlib reports it as zlib.error, which is neither OSError nor EOFError."""

import gzip
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from standins import idx_bytes, write_mnist
from wgan_cli.cli import app
from wgan_cli.data.formats import read_idx
from wgan_cli.errors import DataError


def damage(path):
    """Flip bytes 5000-5039 of a gzip file, inside its deflate stream."""
    data = bytearray(path.read_bytes())
    for i in range(5000, 5040):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged_mnist(tmp_path):
    folder = write_mnist(tmp_path / "data")
    images = folder / "train-images-idx3-ubyte.gz"
    # 4 grey levels: compressible, so deflate codes it with Huffman tables (random bytes would be stored as is,
    # and flipping them would only fail the CRC, an OSError)
    pixels = np.random.default_rng(0).integers(0, 4, (64, 28, 28))
    images.write_bytes(gzip.compress(idx_bytes(pixels)))
    damage(images)
    with pytest.raises(zlib.error):   # the damage this test is about, and not a CRC or length error
        gzip.decompress(images.read_bytes())
    return images


def test_read_idx_calls_a_damaged_gzip_damaged(damaged_mnist):
    with pytest.raises(DataError) as e:
        read_idx(damaged_mnist)
    assert str(damaged_mnist) in e.value.message and "download it again" in e.value.hint


def test_train_on_a_damaged_gzip_exits_3_before_making_the_run_directory(damaged_mnist, tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                                 "--no-download", "--iters", "1", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 3, r.output
    assert "train-images-idx3-ubyte.gz" in r.stderr and "hint: the file is damaged; download it again" in r.stderr
    assert "Traceback" not in r.output
    assert not out.exists()


def test_a_damaged_billion_word_archive_is_a_data_error(tmp_path):
    import io
    import tarfile

    from wgan_cli.data.text import BILLION_WORD_DIR, fetch_billion_word

    rng = np.random.default_rng(0)
    words = "the a news of market said on in year new".split()
    text = "".join(" ".join(rng.choice(words, 8)) + "\n" for _ in range(4000)).encode()   # Huffman-coded, ~40 KB
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"r13output/{BILLION_WORD_DIR}/news.en-00001-of-00100")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(buf.getvalue())
    damage(archive)
    with pytest.raises(zlib.error):
        gzip.decompress(archive.read_bytes())
    with pytest.raises(DataError, match="billion-word"):
        fetch_billion_word(tmp_path / "cache", url=archive.as_uri())
