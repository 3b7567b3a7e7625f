"""Corpus reading, the character map and the real-data sampler of the language GAN."""

import pytest
import torch

from wgan_cli.data.text import PAD, UNK_SHOWN, CharMap, TextSampler, read_lines, split_into_sentences
from wgan_cli.errors import DataError


def test_charmap_round_trips_text_with_padding_and_unknown_characters():
    lines = ["the cat sat", "a dog ran far away", "hello"]
    cmap = CharMap.from_lines(lines, seq_len=12, vocab_size=64)
    assert cmap.chars[0] == "" and PAD in cmap.chars   # unk first; padding is a character like any other
    idx = cmap.encode(lines, 12)
    assert idx.shape == (3, 12) and idx.dtype == torch.int64
    # short lines are right-padded with '`', long ones cut to 12; decoding strips the padding again
    assert cmap.decode(idx, strip_padding=False)[2] == "hello" + PAD * 7
    assert cmap.decode(idx) == ["the cat sat", "a dog ran fa", "hello"]
    # a character outside the map becomes unk (index 0) and decodes as U+FFFD
    unk = cmap.encode(["the Zoo!"], 12)
    assert (unk[0, 4] == 0).item() and (unk[0, 7] == 0).item()
    assert cmap.decode(unk) == [f"the {UNK_SHOWN}oo{UNK_SHOWN}"]
    # the map survives JSON (the checkpoint metadata)
    assert CharMap.from_json(cmap.to_json()) == cmap


def test_charmap_keeps_the_most_frequent_characters():
    lines = ["aaaa", "aab", "c"]   # padded to 4: a 6, ` 4, b 1, c 1
    cmap = CharMap.from_lines(lines, seq_len=4, vocab_size=3)
    assert cmap.chars == ("", "a", PAD)
    assert cmap.encode(["abc"], 4).tolist() == [[1, 0, 0, 2]]


def test_read_lines_and_clear_errors(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("first line\n\n  second line  \nthird\n", encoding="utf-8")
    assert read_lines(good) == ["first line", "second line", "third"]
    assert read_lines(good, max_lines=2) == ["first line", "second line"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "news.en-00002").write_text("two\n")
    (folder / "news.en-00001").write_text("one\n")
    assert read_lines(folder) == ["one", "two"]   # files in name order, as the official reader
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    for path, words in [(bad, "not UTF-8"), (empty, "empty"), (tmp_path / "missing.txt", "no such")]:
        with pytest.raises(DataError) as e:
            read_lines(path)
        assert str(path) in e.value.message and words in e.value.message


def test_split_sentences_of_running_text():
    text = "It was late. The night\nwas dark! Was it?\n\nNew paragraph"
    assert split_into_sentences(text) == ["It was late.", "The night was dark!", "Was it?", "New paragraph"]


def test_sampler_gives_one_hot_batches_and_reshuffles_every_epoch():
    idx = torch.arange(10).unsqueeze(1).repeat(1, 4) % 5   # 10 lines of 4 indices, V = 5
    sampler = TextSampler(idx, vocab_size=5)
    assert sampler.idx.dtype == torch.uint8   # held compactly; one-hot built per batch
    gen = torch.Generator().manual_seed(0)
    x, y = sampler.sample(4, gen)
    assert y is None and x.shape == (4, 4, 5) and x.dtype == torch.float32
    assert torch.equal(x.sum(-1), torch.ones(4, 4))
    firsts = [x[:, 0].argmax(-1)]
    firsts.append(sampler.sample(4, gen)[0][:, 0].argmax(-1))
    epoch = torch.cat(firsts)
    assert len(set(sampler.perm[:8].tolist())) == 8           # no line twice within an epoch
    perm_before = sampler.perm.clone()
    assert torch.equal(epoch, idx[perm_before[:8], 0])       # the lines come in the permutation's order
    sampler.sample(4, gen)                                    # 8 + 4 > 10: a new epoch, a new permutation
    assert sampler.cursor == 4 and not torch.equal(perm_before, sampler.perm)


def test_sampler_state_restores_the_exact_stream():
    idx = torch.randint(0, 7, (23, 6), generator=torch.Generator().manual_seed(1))
    a, gen = TextSampler(idx, 7), torch.Generator().manual_seed(3)
    for _ in range(4):
        a.sample(5, gen)
    state, gen_state = a.state_dict(), gen.get_state()
    expected = [a.sample(5, gen)[0] for _ in range(6)]
    b, gen2 = TextSampler(idx, 7), torch.Generator()
    b.load_state_dict(state)
    gen2.set_state(gen_state)
    assert all(torch.equal(e, b.sample(5, gen2)[0]) for e in expected)


@pytest.mark.slow
def test_billion_word_download_unpacks_the_training_files(tmp_path):
    import tarfile

    from wgan_cli.data.text import BILLION_WORD_DIR, fetch_billion_word

    src = tmp_path / "src" / "1-billion-word-language-modeling-benchmark-r13output"
    (src / BILLION_WORD_DIR).mkdir(parents=True)
    (src / BILLION_WORD_DIR / "news.en-00001-of-00100").write_text("The first sentence .\nA second one .\n")
    (src / "README").write_text("not a training file")
    tarball = tmp_path / "bw.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    folder = fetch_billion_word(tmp_path / "cache", url=tarball.as_uri())
    assert folder.name == BILLION_WORD_DIR and read_lines(folder) == ["The first sentence .", "A second one ."]
    assert not list((tmp_path / "cache").glob("*.part"))   # the download is not left behind
    assert fetch_billion_word(tmp_path / "cache", url="http://unreachable.invalid/") == folder   # cached
