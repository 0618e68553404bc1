"""Identifier properties (Hypothesis), static typing of configurations (mypy), light imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import need

from trialbook.errors import ConfigError
from trialbook.tasks import Config, Meta, Param, field, tag

texts = st.text(max_size=8)
ints = st.integers(-(2**40), 2**40)
floats = st.floats(allow_nan=False, allow_infinity=False)
int_dicts = st.dictionaries(texts, ints, max_size=4)


class Inner(Config):
    __trialbook_id__ = "props.inner"
    n: Param[int] = 0
    label: Param[str] = ""


class Outer(Config):
    __trialbook_id__ = "props.outer"
    a: Param[int] = 0
    b: Param[float] = 0.0
    c: Param[str] = ""
    d: Param[dict[str, int]] = field(default_factory=dict)
    e: Param[list[int]] = field(default_factory=list)
    inner: Param[Inner] = field(default_factory=Inner)
    note: Meta[str] = ""
    workers: Param[int] = field(default=1, ignored=True)
    path: Param[Path] = Path(".")


values = st.fixed_dictionaries(
    {"a": ints, "b": floats, "c": texts, "d": int_dicts, "e": st.lists(ints, max_size=4)}
)


def build(params: dict, order: list[str], inner: tuple[int, str]) -> Outer:
    cfg = Outer.C()
    for name in order:
        setattr(cfg, name, params[name])
    cfg.inner = Inner.C(n=inner[0], label=inner[1])
    return cfg


@given(values, st.randoms(use_true_random=False), st.tuples(ints, texts))
def test_equal_configurations_have_equal_identifiers(params, rnd, inner) -> None:
    order = list(params)
    rnd.shuffle(order)
    reordered = dict(params, d=dict(reversed(list(params["d"].items()))))
    first = build(params, list(params), inner).__identifier__()
    assert build(reordered, order, inner).__identifier__() == first


@given(values, st.tuples(ints, texts), st.sampled_from(["a", "b", "c", "d", "e", "inner"]))
def test_changing_any_counted_parameter_changes_the_identifier(params, inner, name) -> None:
    cfg = build(params, list(params), inner)
    other = build(params, list(params), inner)
    if name == "inner":
        other.inner = Inner.C(n=inner[0] + 1, label=inner[1])
    elif name in ("a",):
        other.a = params["a"] + 1
    elif name == "b":
        other.b = params["b"] + 1.0 if abs(params["b"]) < 1e15 else 0.5
    elif name == "c":
        other.c = params["c"] + "x"
    elif name == "d":
        other.d = {**params["d"], "\x00new": 1}
    else:
        other.e = [*params["e"], 1]
    assert other.__identifier__() != cfg.__identifier__()


@given(values, st.tuples(ints, texts), texts, ints, texts)
def test_meta_ignored_path_and_tags_never_count(params, inner, note, workers, path) -> None:
    cfg = build(params, list(params), inner)
    other = build(params, list(params), inner)
    other.note, other.workers, other.path = note, workers, Path(path or ".")
    other.tag("extra", "yes")
    other.a = tag(params["a"])
    assert other.__identifier__() == cfg.__identifier__()


TYPED = """
from pathlib import Path
from trialbook import Config, Meta, Param, Task, field


class Model1(Config):
    layers: Param[int] = 3
    "Number of layers"


class Learn(Task):
    epochs: Param[int] = 100
    model: Param[Model1]
    out: Meta[Path] = field(default=Path("x"))

    def execute(self) -> None:
        pass


model = Model1.C(layers=3)
layers: int = model.layers
learned = Learn.C(epochs=10, model=model)
learned.model = model
wrong_type = Model1.C(layers="3")
typo = Learn.C(model=model, epoch=2)
wrong_attribute: str = model.layers
"""


def test_type_checkers_understand_configurations(tmp_path: Path) -> None:
    """mypy checks the keywords and types of `Cls.C(...)` and knows parameter types."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    need(mypy is not None, "mypy is not installed (pip install -e .[test])")
    (tmp_path / "typed.py").write_text(TYPED)
    result = subprocess.run(
        [mypy, "--no-incremental", "--cache-dir", str(tmp_path / "cache"), "typed.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    lines = result.stdout.splitlines()
    errors = [line.split(": error: ")[1] for line in lines if ": error: " in line]
    assert errors == [
        'Argument "layers" to "Model1" has incompatible type "str"; expected "int"  [arg-type]',
        'Unexpected keyword argument "epoch" for "Learn"; did you mean "epochs"?  [call-arg]',
        'Incompatible types in assignment (expression has type "int", variable has type "str")'
        "  [assignment]",
    ], result.stdout


def test_importing_tasks_loads_neither_yaml_nor_click() -> None:
    code = textwrap.dedent("""
        import sys
        import trialbook.tasks
        from trialbook import Config, Task, experiment
        print(sorted(m for m in ("yaml", "click", "cloudpickle", "dask") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


@pytest.mark.parametrize("bad", [1.5, "x", None])
def test_nested_configuration_type_is_checked(bad) -> None:
    with pytest.raises(ConfigError, match="'inner' of Outer must be"):
        Outer.C(inner=bad)
