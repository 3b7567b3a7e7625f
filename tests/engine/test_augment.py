"""Differentiable augmentation (--augment, --augment-p, --mirror): what the critic sees, the ada controller, and
resume and ranks that stay exact."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from standins import write_mnist

from wgan_cli import augment, models
from wgan_cli.augment import ADA_IMAGES, ADA_TARGET, Augmenter, Policy
from wgan_cli.checkpoint import read_meta
from wgan_cli.config import ImageOptions, RunOptions, TrainConfig, resolve_train
from wgan_cli.data.samplers import DeviceImages
from wgan_cli.distributed import LOCAL, Group
from wgan_cli.engine import Engine
from wgan_cli.errors import UsageError
from wgan_cli.runs import train_run
from wgan_cli.image import ImageTask

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = ("color", "translation", "cutout")


def seeded_view(aug: Augmenter, n: int, seed: int = 0, real: bool = False):
    """x -> the critic's view of x, with the same draws at every call (gradcheck calls it many times)."""
    def fn(x):
        gen = torch.Generator().manual_seed(seed)
        return (aug.view_real if real else aug.view)(x, n, gen, LOCAL)
    return fn


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_augmentation_is_differentiable(name, channels):
    """gradcheck in float64: the analytic gradient of the view equals finite differences (translation and cutout
    are index maps and masks: linear in x; color is affine in x per image, then clamped)."""
    aug = Augmenter(Policy((name,), 1.0), "tanh", torch.device("cpu"))
    x = (torch.rand(3, channels, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 0.5)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(seeded_view(aug, 3), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("pixel_range", ["tanh", "sigmoid"])
def test_every_policy_keeps_the_image_range_and_changes_the_images(pixel_range):
    lo, hi = augment.RANGES[pixel_range]
    x = lo + (hi - lo) * torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x[:8] = lo   # the range's ends, where brightness and contrast push past it
    x[8:16] = hi
    for names in [(n,) for n in ALL] + [ALL]:
        y = seeded_view(Augmenter(Policy(names, 1.0), pixel_range, torch.device("cpu")), 64)(x)
        assert y.shape == x.shape
        assert lo <= float(y.min()) and float(y.max()) <= hi, (names, float(y.min()), float(y.max()))
        changed = (y != x)[16:].flatten(1).any(1)
        # at p = 1 every random image changes, but for the 1 in 9 translations by (0, 0)
        assert int(changed.sum()) >= 36, names


def test_probability_zero_is_the_identity_and_draws_the_same_numbers():
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    states = []
    for p in (0.0, 1.0):
        aug = Augmenter(Policy(ALL, p, mirror=False), "tanh", torch.device("cpu"))
        gen = torch.Generator().manual_seed(0)
        y = aug.view(x, 16, gen, LOCAL)
        if p == 0.0:
            assert torch.equal(y, x)
        states.append(gen.get_state())
    assert torch.equal(*states)   # p never changes which numbers later draws get


def test_probability_is_per_image():
    """p = 0.5 with one transform: about half the images change (binomial, n = 400: 0.5 +- 0.1 is > 4 sigma)."""
    x = torch.rand(400, 1, 8, 8) * 0.5 + 0.25
    y = seeded_view(Augmenter(Policy(("cutout",), 0.5), "tanh", torch.device("cpu")), 400)(x)
    share = float((y != x).flatten(1).any(1).float().mean())
    assert 0.4 < share < 0.6, share


def test_one_channel_color_is_brightness_and_contrast():
    """Saturation is the identity on one channel; brightness moves the mean, contrast scales the spread."""
    x = torch.full((2, 1, 4, 4), 0.0)
    x[:, :, :2] = 0.2
    u = torch.tensor([[1.0, 0.0, 0.5], [0.5, 0.0, 1.0]])   # +0.5 brightness, x1 contrast; no shift, x1.5 contrast
    y = augment.color(x, u, -1.0, 1.0)
    assert torch.allclose(y[0], x[0] + 0.5)   # saturation u=0 would have zeroed the channel spread: not applied
    mean = x[1].mean()
    assert torch.allclose(y[1], (x[1] - mean) * 1.5 + mean)


def test_translation_and_cutout_match_their_definitions():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    shifted = augment.translation(x, torch.tensor([[1, -1]]))
    # output[i, j] = x[i + 1, j - 1], 0 outside the image
    expected = torch.zeros(4, 4)
    expected[:3, 1:] = x[0, 0, 1:, :3]
    assert torch.equal(shifted[0, 0], expected)
    cut = augment.cutout(x, torch.tensor([[0, 3]]))   # a 2x2 square centred at (0, 3): rows -1..0, columns 2..3
    assert torch.equal(cut[0, 0] == 0, torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]).bool())


def test_mirror_is_a_left_right_flip():
    x = torch.arange(8.0).view(2, 1, 2, 2)
    y = augment.mirror(x, torch.tensor([True, False]))
    assert torch.equal(y[0, 0], torch.tensor([[1.0, 0.0], [3.0, 2.0]])) and torch.equal(y[1], x[1])


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_take_their_rows_of_the_one_process_view(world):
    """Each rank's view of its rows of a global batch, in rank order, is the one-process view of the batch."""
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    policy = Policy(ALL, 0.5, mirror=True)

    def view(group):
        gen = torch.Generator().manual_seed(4)
        aug = Augmenter(policy, "tanh", torch.device("cpu"))
        return aug.view_real(group.take(x), 8, gen, group), gen.get_state()

    whole, state = view(Group())
    parts = [view(Group(rank, world)) for rank in range(world)]
    assert torch.equal(torch.cat([p for p, _ in parts]), whole)
    assert all(torch.equal(s, state) for _, s in parts)


def test_ada_moves_p_up_under_a_growing_gap_and_down_when_it_closes():
    """A scripted critic: W estimate 2 (train real 1, fake -1), held-out real at 1 - gap. r = gap / 2; the
    target is 0.2, so a gap over 0.4 raises p by `images` / ADA_IMAGES per adjustment, and under it lowers p."""
    aug = Augmenter(Policy(("translation",), "ada"), "tanh", torch.device("cpu"))
    images = 64 * 5 * 4
    step = images / ADA_IMAGES
    ps = [float(aug.p)]
    # the gap grows to 0.95, then closes to 0.05 and stays there
    gaps = [0.15 + 0.1 * k for k in range(9)] + [0.85 - 0.1 * k for k in range(9)] + [0.05] * 8
    expected = 0.0
    for gap in gaps:
        aug.adjust(torch.tensor(1.0), torch.tensor(1.0 - gap), torch.tensor(-1.0), LOCAL, images)
        ps.append(float(aug.p))
        assert abs(float(aug.state[1]) - gap / 2) < 1e-6   # the logged signal r (float32 rounding)
        expected = min(1.0, max(0.0, expected + (step if gap / 2 > ADA_TARGET else -step)))
        assert abs(ps[-1] - expected) < 1e-6   # float32 p: 18 additions of 2.6e-3, rounding ~1e-7 each
    assert ps[0] == ps[3] == 0.0   # held at 0 while the gap was under 0.4 (0.15 .. 0.35)
    # up at each gap over 0.4: 0.45 .. 0.95 and back down to 0.45 (11 adjustments) ...
    assert all(b > a for a, b in zip(ps[4:14], ps[5:15])) and ps[14] == pytest.approx(11 * step, abs=1e-6)
    assert max(ps) == ps[14]
    # ... then down at every adjustment once it closed, to 0
    assert all(b < a for a, b in zip(ps[14:25], ps[15:26])) and ps[-1] == 0.0


def test_ada_holds_the_gap_it_is_given():
    """--ada-target: a gap of 0.15 (r = 0.075) is over a target of 0.05 and under the default 0.2, so p rises
    under the one and stays at 0 under the other; the same scores, only the target differs."""
    ps = {}
    for target in (0.05, ADA_TARGET):
        aug = Augmenter(Policy(("translation",), "ada", target=target), "tanh", torch.device("cpu"))
        for _ in range(3):
            aug.adjust(torch.tensor(1.0), torch.tensor(1.0 - 0.15), torch.tensor(-1.0), LOCAL, 1000)
        assert abs(float(aug.state[1]) - 0.075) < 1e-6
        ps[target] = float(aug.p)
    assert ps[0.05] == pytest.approx(3 * 1000 / ADA_IMAGES, abs=1e-7) and ps[ADA_TARGET] == 0.0


def test_the_ada_signal_ignores_the_critics_constant():
    """A WGAN critic's scores move by a free constant: the same gap (0.3) and estimate (2) at any constant give
    the same signal."""
    for c in (0.0, 200.0, -1000.0):
        aug = Augmenter(Policy(("translation",), "ada"), "tanh", torch.device("cpu"))
        aug.adjust(torch.tensor(c + 1.0), torch.tensor(c + 0.7), torch.tensor(c - 1.0), LOCAL, 1000)
        # float32 stores c + 0.7 within half a step at |c| (3.1e-5 at 1000): r within 2e-5 of 0.15
        assert abs(float(aug.state[1]) - 0.15) < 2e-5


def test_a_checkpoint_of_the_earlier_ada_layout_resumes_its_p():
    """Checkpoints written before the signal was taken at one moment hold five entries (p, two score sums and
    their count, r): p and r are kept."""
    aug = Augmenter(Policy(("translation",), "ada"), "tanh", torch.device("cpu"))
    aug.load(torch.tensor([0.25, 3.0, -2.0, 6.0, 0.125]))
    assert aug.state.tolist() == [0.25, 0.125]
    aug.load(torch.tensor([0.5, 0.0625]))
    assert aug.state.tolist() == [0.5, 0.0625]


def test_the_ada_target_is_recorded_and_re_run(tmp_path):
    """options.json and the checkpoint hold the target a run held (the default when none was given), so
    --config and resume hold the same one; a run without ada records none."""
    write_mnist(tmp_path)
    cfg = TrainConfig(batch_size=4, n_critic=1, iters=1)
    for name, kw, want in [("given", dict(augment_p="ada", ada_target=0.05), 0.05),
                           ("default", dict(augment_p="ada"), ADA_TARGET),
                           ("fixed", dict(augment_p="0.5"), None)]:
        train(tmp_path, name, cfg, augment="cutout", **kw)
        assert json.loads((tmp_path / name / "options.json").read_text())["image"]["ada_target"] == want
        extra = read_meta(tmp_path / name / "ckpt-0000001.safetensors")["extra"]
        assert extra.get("ada_target") == want and extra["augment_p"] == kw["augment_p"]


# ---- on the engine ------------------------------------------------------------------------------------------
def left_bars(n: int = 32) -> DeviceImages:
    """28x28 images with a bright bar on the left only: any flipped image is told apart at once."""
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        images[i, 0, 4 + i % 8:20, 2:6 + i % 4] = 255
    return DeviceImages(images, None, "sigmoid", False)


def test_mirror_flips_only_the_real_images():
    cfg = resolve_train(TrainConfig(batch_size=16, n_critic=1, iters=1, seed=5))
    torch.manual_seed(0)
    G, D = models.build(dict(arch="dcgan", dim=2, size=28, channels=1))
    data = left_bars()
    engine = Engine(G, D, data, cfg, augment=Augmenter(Policy(mirror=True), "sigmoid", torch.device("cpu")))
    seen = []
    hook = engine.D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    replay = torch.Generator().set_state(engine.gen.get_state())
    engine.critic_step()
    hook.remove()
    # the same draws, in the critic step's order: the real batch, the fakes' z, then the flips
    real, _ = data.sample(16, replay)
    with torch.no_grad():
        fake = engine.G(models.draw_z(engine.G, 16, replay))
    flips = torch.rand(16, generator=replay) < 0.5
    assert 0 < int(flips.sum()) < 16
    critic_input = seen[0]   # one joint pass over real and fake
    assert torch.equal(critic_input[:16], augment.mirror(real, flips))
    assert torch.allclose(critic_input[16:], fake, atol=1e-6)   # fakes as G made them (BN batch statistics)


def train(tmp_path, name, cfg, **kw) -> dict:
    base = dict(dataset="mnist", data_dir=str(tmp_path), arch="dcgan", dim=2, sample_every=100, eval_every=100,
                n_val=4, workers=0, download=False)
    run = RunOptions(out=str(tmp_path / name), device="cpu", log_every=1, save_every=100)
    return train_run(ImageTask(ImageOptions(**{**base, **kw})), cfg, run, ())


def test_resume_with_augmentation_is_bit_identical(tmp_path):
    """6 iterations straight == 3, then a fresh start resuming for 3; ada adjusts at iteration 4, so the
    checkpoint at 3 carries the interval's sums."""
    write_mnist(tmp_path)
    cfg = TrainConfig(batch_size=4, n_critic=2, seed=3)
    kw = dict(augment="color,translation,cutout", augment_p="ada", mirror=True)
    straight = train(tmp_path, "a", dataclasses.replace(cfg, iters=6), **kw)
    train(tmp_path, "b", dataclasses.replace(cfg, iters=3), **kw)
    mid = load_file(str(tmp_path / "b" / "ckpt-0000003.safetensors"))
    assert mid["augment.state"].tolist() == [0.0, 0.0]   # not yet adjusted
    resumed = train(tmp_path, "b", dataclasses.replace(cfg, iters=6), **kw)
    assert straight["step"] == resumed["step"] == 6
    a = load_file(str(tmp_path / "a" / "ckpt-0000006.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-0000006.safetensors"))
    assert a.keys() == b.keys() and "augment.state" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert float(a["augment.state"][1]) != 0.0   # adjusted at 4: a signal taken
    assert float(a["augment.state"][0]) == pytest.approx(4 * 2 * 4 / ADA_IMAGES, abs=1e-7) or \
        float(a["augment.state"][0]) == 0.0   # one adjustment: up by one step, or held at 0
    # an augmented run differs from a plain one of the same seed
    plain = train(tmp_path, "c", dataclasses.replace(cfg, iters=6))
    assert plain["w_dist"] != straight["w_dist"]


@pytest.mark.parametrize("kw,words", [
    (dict(augment="blur"), "unknown augmentation 'blur'"),
    (dict(augment="cutout,cutout"), "twice"),
    (dict(augment_p="0.5"), "no --augment was given"),
    (dict(augment="cutout", augment_p="1.5"), "neither a probability"),
    (dict(augment="cutout", augment_p="nan"), "neither a probability"),
    (dict(augment="cutout", augment_p="0.5", ada_target=0.05), "p is not ada here"),
    (dict(augment="cutout", ada_target=0.05), "p is not ada here"),
])
def test_bad_augmentation_options_are_refused_before_anything_is_written(tmp_path, kw, words):
    with pytest.raises(UsageError) as e:
        train(tmp_path, "x", TrainConfig(iters=1), **kw)
    assert words in e.value.message and e.value.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_ada_without_a_validation_split_is_refused(tmp_path):
    from standins import write_pngs
    write_pngs(tmp_path / "pics", 20, size=32)
    with pytest.raises(UsageError) as e:   # --val-share 0: nothing held out
        train(tmp_path, "x", TrainConfig(iters=1, batch_size=4), dataset=f"folder:{tmp_path / 'pics'}",
              augment="cutout", augment_p="ada", val_share=0.0)
    assert "needs a validation split" in e.value.message
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("on_augmented", [True, False])
def test_the_penalty_is_taken_where_augment_penalty_says(on_augmented):
    cfg = resolve_train(TrainConfig(batch_size=8, n_critic=1, iters=1, seed=2))
    torch.manual_seed(0)
    G, D = models.build(dict(arch="dcgan", dim=2, size=28, channels=1))
    policy = Policy(("cutout",), 1.0, penalty_on_augmented=on_augmented)
    engine = Engine(G, D, left_bars(), cfg, augment=Augmenter(policy, "sigmoid", torch.device("cpu")))
    seen, scored = [], []
    penalty = engine.penalty

    def spy(D, real, fake, gen, group):
        seen.append((real, fake))
        return penalty(D, real, fake, gen, group)

    engine.penalty = spy
    hook = engine.D.register_forward_pre_hook(lambda module, args: scored.append(args[0].detach().clone()))
    replay = torch.Generator().set_state(engine.gen.get_state())
    engine.critic_step()
    hook.remove()
    real, _ = left_bars().sample(8, replay)
    critic_real = scored[0][:8]   # the joint pass: the cutout real images the losses score
    assert not torch.equal(critic_real, real)
    assert torch.equal(seen[0][0], critic_real if on_augmented else real)


def test_a_small_training_set_logs_the_estimate_on_its_own_images(tmp_path):
    write_mnist(tmp_path)
    train(tmp_path, "run", TrainConfig(batch_size=4, n_critic=1, iters=2), train_images=16, eval_every=2,
          n_val=8)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("event") == "eval"]
    assert evals and all("train_set_w_dist" in r and "val_w_dist" in r for r in evals)
    assert evals[-1]["train_set_w_dist"] != evals[-1]["val_w_dist"]   # other images, the same fakes


@pytest.mark.parametrize("command", ["toy", "textgen"])
@pytest.mark.parametrize("flag", ["--mirror", "--augment"])
def test_toy_and_text_do_not_offer_image_augmentation(command, flag):
    from typer.testing import CliRunner

    from wgan_cli.cli import app
    args = [command, flag] + (["cutout"] if flag == "--augment" else []) + ["--dry-run"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "No such option" in r.output, r.output
