"""Text for the language GAN: reading a corpus, the character map, and the device-resident real-data sampler.

As gan_language.py / language_helpers.py read it: one sentence per line, split into characters, cut to
`seq_len` and right-padded with '`'; the character map is {unk: 0} plus the `vocab_size - 1` most frequent
characters (padding included), every other character maps to unk; the lines are reshuffled every epoch.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wgan_cli.data.images import data_root
from wgan_cli.errors import DataError

PAD = "`"
UNK_SHOWN = "\ufffd"   # how unk (index 0) is printed when decoding
BILLION_WORD_URL = ("http://www.statmt.org/lm-benchmark/"
                    "1-billion-word-language-modeling-benchmark-r13output.tar.gz")
BILLION_WORD_DIR = "training-monolingual.tokenized.shuffled"


# ---- reading -------------------------------------------------------------------------------------------------
def corpus_files(path: Path) -> list[Path]:
    """A file, or every non-hidden regular file of a folder in name order (news.en-00001-of-00100, ...)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: the corpus folder holds no files", "give a UTF-8 text file, one sentence per line")
        return files
    raise DataError(f"{path}: no such corpus file or folder",
                    "give a UTF-8 text file (one sentence per line), a folder of them, or `billion-word`")


def split_into_sentences(text: str) -> list[str]:
    """Running text -> sentences: join wrapped lines of a paragraph, break after . ! ? followed by a space."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        out += [s for s in re.split(r"(?<=[.!?])\s+(?=\S)", flat) if s]
    return out


def read_lines(path: str | Path, *, max_lines: int | None = None, split_sentences: bool = False) -> list[str]:
    """Non-empty lines (or sentences) of a UTF-8 corpus, in file order, at most `max_lines` of them."""
    path = Path(path)
    lines: list[str] = []
    for file in corpus_files(path):
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            line_no = file.read_bytes()[: e.start].count(b"\n") + 1
            raise DataError(f"{file}: not UTF-8 text (byte {e.start}, line {line_no}: {e.reason})",
                            "convert it first, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None
        except OSError as e:
            raise DataError(f"{file}: cannot read ({e.strerror})", "check the path and permissions") from None
        text = text.replace("\x00", "")   # NUL would be taken for numpy's string padding below
        parts = split_into_sentences(text) if split_sentences else text.splitlines()
        lines += [s.strip() for s in parts if s.strip()]
        if max_lines is not None and len(lines) >= max_lines:
            return lines[:max_lines]
    if not lines:
        raise DataError(f"{path}: the corpus is empty (no non-blank lines)",
                        "give a UTF-8 text file with one sentence per line")
    return lines


# ---- the character map ---------------------------------------------------------------------------------------
def to_codes(lines: list[str], seq_len: int) -> np.ndarray:
    """Lines -> (N, seq_len) uint32 code points, cut to seq_len and right-padded with '`'."""
    codes = np.array([s[:seq_len] for s in lines], dtype=f"<U{seq_len}").view(np.uint32).reshape(-1, seq_len)
    codes = codes.copy()
    codes[codes == 0] = ord(PAD)   # numpy pads fixed-width strings with NUL
    return codes


@dataclass(frozen=True)
class CharMap:
    """chars[0] is unk (stored as ''), chars[i] the character of index i, most frequent first."""

    chars: tuple[str, ...]

    @classmethod
    def from_lines(cls, lines: list[str], seq_len: int, vocab_size: int) -> "CharMap":
        """Count the characters of the padded lines; keep the vocab_size - 1 most frequent (ties by code point)."""
        values, counts = np.unique(to_codes(lines, seq_len), return_counts=True)
        order = np.lexsort((values, -counts))[: max(vocab_size - 1, 0)]
        return cls(("",) + tuple(chr(int(v)) for v in values[order]))

    @classmethod
    def from_json(cls, chars: list[str]) -> "CharMap":
        return cls(tuple(chars))

    def to_json(self) -> list[str]:
        return list(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, lines: list[str], seq_len: int) -> torch.Tensor:
        """Lines -> (N, seq_len) int64 indices; characters outside the map become unk (0)."""
        codes = to_codes(lines, seq_len)
        values, inverse = np.unique(codes, return_inverse=True)   # each distinct character looked up once
        index_of = {c: i for i, c in enumerate(self.chars) if i > 0}
        table = np.array([index_of.get(chr(int(v)), 0) for v in values], dtype=np.int64)
        return torch.from_numpy(table[inverse.reshape(codes.shape)])

    def decode(self, idx: torch.Tensor, strip_padding: bool = True) -> list[str]:
        """(N, T) indices -> strings; unk shows as U+FFFD; trailing padding stripped."""
        shown = [UNK_SHOWN] + list(self.chars[1:])
        lines = ["".join(shown[i] for i in row) for row in idx.tolist()]
        return [s.rstrip(PAD) for s in lines] if strip_padding else lines


# ---- the real-data sampler -----------------------------------------------------------------------------------
def index_dtype(vocab_size: int) -> torch.dtype:
    return torch.uint8 if vocab_size <= 256 else torch.int16 if vocab_size <= 32767 else torch.int32


class TextSampler:
    """Real sentences on the device: the index tensor lives there, batches become one-hot (B, T, V) floats there.

    Epochs as gan_language.py's generator: a fresh permutation each epoch, batches read in order, the remainder
    dropped. The cursor is a host integer that advances by the batch size (known without asking the device), and
    the permutation is rebuilt on resume from the RNG state it was drawn with (a few bytes, not N indices).
    """

    def __init__(self, idx: torch.Tensor, vocab_size: int, device="cpu"):
        self.device = torch.device(device)
        self.idx = idx.to(index_dtype(vocab_size)).to(self.device)   # (N, T)
        self.vocab_size = vocab_size
        self.cursor = len(self.idx)   # "end of an epoch": the first sample draws a permutation
        self.perm: torch.Tensor | None = None
        self.perm_rng: torch.Tensor | None = None

    def _new_epoch(self, gen: torch.Generator) -> None:
        self.perm_rng = gen.get_state()
        self.perm = torch.randperm(len(self.idx), device=self.device, generator=gen)
        self.cursor = 0

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, None]:
        if n > len(self.idx):
            raise DataError(f"the batch ({n}) is larger than the training set ({len(self.idx)} lines)",
                            "use a smaller --batch-size or a larger corpus")
        if self.cursor + n > len(self.idx):
            self._new_epoch(gen)
        rows = self.perm[self.cursor: self.cursor + n]
        self.cursor += n
        return F.one_hot(self.idx[rows].long(), self.vocab_size).float(), None   # (B, T, V)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"cursor": torch.tensor(self.cursor, dtype=torch.int64)}
        if self.perm_rng is not None:
            state["perm_rng"] = self.perm_rng.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.cursor = int(state.get("cursor", torch.tensor(len(self.idx))))
        if "perm_rng" in state:
            self.perm_rng = state["perm_rng"].cpu().clone()
            g = torch.Generator(device=self.device)
            g.set_state(self.perm_rng)
            self.perm = torch.randperm(len(self.idx), device=self.device, generator=g)
        else:
            self.cursor = len(self.idx)


# ---- the paper's data set -----------------------------------------------------------------------------------
def billion_word_dir(cache: Path) -> Path:
    return cache / "1-billion-word-language-modeling-benchmark-r13output" / BILLION_WORD_DIR


def fetch_billion_word(cache: str | Path | None = None, url: str = BILLION_WORD_URL, timeout: float = 20) -> Path:
    """The One Billion Word training files (news.en-000NN-of-00100), downloaded once into the data directory
    (`cache`, else $WGAN_DATA_DIR, else ./data, as for the image data sets).

    Returns the folder of training files, which `read_lines` reads in name order as the official code does."""
    cache = data_root(cache)
    folder = billion_word_dir(cache)
    if folder.is_dir() and any(folder.glob("news.en-*")):
        return folder
    hint = (f"download {url} (1.7 GB) on a machine with internet, unpack it, and pass "
            f"--corpus path/to/{BILLION_WORD_DIR} (or unpack it under {cache})")
    tmp = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tar.gz.part")
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        with tarfile.open(tmp) as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and f"/{BILLION_WORD_DIR}/news.en-" in f"/{m.name}"
                       and not m.name.startswith("/") and ".." not in m.name.split("/")]
            if hasattr(tarfile, "data_filter"):   # Python >= 3.11.4: refuse links and paths out of `cache`
                tar.extractall(cache, members=members, filter="data")
            else:
                tar.extractall(cache, members=members)
    # a damaged .tar.gz raises EOFError (cut short) or zlib.error (damaged compressed data), not a TarError
    except (urllib.error.URLError, OSError, EOFError, zlib.error, tarfile.TarError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise DataError(f"billion-word: cannot download the One Billion Word benchmark ({reason})", hint) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    if not any(folder.glob("news.en-*")):
        raise DataError(f"billion-word: the download holds no {BILLION_WORD_DIR}/news.en-* files", hint)
    return folder
