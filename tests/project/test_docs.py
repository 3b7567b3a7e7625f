"""The documented commands are real: every `wgan ...` command in README.md, docs/*.md and examples/* names an
existing subcommand and existing flags, and where the command has `--dry-run` it runs with it and exits 0.

Commands come from fenced code blocks and shell scripts (full commands: flags checked, then run with --dry-run)
and from inline `wgan ...` code in the prose and in Python examples (fragments: flags checked). Shell variables
are replaced by their defaults (`${OUT:-runs/x}`, or the value a script assigns them: `DIM=${DIM:-128}`) or a
placeholder path, arithmetic `$((...))` by 1; arguments that are themselves variables (`${ARCHS[$arch]}`)
cannot be checked and are skipped.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from wgan_cli.cli import app
from paths import ROOT

GROUP = typer.main.get_command(app)
DRY_RUN = {name for name, cmd in GROUP.commands.items() if any("--dry-run" in p.opts for p in cmd.params)}
PLACEHOLDERS = {"...", "N", "NAME", "PATH", "CKPT", "RUN", "DIR"}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").iterdir())]


def substitute(line: str, env: dict[str, str] | None = None) -> str:
    """Shell expansions -> plain words: ${X:-default} -> default, a variable the script assigned -> its value,
    arithmetic -> 1, other variables -> a placeholder path."""
    env = env or {}
    line = re.sub(r"\$\(\((?:[^()]|\([^()]*\))*\)\)", "1", line)
    line = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line)
    line = line.replace('"$@"', " ").replace("$@", " ")                # the script's own arguments
    line = re.sub(r'"?\$\{[^}]*\[@\]\}"?', " ", line)            # arrays of arguments: not checkable
    line = re.sub(r"\$\{\w+\[[^]]*\]\}", " ", line)                # ${ARCHS[$arch]}: not checkable
    line = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), "runs/var"), line)
    line = re.sub(r"\$\(\([^)]*\)\)|\$\([^)]*\)", "runs/var", line)
    return line


def split_markdown(text: str) -> tuple[str, str]:
    """(the lines of shell code fences, the prose outside every fence)."""
    shell, prose, fence = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else (line[3:].strip() or "sh")
            continue
        if fence is None:
            prose.append(line)
        elif fence in ("bash", "sh", "shell", "console"):
            shell.append(line)
    return "\n".join(shell), "\n".join(prose)


def logical_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def script_variables(lines: list[str]) -> dict[str, str]:
    """`NAME=value` and `NAME=${NAME:-default}` assignments of a script, in order, each value expanded; a
    `for NAME in a b c` loop variable takes its first value."""
    env: dict[str, str] = {}
    for line in lines:
        if loop := re.match(r"^\s*for (\w+) in ([^\s;]+)|^\s*for \(\((\w+) *= *(\d+);", line):
            name, first = loop.group(1) or loop.group(3), loop.group(2) or loop.group(4)
            env[name] = (substitute(first, env).strip('"').split() or ["runs/var"])[0]
        match = re.match(r"^\s*(\w+)=(\$\{\w+:-[^}]*\}|[^\s$(][^\s]*|\$\w+\S*)(\s+#.*)?$", line)
        if match:
            env[match.group(1)] = substitute(match.group(2), env).strip('"')
    return env


def command_from(line: str, env: dict[str, str] | None = None) -> list[str] | None:
    """The tokens of the `wgan` command on a shell line (after `VAR=x`, `$WGAN`, `python -m wgan_cli`, `torchrun ...
    -m wgan_cli`), or None."""
    line = re.sub(r"(^|\s)#.*$", "", line)                          # comments
    line = line.replace("$WGAN ", "wgan ").replace("python -m wgan_cli ", "wgan ").replace("-m wgan_cli ", "wgan ")
    match = re.search(r"(?:^|[\s;(|&])wgan\s+([a-z].*)$", line)
    if not match:
        return None
    text = substitute(match.group(1), env).split("|")[0].split(">")[0].split("&&")[0].split(";")[0]
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def full_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in documents():
        text = path.read_text()
        env = {}
        if path.suffix == ".md":
            shell, _ = split_markdown(text)
            lines = logical_lines(shell)
            lines += re.findall(r"^    (wgan .*)$", text.replace("\\\n", " "), flags=re.M)   # indented code
        elif path.suffix == ".sh":
            lines = logical_lines(text)
            env = script_variables(lines)
        else:
            continue
        for line in lines:
            tokens = command_from(line.strip(), env)
            if tokens:
                found.append((f"{path.relative_to(ROOT)}: wgan {' '.join(tokens)}", tokens))
    return found


def fragments() -> list[tuple[str, list[str]]]:
    found = []
    for path in documents():
        if path.suffix not in (".md", ".py"):
            continue
        text = path.read_text()
        prose = split_markdown(text)[1] if path.suffix == ".md" else text
        spans = prose.split("`")[1::2]                                  # the inside of each `code span`
        for match in (s for s in spans if s.startswith("wgan ")):
            tokens = command_from(match)
            if tokens:
                found.append((f"{path.relative_to(ROOT)}: {match}", tokens))
    return found


def check_flags(tokens: list[str]) -> None:
    name, args = tokens[0], tokens[1:]
    assert name in GROUP.commands, f"no subcommand {name!r}"
    params = {}
    for p in GROUP.commands[name].params:
        for opt in (*p.opts, *getattr(p, "secondary_opts", ())):
            params[opt] = p
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token in PLACEHOLDERS or not token.startswith("-") or token == "-":
            continue
        flag = token.split("=", 1)[0]
        assert flag in params, f"{name} has no option {flag}"
        p = params[flag]
        if not p.is_flag and "=" not in token and not getattr(p, "count", False):
            i += p.nargs if p.nargs > 0 else 1   # skip the option's value(s)


FULL, FRAGMENTS = full_commands(), fragments()


def test_the_documents_hold_many_commands():
    assert len(FULL) >= 60 and len(FRAGMENTS) >= 10, (len(FULL), len(FRAGMENTS))


@pytest.mark.parametrize("where,tokens", FULL + FRAGMENTS, ids=[w for w, _ in FULL + FRAGMENTS])
def test_subcommand_and_flags_exist(where, tokens):
    check_flags(tokens)


DRY = [(w, t) for w, t in FULL if t[0] in DRY_RUN and "--help" not in t]


@pytest.mark.parametrize("where,tokens", DRY, ids=[w for w, _ in DRY])
def test_dry_run_of_each_documented_command(where, tokens, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # a dry run writes nothing; if it did, it would land here
    if "--config" in tokens:      # the documented options file, as an empty one: every option at its default
        config = tmp_path / tokens[tokens.index("--config") + 1]
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("" if config.suffix == ".toml" else "{}")
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(app, [*tokens, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.rglob("*")) == before, "a dry run wrote files"


def test_the_checker_refuses_what_does_not_exist_and_skips_option_values():
    with pytest.raises(AssertionError, match="no option --no-such-flag"):
        check_flags(["train", "--no-such-flag"])
    with pytest.raises(AssertionError, match="no subcommand"):
        check_flags(["fit", "--iters", "3"])
    check_flags(["train", "--betas", "0.5", "0.9", "--no-download", "--lambda", "-1"])   # values are not flags
    assert command_from('OUT=x wgan sample "$OUT/g.safetensors" -n 4 -o "${DIR:-runs/d}/s.png"  # note') == \
        ["sample", "runs/var/g.safetensors", "-n", "4", "-o", "runs/d/s.png"]
    env = script_variables(["N=${N:-500}", "ROOT=runs/sweep-$N  # where", "X=$(date)", "for p in gp clip; do",
                            "for ((k = 3; k < N; k++)); do"])
    assert env == {"N": "500", "ROOT": "runs/sweep-500", "p": "gp", "k": "3"}
    assert command_from('wgan train --iters "$N" --sample-every $(((N + 19) / 20)) --out "$ROOT/a"', env) == \
        ["train", "--iters", "500", "--sample-every", "1", "--out", "runs/sweep-500/a"]


def test_the_exit_code_table_matches_errors_py():
    """docs/troubleshooting.md's table lists exactly the exit codes of errors.py's classes (plus 0 and the signals)."""
    from wgan_cli import errors

    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    table = page.split("## Errors and exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(c) for row in re.findall(r"^\| ([\d /]+) \|", table, re.M) for c in row.split("/")}
    classes = {cls.exit_code for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.WganError) and cls is not errors.WganError
               and cls is not errors.Interrupted}
    assert documented == {0} | classes | {130, 143}, (documented, classes)
