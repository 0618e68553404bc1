"""The public API: every exported name resolves and documents itself with an example."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import trialbook

RUNS_API = ["Run", "Runs", "RunsExperiment", "Session", "create_session", "current_run"]


PUBLIC_API = [
    # runs and chained steps
    "Run", "Runs", "RunsExperiment", "Sequence", "Session", "create_experiment",
    "create_session", "current_run", "load_model",
    # lazy step graph
    "Experiment", "Parameter",
    # typed tasks and plans
    "Config", "Task", "Param", "Meta", "Constant", "field", "tag", "tagspath", "experiment",
    "RunMode", "LocalLauncher", "ConfigurationBase", "configuration", "ExperimentHelper",
    "forwardoption", "arguments",
    # experimaestro's configuration names
    "Option", "setmeta", "cache", "copyconfig", "deprecate",
    # experimaestro's job names
    "LightweightTask", "PathGenerator", "progress", "get_experiment",
    # distributed execution
    "DaskLauncher", "SlurmLauncher",
    # stores and errors
    "open_store", "TrialbookError", "TrialbookWarning",
]  # fmt: skip


def test_public_api_is_pinned() -> None:
    """Adding or removing a public name is a decision: change this list and the changelog."""
    assert trialbook.__all__ == PUBLIC_API


def test_runs_api_is_exported() -> None:
    assert set(RUNS_API) <= set(trialbook.__all__)
    assert {"open_store", "TrialbookError", "TrialbookWarning"} <= set(trialbook.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(trialbook.__all__) == len(set(trialbook.__all__))


@pytest.mark.parametrize("name", trialbook.__all__)
def test_every_public_name_resolves_and_has_an_example(name: str) -> None:
    obj = getattr(trialbook, name)
    doc = inspect.getdoc(obj) or ""
    if name in {"TrialbookError", "TrialbookWarning"}:
        assert doc
        return
    assert ">>>" in doc or ">>>" in (inspect.getdoc(sys.modules[obj.__module__]) or ""), (
        f"{name} needs an Examples section"
    )


def test_import_is_light() -> None:
    """`import trialbook` loads none of the heavy libraries: they load on first use."""
    code = (
        "import sys, trialbook; heavy = {'pandas', 'numpy', 'pyarrow', 'dask', 'click', 'rich', "
        "'yaml', 'sqlalchemy', 'redis', 'pymongo', 'distributed'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trialbook.nope  # noqa: B018


def test_dir_lists_only_the_public_api() -> None:
    """`dir(trialbook)` shows what users may use, not the module's own imports."""
    listed = dir(trialbook)
    assert set(listed) == {*trialbook.__all__, "__version__"}
    assert not {"Any", "TYPE_CHECKING", "annotations", "importlib"} & set(listed)
    assert listed == sorted(listed)
