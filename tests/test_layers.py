"""The import rule of docs/architecture.md, executed: every module of ``src/trialbook`` imports
only from its own layer or those below it, top-level and in-function imports alike, and the three
ways of working (runs, graph, tasks) never import each other.

Layers, bottom up::

    errors
    identity codecs sequence names extras bulk notes   values, fingerprints, small shared rules
    notebook plots                           HTML of notebooks, metric curves (plain values in)
    storage/                                 the Store protocol and its backends
    tracking run_artifacts capture ...       the current run, its artifacts; snapshots; outages
    execution/                               executors: in-process, pool, Dask, Slurm
    runs* steps  graph*  tasks/              the three ways of creating runs (siblings)
    session, the package itself              the experiment layer (entry points)
    cli/  web/  testing  __main__            clients; nothing imports them
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "trialbook"

LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("identity", "codecs", "sequence", "names", "extras", "bulk", "notes", "notebook", "plots"),
    ("storage",),
    ("tracking", "run_artifacts", "models", "capture", "live", "journal"),
    ("execution",),
    (
        "runs",
        "runs_pool",
        "runs_copy",
        "runs_collection",
        "runs_meta",
        "runs_table",
        "runs_notebook",
        "steps",
        "graph",
        "tasks",
    ),
    ("session", "transfer", "__init__"),
    ("cli", "web", "testing", "integrations", "__main__"),
]
SIBLINGS = {
    "runs": "runs", "runs_pool": "runs", "runs_copy": "runs", "runs_collection": "runs",
    "runs_meta": "runs", "runs_table": "runs", "runs_notebook": "runs", "steps": "runs",
    "graph": "graph", "tasks": "tasks",
}  # fmt: skip
"""The three ways of working: one layer, and none imports another."""


def unit(module: str) -> str:
    """The first name under ``trialbook`` (``trialbook.storage.sql`` -> ``storage``); graph
    modules named ``graph_*`` belong to ``graph``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    return "graph" if name.startswith("graph_") else name


def layer(name: str) -> int:
    for level, names in enumerate(LAYERS):
        if name in names:
            return level
    msg = f"module unit {name!r} has no layer: add it to LAYERS (and docs/architecture.md)"
    raise AssertionError(msg)


def module_name(path: pathlib.Path, src: pathlib.Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: pathlib.Path, src: pathlib.Path = SRC) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``trialbook`` import in the file, wherever it stands."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, src)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "trialbook":  # `from trialbook import storage` names modules
                found += [(node.lineno, f"trialbook.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name.split(".")[0] == "trialbook"]


def is_module(name: str, src: pathlib.Path) -> bool:
    path = src.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(src: pathlib.Path = SRC) -> list[str]:
    found = []
    for path in sorted((src / "trialbook").rglob("*.py")):
        here = module_name(path, src)
        mine = unit(here)
        for line, imported in imports_of(path, src):
            # `from trialbook import Session` imports the package itself
            target = imported if is_module(imported, src) else "trialbook"
            theirs = unit(target)
            if theirs == mine:
                continue
            where = f"{path.relative_to(src)}:{line}: {here} imports {target}"
            if layer(theirs) > layer(mine):
                found.append(f"{where} (an upward import: {mine} is below {theirs})")
            elif mine in SIBLINGS and theirs in SIBLINGS and SIBLINGS[mine] != SIBLINGS[theirs]:
                found.append(f"{where} (two ways of working import each other)")
    return found


def test_every_unit_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer(unit(module_name(path)))


def test_imports_go_down_the_layers_only() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from trialbook.web.server import serve", "upward"),
        ("import trialbook.cli", "upward"),
        ("from trialbook import Session", "upward"),
        ("from trialbook.graph import Experiment", "each other"),
        ("from trialbook.errors import ConfigError", None),
    ],
)
def test_the_rule_catches_what_it_should(
    tmp_path: pathlib.Path, source: str, expected: str | None
) -> None:
    """An import planted in a small copy of the package is found (or, going down, allowed)."""
    for name in ("__init__", "errors", "graph", "tasks/__init__", "web/__init__", "web/server",
                 "cli/__init__"):  # fmt: skip
        (tmp_path / "trialbook" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "trialbook" / f"{name}.py").write_text("")
    (tmp_path / "trialbook" / "tasks" / "planted.py").write_text(f"def f():\n    {source}\n")
    found = violations(tmp_path)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0] and "planted.py:2" in found[0], found
