"""Prepared sets in training: the cache (reused, prepared again when the folder changes), in memory or
memory-mapped, validation for small folders, and what today's folder reading got wrong."""

import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from standins import write_pngs

from wgan_cli.data import images as image_data
from wgan_cli.data.images import load_image_data
from wgan_cli.errors import DataError
from wgan_cli.metrics.features import folder_source


def test_a_folder_is_prepared_once_and_prepared_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    write_pngs(tmp_path / "pics", 20, size=32)
    first = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=1)
    assert any("prepared 20 images" in n for n in first.info)
    assert len(list((tmp_path / "cache" / "prepared").iterdir())) == 1   # under $WGAN_CACHE_DIR
    again = load_image_data(f"folder:{tmp_path / 'pics'}/", None, size=32, device="cpu", batch_size=4, workers=1)
    assert any("no decoding" in n for n in again.info) and again.digest == first.digest
    Image.new("RGB", (32, 32), (9, 9, 9)).save(tmp_path / "pics" / "new.png")
    changed = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=1)
    assert any("changed since it was prepared (1 added)" in n for n in changed.info)
    assert changed.n_train + changed.n_val == 21 and changed.digest != first.digest


def test_in_memory_and_memory_mapped_draw_the_same_images(tmp_path):
    write_pngs(tmp_path / "pics", 24, size=32)
    name = f"folder:{tmp_path / 'pics'}"
    held = load_image_data(name, None, size=32, device="cpu", batch_size=8, workers=0)
    mapped = load_image_data(name, None, size=32, device="cpu", batch_size=8, workers=0, memory_budget=0)
    assert held.in_memory and not mapped.in_memory and held.digest == mapped.digest
    x, _ = mapped.train.sample(8, torch.Generator())
    # every mapped image is one of the images held in memory (both scaled to [-1, 1] the same way)
    pool = held.train.images.float() / 255 * 2 - 1
    assert all(any(torch.equal(a, b) for b in pool) for a in x)


def test_a_folder_of_200_images_gets_a_validation_split(tmp_path):
    write_pngs(tmp_path / "pics", 200, size=32)
    data = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=64, workers=0)
    assert (data.n_train, data.n_val) == (190, 10) and data.val is not None   # 5% held out, drawn with replacement
    more = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=64, workers=0,
                           val_share=0.2)
    assert (more.n_train, more.n_val) == (160, 40)


# ---- what a probe of the old folder reading found ---------------------------------------------------------------
def test_an_unreadable_file_whose_name_holds_a_newline_is_one_file(tmp_path):
    write_pngs(tmp_path / "pics", 10, size=32)
    (tmp_path / "pics" / "two\nlines.png").write_bytes(b"not an image")
    data = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=2)
    assert [s["name"] for s in data.skipped] == ["two\nlines.png"]


def test_a_folder_with_no_readable_image_says_so_with_its_count(tmp_path):
    (tmp_path / "pics").mkdir()
    for i in range(10):
        (tmp_path / "pics" / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(DataError) as e:
        load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=0)
    assert "no readable images (10 skipped: 10 not an image" in e.value.message and "50" not in e.value.message


def test_strict_names_the_file_and_the_reason(tmp_path):
    write_pngs(tmp_path / "pics", 6, size=32)
    (tmp_path / "pics" / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(DataError) as e:
        load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=0,
                        strict=True)
    assert str((tmp_path / "pics" / "huge.png").resolve()) in e.value.message and "BytesIO" not in e.value.message


def test_fewer_images_than_a_batch_names_the_held_out_ones(tmp_path):
    write_pngs(tmp_path / "pics", 4, size=32)
    with pytest.raises(DataError) as e:
        load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=0,
                        memory_budget=0)
    assert "3 training images (1 more held out for validation, --val-share 0.05)" in e.value.message


def test_a_class_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pics" / "cats", 6, size=32)
    write_pngs(tmp_path / "pics" / "dogs", 6, size=32)
    dogs = (tmp_path / "pics" / "dogs").resolve()
    scandir = os.scandir

    def refuse_dogs(path="."):   # what a folder without read permission gives (as root too, which chmod cannot)
        if os.fspath(path) == os.fspath(dogs):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_dogs)   # os.walk lists every folder through os.scandir
    data = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=0,
                           memory_budget=0)
    assert [(s["name"], s["reason"]) for s in data.skipped] == [("dogs/", "folder cannot be listed")]
    assert len(data.train) == 5   # the 6 cats less the one held out (--val-share 0.05 holds out at least one)


def test_more_workers_than_cpus_are_capped_with_one_note(tmp_path, monkeypatch):
    monkeypatch.setattr(image_data, "usable_cpus", lambda: 2)
    write_pngs(tmp_path / "pics", 20, size=32)
    data = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=4, workers=4,
                           memory_budget=0)
    assert data.train.workers == 2
    assert [n for n in data.notes if "--workers" in n] == ["--workers 4: this machine lets the process use 2 CPUs; "
                                                           "using 2"]


def test_score_never_opens_a_fifo(tmp_path):
    d = tmp_path / "samples"
    d.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (i, i, i)).save(d / f"{i}.png")
    os.mkfifo(d / "pipe.png")   # opening it for reading would wait for a writer for ever
    result = {}

    def read():
        source = folder_source(d)
        result["images"] = torch.cat(list(source.batches(2)))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "reading the folder hangs on the FIFO"
    assert result["images"].shape == (3, 3, 16, 16)


def test_score_reads_sixteen_bit_pngs_scaled(tmp_path):
    d = tmp_path / "samples"
    d.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(d / f"{i}.png")
    images = torch.cat(list(folder_source(d).batches(2)))
    assert images.shape == (2, 1, 16, 16) and (images == 128).all()   # round(32768 / 257); clipping gave 255


@pytest.mark.parametrize("budget", [4.0, 0.0])
def test_two_ranks_draw_the_rows_of_the_one_process_batch(tmp_path, budget):
    """In memory (indices drawn for the global batch, rows kept) and memory-mapped (each rank reads its rows)."""
    from wgan_cli.distributed import Group

    write_pngs(tmp_path / "pics", 30, size=32)

    def draws(group):
        data = load_image_data(f"folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=8, workers=0,
                               memory_budget=budget, dequantize=True)
        gen = torch.Generator().manual_seed(5)
        return [group.sample(data.train, 8, gen)[0] for _ in range(5)]   # 40 images: past the first epoch

    whole = draws(Group())
    halves = [draws(Group(rank, 2)) for rank in range(2)]
    for i, batch in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][i], halves[1][i]]), batch), i


def test_a_decoding_process_that_dies_stops_the_preparation_instead_of_hanging(tmp_path):
    import signal

    from wgan_cli.data.decode import Decoding
    from wgan_cli.data.prepared import list_folder, prepare

    write_pngs(tmp_path / "pics", 12, size=32)
    source = list_folder(tmp_path / "pics")

    def read(path):   # the worker that reads the 6th file is killed, as a signal to the process group would
        if path.endswith("img005.png"):
            os.kill(os.getpid(), signal.SIGKILL)
        with open(path, "rb") as f:
            return f.read()

    source.read = read
    with pytest.raises(DataError, match="a decoding process ended"):
        prepare(source, tmp_path / "out", Decoding(32), workers=2)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))   # no half set left
