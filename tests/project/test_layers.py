"""The import layers of wgan_cli, kept: imports point down, and no module imports itself back through others.

Read from the source with ast (every `import` and `from ... import`, those inside functions included), so a
function-level import cannot hide an arrow. Each module belongs to the layer of its longest prefix in LAYERS; a new
module outside the packages listed there is refused until it is given a layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import wgan_cli

PACKAGE = Path(wgan_cli.__file__).resolve().parent   # the copy being tested, wherever this file lives

# Top to bottom. A module may import modules of its own layer or of any layer below it, never above.
LAYERS = [
    # the package itself is an entry point too: `wgan_cli.load` (the Python API) is reached through it
    ("entry point", ["wgan_cli", "wgan_cli.__main__", "wgan_cli.cli", "wgan_cli.options"]),
    # one module per command, and what a command alone uses (the Tasks are the training commands' own parts)
    ("commands", ["wgan_cli.command", "wgan_cli.api", "wgan_cli.export", "wgan_cli.prepare", "wgan_cli.toy",
                  "wgan_cli.image", "wgan_cli.textgen", "wgan_cli.sample", "wgan_cli.walk", "wgan_cli.score",
                  "wgan_cli.report"]),
    # what every training command does around the loop: the run directory and its lock, joining a torchrun job,
    # the sinks the events go to (the engine emits events and never imports a sink)
    ("run skeleton", ["wgan_cli.runs", "wgan_cli.rundir", "wgan_cli.locking", "wgan_cli.torchrun", "wgan_cli.ui",
                      "wgan_cli.tensorboard"]),
    # the loop, and the evaluation that runs inside it as a callback
    ("training loop", ["wgan_cli.engine", "wgan_cli.metrics.evaluate"]),
    # what the loop and the commands are made of
    ("parts", ["wgan_cli.data", "wgan_cli.models", "wgan_cli.metrics", "wgan_cli.penalties", "wgan_cli.objectives",
               "wgan_cli.augment",
               "wgan_cli.optim", "wgan_cli.checkpoint", "wgan_cli.checkpoint_schema", "wgan_cli.outputs",
               "wgan_cli.plots"]),
    # one module per metric, importing only what metrics take: never the registry (metrics/registry.py) above them
    ("metrics", ["wgan_cli.metrics.inputs", "wgan_cli.metrics.scores", "wgan_cli.metrics.manifold",
                 "wgan_cli.metrics.ngrams", "wgan_cli.metrics.points"]),
    # records and their option declarations, ranges, errors, events, files; distributed.py's collectives
    ("leaves", ["wgan_cli.version", "wgan_cli.config", "wgan_cli.fields", "wgan_cli.errors", "wgan_cli.events",
                "wgan_cli.files", "wgan_cli.bounds", "wgan_cli.configfile", "wgan_cli.distributed"]),
]


def find_modules(package: Path) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__.py)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """name -> {imported module of the package: line of its first import}. `from pkg import name` counts as
    importing pkg.name when that is a module, else pkg."""
    root = next(iter(modules)).split(".")[0]

    def owner(name: str) -> str:   # the module a dotted name lives in
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]   # the package it is in
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else owner(base) for a in node.names]
            for target in targets:
                if (target == root or target.startswith(root + ".")) and target != name:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def layer_of(name: str, layers=LAYERS) -> int | None:
    """The index of the layer listing the longest prefix of `name` (0 is the top), or None. The top package's own
    name stands for its __init__.py alone, not for every module."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            within = "." in prefix and name.startswith(prefix + ".")
            if (name == prefix or within) and len(prefix) > best:
                best, index = len(prefix), i
    return index


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import circles: strongly connected sets of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def upward(graph: dict[str, dict[str, int]], layers=LAYERS) -> list[str]:
    """Every import of a module from a higher layer, as 'importer:line imports imported (lower -> higher)'."""
    found = []
    for name, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            mine, theirs = layer_of(name, layers), layer_of(target, layers)
            if mine is not None and theirs is not None and theirs < mine:
                found.append(f"{name}:{line} imports {target} ({layers[mine][0]} -> {layers[theirs][0]})")
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph(find_modules(PACKAGE))


def test_every_module_has_a_layer(graph):
    unplaced = [name for name in graph if layer_of(name) is None]
    assert not unplaced, f"give these modules a layer in tests/project/test_layers.py LAYERS: {unplaced}"


def test_no_import_circles(graph):
    found = cycles(graph)
    assert not found, "modules that import each other (directly or through others): " + "; ".join(map(str, found))


def test_imports_point_down(graph):
    found = upward(graph)
    assert not found, "imports from a lower layer to a higher one:\n" + "\n".join(found)


def test_a_planted_circle_and_upward_imports_are_found(tmp_path):
    """The checks themselves: a package with a circle (a <-> b, one side inside a function), a leaf importing a
    top module, and a relative import from a subpackage up to the top."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "", "top.py": "from pkg import a\n", "a.py": "import os\nfrom pkg.b import thing\n",
             "b.py": "def f():\n    from pkg import a\n    return a\nthing = 1\n",
             "leaf.py": "import pkg.top\n", "sub/__init__.py": "", "sub/low.py": "from .. import top\n"}
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    g = import_graph(find_modules(pkg))
    assert g["pkg.b"] == {"pkg.a": 2} and g["pkg.a"] == {"pkg.b": 2} and g["pkg.sub.low"] == {"pkg.top": 1}
    assert cycles(g) == [["pkg.a", "pkg.b"]]
    layers = [("top", ["pkg.top"]), ("middle", ["pkg.a", "pkg.b", "pkg.sub"]), ("bottom", ["pkg", "pkg.leaf"])]
    assert upward(g, layers) == ["pkg.leaf:1 imports pkg.top (bottom -> top)",
                                 "pkg.sub.low:1 imports pkg.top (middle -> top)"]


def test_the_training_loop_names_no_flags():
    """The engine and the collectives know no command line: their messages name concepts (the learning rate, the
    device), and a flag is the commands' word for one. Docstrings may show a command."""
    for name in ("engine.py", "distributed.py"):
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        texts = [n.value for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]
        flags = [t for t in texts if re.search(r"(^|\s)--[a-z]", t)]
        assert not flags, f"{name} names flags: {flags}"
