"""Checkpoint headers are untrusted input: the digest covers the metadata (version 2), the whole header is checked
against a schema and against the model its spec builds before any tensor is read, and every single-byte change of
a real checkpoint's header either loads to the identical checkpoint or is refused with exit code 4."""

import json
import os
import stat
import struct

import pytest
import torch
from typer.testing import CliRunner

from wgan_cli import checkpoint, models
from wgan_cli.cli import app
from wgan_cli.config import TOY_PRESET, TrainConfig, resolve_train
from wgan_cli.errors import CheckpointError

SPEC = {"arch": "toy-mlp", "dim": 4, "depth": 1, "z_dim": 2, "data_dim": 2}
runner = CliRunner()


def toy_generator(path, step=7, spec=SPEC):
    G, _ = models.build_seeded(spec, 0)
    tensors = {"G." + k: v for k, v in G.state_dict().items()}
    checkpoint.save(path, tensors, kind="generator", task="toy", model=spec,
                    train=resolve_train(TrainConfig(), TOY_PRESET).to_json(), step=step,
                    extra={"dataset": "8gaussians"})
    return path, tensors


def split(path):
    """(header length, header dict, tensor bytes) of a safetensors file."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8:8 + n]), data[8 + n:]


def rewrite(path, header: dict, body: bytes):
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def edit_meta(path, change, redigest=False, digest_of=None):
    """Change the wgan metadata of a file in place (optionally with a correct version-2 digest)."""
    n, header, body = split(path)
    meta = json.loads(header["__metadata__"]["wgan"])
    change(meta)
    if redigest:
        meta["digest"] = checkpoint.digest(digest_of, meta)
    header["__metadata__"]["wgan"] = json.dumps(meta)
    rewrite(path, header, body)


def test_version_2_digest_covers_the_metadata(tmp_path):
    path, tensors = toy_generator(tmp_path / "g.safetensors")
    meta = checkpoint.read_meta(path)
    assert meta["version"] == 2 and meta["digest"] == checkpoint.digest(tensors, meta)
    edit_meta(path, lambda m: m.update(step=8))                     # one changed number, digest left alone
    with pytest.raises(CheckpointError, match="checksum mismatch: the tensors or the metadata"):
        checkpoint.load(path)


def test_text_vocabulary_change_is_caught(tmp_path):
    spec = {"arch": "text-resnet", "vocab_size": 4, "seq_len": 4, "dim": 2, "z_dim": 3, "n_blocks": 1}
    G, _ = models.build_seeded(spec, 0)
    path = checkpoint.save(tmp_path / "lm.safetensors", {"G." + k: v for k, v in G.state_dict().items()},
                           kind="generator", task="text", model=spec,
                           extra={"vocab": ["", "a", "b", "`"], "seq_len": 4, "pad": "`"})
    edit_meta(path, lambda m: m["extra"].update(vocab=["", "a", "c", "`"]))   # same length, other text
    r = runner.invoke(app, ["textgen", "--ckpt", str(path), "-n", "2"])
    assert r.exit_code == 4 and "checksum mismatch" in r.output, r.output
    assert isinstance(r.exception, SystemExit)   # a clean exit, not an escaped exception


def test_version_1_files_are_read_with_a_note(tmp_path):
    path, tensors = toy_generator(tmp_path / "v1.safetensors")
    edit_meta(path, lambda m: m.update(version=1, digest=checkpoint.digest(tensors)))   # as the old writer did
    notes = []
    loaded, meta = checkpoint.load(path, notes=notes)
    assert meta["version"] == 1 and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert len(notes) == 1 and "version-1" in notes[0] and "not the metadata" in notes[0]
    r = runner.invoke(app, ["sample", str(path), "-n", "5", "-o", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "note: " in r.output and "version-1" in r.output
    edit_meta(path, lambda m: m.update(version=3))
    with pytest.raises(CheckpointError, match="version 3 is newer"):
        checkpoint.read_meta(path)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.pop("task"), "'task' is missing"),
    (lambda m: m.update(step="7"), "step"),
    (lambda m: m.update(step=-1), "step"),
    (lambda m: m.update(kind="trainstate"), "unknown kind"),
    (lambda m: m["model"].update(dim=True), "model dim"),
    (lambda m: m["model"].update(arch="resnet"), "unknown architecture 'resnet' for a toy model"),
    (lambda m: m["model"].update(width=3), "model key 'width'"),
    (lambda m: m.update(model=[1, 2]), "'model' is missing or not an object"),
    (lambda m: m["extra"].update(output="relu"), r"extra output \(the pixel range\) is neither tanh nor sigmoid"),
])
def test_malformed_metadata_is_refused_with_a_reason(tmp_path, change, message):
    path, tensors = toy_generator(tmp_path / "g.safetensors")
    edit_meta(path, change, redigest=True, digest_of=tensors)   # a correct digest does not make it acceptable
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


@pytest.mark.slow
def test_huge_width_with_a_correct_digest_is_refused_before_any_allocation(tmp_path):
    path, tensors = toy_generator(tmp_path / "g.safetensors")
    edit_meta(path, lambda m: m["model"].update(dim=2**16, depth=1024), redigest=True, digest_of=tensors)
    with pytest.raises(CheckpointError, match="tensor .* (missing|does not fit)"):
        checkpoint.load(path)    # G would be ~17 TB: built on the meta device only, compared, refused
    edit_meta(path, lambda m: m["model"].update(dim=2**40), redigest=True, digest_of=tensors)
    with pytest.raises(CheckpointError, match="model dim .* out of range"):
        checkpoint.load(path)
    r = runner.invoke(app, ["sample", str(path), "-o", str(tmp_path / "p.csv")])
    assert r.exit_code == 4 and r.output.startswith("error: ")


def test_tensor_entries_must_match_the_model(tmp_path):
    path, tensors = toy_generator(tmp_path / "g.safetensors")
    n, header, body = split(path)
    header["G.net.0.weight"]["dtype"] = "I32"     # same byte count, other type
    rewrite(path, header, body)
    with pytest.raises(CheckpointError, match="G.net.0.weight' is I32"):
        checkpoint.load(path)


def test_checkpoints_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path, _ = toy_generator(tmp_path / "g.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644   # 0666 & ~022, like any other file


def interesting_changes(byte: int):
    """The single-byte changes tried at each position: its 8 one-bit flips and the bytes JSON and numbers are
    made of."""
    values = {byte ^ (1 << b) for b in range(8)} | set(b'"\\{}[],: 019-eE.aA') | {0x00, 0xFF}
    values.discard(byte)
    return sorted(values)


def fuzz(path, loaded, meta) -> dict:
    """Every change of every header byte (the length prefix included) -> outcome counts."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    counts = {"cases": 0, "identical": 0, "refused": 0}
    fd = os.open(path, os.O_RDWR)
    try:
        for i in range(8 + n):
            for value in interesting_changes(data[i]):
                os.pwrite(fd, bytes([value]), i)
                counts["cases"] += 1
                try:
                    got, got_meta = checkpoint.load(path)
                except CheckpointError:
                    counts["refused"] += 1
                    continue
                # anything else (KeyError, TypeError, MemoryError ...) fails the test here
                assert got_meta == meta and got.keys() == loaded.keys(), (i, value)
                assert all(torch.equal(got[k], loaded[k]) for k in got), (i, value)
                counts["identical"] += 1
            os.pwrite(fd, data[i:i + 1], i)
    finally:
        os.close(fd)
    return counts


@pytest.mark.slow
def test_header_fuzz_every_single_byte_change_is_identical_or_refused(tmp_path, one_thread):
    path, _ = toy_generator(tmp_path / "g.safetensors")
    loaded, meta = checkpoint.load(path)
    counts = fuzz(path, loaded, meta)
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    print(f"header fuzz: {counts['cases']} single-byte changes of {8 + n} bytes: {counts['identical']} load "
          f"identically, {counts['refused']} refused, 0 other outcomes")
    assert counts["cases"] == counts["identical"] + counts["refused"] > 20 * (8 + n)
    assert counts["refused"] > 0.9 * counts["cases"]


@pytest.mark.slow
def test_header_fuzz_of_a_train_state(tmp_path, one_thread):
    """A real train-state (optimiser state, RNG state, data cursor): one-bit flips of every header byte."""
    out = tmp_path / "run"
    r = runner.invoke(app, ["toy", "--dataset", "25gaussians", "--iters", "2", "--dim", "4", "--depth", "1",
                            "--batch-size", "8", "--n-critic", "1", "--plot-every", "100", "--out", str(out),
                            "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    path = out / "ckpt-0000002.safetensors"
    loaded, meta = checkpoint.load(path)
    assert {"rng.engine", "data.cursor", "opt_d.net.0.weight.exp_avg"} <= loaded.keys()
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    cases = refused = 0
    fd = os.open(path, os.O_RDWR)
    try:
        for i in range(8 + n):
            for bit in range(8):
                os.pwrite(fd, bytes([data[i] ^ (1 << bit)]), i)
                cases += 1
                try:
                    got, got_meta = checkpoint.load(path, kind="train-state", task="toy")
                except CheckpointError:
                    refused += 1
                    continue
                assert got_meta == meta and all(torch.equal(got[k], loaded[k]) for k in loaded), (i, bit)
            os.pwrite(fd, data[i:i + 1], i)
    finally:
        os.close(fd)
    print(f"train-state header fuzz: {cases} one-bit flips of {8 + n} bytes, {refused} refused, "
          f"{cases - refused} identical")
    assert cases == 8 * (8 + n) and refused > 0.9 * cases


@pytest.mark.slow
def test_damaged_headers_through_the_cli_exit_4_without_a_traceback(tmp_path):
    """A sample of the fuzz cases through `wgan sample`: exit 0 (identical) or 4, one error line, a hint."""
    path, _ = toy_generator(tmp_path / "g.safetensors")
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    g = torch.Generator().manual_seed(0)
    positions = torch.randint(0, 8 + n, (150,), generator=g).tolist()
    codes = {}
    for k, i in enumerate(positions):
        damaged = bytearray(data)
        damaged[i] ^= 1 << (k % 8)
        path.write_bytes(bytes(damaged))
        r = runner.invoke(app, ["sample", str(path), "-n", "3", "-o", str(tmp_path / "p.csv")])
        assert r.exception is None or isinstance(r.exception, SystemExit), (i, r.output)
        assert r.exit_code in (0, 4), (i, r.output)
        if r.exit_code == 4:
            lines = r.output.strip().splitlines()
            assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), r.output
        codes[r.exit_code] = codes.get(r.exit_code, 0) + 1
    assert codes.get(4, 0) > 100
