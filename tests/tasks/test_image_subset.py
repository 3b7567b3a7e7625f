"""`wgan train --train-images N`: training on the first N training images (Section 5.6's 1,000-image subset),
validation on the whole held-out split."""

import json

import pytest
import torch
from standins import write_mnist, write_pngs
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.config import ImageOptions, RunOptions, TrainConfig
from wgan_cli.data.images import load_split
from wgan_cli.errors import CheckpointError
from wgan_cli.runs import train_run
from wgan_cli.image import ImageTask

pytestmark = pytest.mark.usefixtures("one_thread")


def run_subset(tmp_path, n, iters=1, dataset="mnist", **kw):
    opts = ImageOptions(dataset=dataset, data_dir=str(tmp_path), arch="dcgan", dim=2, train_images=n,
                        sample_every=100, eval_every=100, n_val=4, workers=0, download=False, **kw)
    task, cfg = ImageTask(opts), TrainConfig(batch_size=4, n_critic=1, iters=iters)
    run = RunOptions(out=str(tmp_path / "run"), device="cpu", log_every=1, save_every=100)
    train_run(task, cfg, run)
    return task.prepare(task.plan(cfg, run), torch.device("cpu")).data   # the images the run read


def test_trains_on_the_first_n_images_and_validates_on_the_whole_split(tmp_path):
    write_mnist(tmp_path, n_train=64, n_test=32)
    data = run_subset(tmp_path, 10)
    assert (data.n_train, data.n_val) == (10, 32)
    assert torch.equal(data.train.images, load_split("mnist", "train", tmp_path)[:10])
    assert len(data.val.images) == 32
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["image"]["train_images"] == 10 and options["data"]["n_train"] == 10
    assert options["data"]["n_val"] == 32


@pytest.mark.slow
def test_resume_with_another_subset_is_refused(tmp_path):
    write_mnist(tmp_path)
    run_subset(tmp_path, 10)
    with pytest.raises(CheckpointError, match="train_images: 10 vs 20"):
        run_subset(tmp_path, 20, iters=2)
    run_subset(tmp_path, 10, iters=2)   # the same subset resumes


def test_folder_subset(tmp_path):
    write_pngs(tmp_path / "pics", 30, size=32)
    data = run_subset(tmp_path, 5, dataset=f"folder:{tmp_path / 'pics'}", size=32)
    assert data.n_train == 5 and len(data.train) == 5
    assert data.n_val == 1   # the 5% held out of the folder, untouched


def test_more_images_than_the_split_holds_is_refused(tmp_path):
    write_mnist(tmp_path, n_train=64)
    r = CliRunner().invoke(app, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--train-images",
                                 "1000", "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert r.exit_code == 2 and "--train-images 1000: mnist has 64 training images" in r.output, r.output
    assert not (tmp_path / "run").exists()
