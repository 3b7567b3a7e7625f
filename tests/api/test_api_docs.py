"""docs/api.md is executed: its Python blocks and its `wgan sample` / `wgan export` commands, in the page's order,
against tiny checkpoints at the paths the page names."""

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checkpoints import make_checkpoint
from wgan_cli.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")
PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
CHECKPOINTS = {"runs/cifar-cond/generator.safetensors": "resnet-cond", "runs/cifar/generator.safetensors": "resnet",
               "runs/lm/generator.safetensors": "text"}
RUN = ("sample", "export")   # score needs the Inception weights and a data set: flag-checked in test_docs.py


def blocks(text: str):
    """(language, code) of each fenced block, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.slow
def test_every_example_of_the_api_page_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    monkeypatch.chdir(tmp_path)
    for path, family in CHECKPOINTS.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        make_checkpoint(Path(path), family)
    namespace: dict = {}
    ran = {"python": 0, "wgan": 0}
    for lang, code in blocks(PAGE.read_text()):
        if lang == "python":
            exec(compile(code, str(PAGE), "exec"), namespace)   # noqa: S102 - the page's own examples
            ran["python"] += 1
            continue
        for line in code.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line.startswith("wgan ") or shlex.split(line)[1] not in RUN:
                continue
            r = CliRunner().invoke(app, shlex.split(line)[1:])
            assert r.exit_code == 0, (line, r.output)
            ran["wgan"] += 1
    assert ran["python"] >= 4 and ran["wgan"] >= 8, ran
    assert Path("cifar.onnx").is_file() and Path("cifar.pt2").is_file() and Path("G.onnx").is_file()
    assert sorted(p.name for p in Path("pngs").iterdir())[-1] == "seed000200.png"
    assert "classes were given, but the model is unconditional" in capsys.readouterr().out
