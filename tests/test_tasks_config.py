"""Typed configurations: validation, sealing, identifiers (golden table), tags, options."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from trialbook import (
    Config,
    Constant,
    Meta,
    Param,
    Task,
    arguments,
    field,
    forwardoption,
    tag,
    tagspath,
)
from trialbook.errors import ConfigError, SealedError
from trialbook.identity import canonical_bytes
from trialbook.tasks import experiment


class Model(Config):
    __trialbook_id__ = "golden.model"
    layers: Param[int] = 3
    "Number of layers"
    width: Param[float] = 1.0


class Learn(Task):
    __trialbook_id__ = "golden.learn"
    epochs: Param[int] = 100
    model: Param[Model]
    out: Param[Path] = Path("x")
    verbose: Meta[bool] = False
    version: Constant[int] = 1
    names: Param[list[str]] = field(default_factory=list)
    seed: Param[int] = field(ignore_default=0)
    debug: Param[bool] = field(default=False, ignored=True)

    def execute(self) -> None:
        pass


GOLDEN = [
    (Model.C, "5123bf69692b4780c7bf1257cb51bdc438e8ec10858e32d5990f1c2c36384c73"),
    (lambda: Model.C(layers=4), "c5aecd830356611beede469b7e5c411d477c0b791db8e4481556cdb79404068e"),
    (lambda: Model.C(width=2), "8346976c6b32fd8cd111e947213cffb9076b2c1f76f5587187d04d0bd5b2cf1f"),
    (
        lambda: Learn.C(model=Model.C()),
        "bdc67cfdc3702128068d0cf5c72e825b60a4470a2f656c11e6e30b0e9d2a6a85",
    ),
    (
        lambda: Learn.C(model=Model.C(layers=4), epochs=10, names=["a", "b"]),
        "cecbd5e5ce36db294d09da8025bb066f7e779fb5f628940d8260a127b13f6a42",
    ),
    (
        lambda: Learn.C(model=Model.C(), seed=1),
        "9f58e9a447e861cebb781265fb2c9b674b03c84ca8026b95d562fce481259a2a",
    ),
]


@pytest.mark.parametrize(("make", "expected"), GOLDEN)
def test_identifiers_stay_the_same(make, expected) -> None:
    """Known answers: changing one is a breaking change (changelog entry needed)."""
    assert make().__identifier__() == expected


def test_identifier_encoding_is_the_documented_one() -> None:
    inner = hashlib.sha256(
        canonical_bytes(["trialbook.task/1", "golden.model", {"layers": 3, "width": 1.0}])
    ).hexdigest()
    assert Model.C().__identifier__() == inner
    outer = {"epochs": 100, "model": Model.C(), "version": 1, "names": []}
    expected = hashlib.sha256(canonical_bytes(["trialbook.task/1", "golden.learn", outer]))
    assert Learn.C(model=Model.C()).__identifier__() == expected.hexdigest()


def test_identifier_ignores_meta_path_ignored_and_ignore_default() -> None:
    base = Learn.C(model=Model.C()).__identifier__()
    assert Learn.C(model=Model.C(), verbose=True).__identifier__() == base
    assert Learn.C(model=Model.C(), out=Path("elsewhere")).__identifier__() == base
    assert Learn.C(model=Model.C(), debug=True).__identifier__() == base
    assert Learn.C(model=Model.C(), seed=0).__identifier__() == base
    assert Learn.C(model=Model.C(), seed=2).__identifier__() != base
    assert Learn.C(model=Model.C(), epochs=tag(100)).__identifier__() == base


def test_identifier_is_order_independent_and_recursive() -> None:
    a = Learn.C(epochs=5, model=Model.C(layers=2, width=3.0))
    b = Learn.C()
    b.model = Model.C(width=3.0)
    b.model.layers = 2
    b.epochs = 5
    assert a.__identifier__() == b.__identifier__()
    b.model.layers = 7
    assert a.__identifier__() != b.__identifier__()


def test_int_given_to_float_is_converted() -> None:
    assert Model.C(width=2).width == 2.0
    assert type(Model.C(width=2).width) is float


def test_wrong_type_names_field_expected_and_received() -> None:
    expected = "parameter 'layers' of Model must be <class 'int'> (got '3' that is a <class 'str'>)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Model.C(layers="3")
    m = Model.C()
    with pytest.raises(ConfigError, match="'layers' of Model"):
        m.layers = 1.5
    with pytest.raises(ConfigError, match=r"'names\[1\]'"):
        Learn.C(names=["a", 2])
    with pytest.raises(ConfigError, match=r"no parameter 'layer'.*did you mean 'layers'"):
        Model.C(layer=2)


def test_constant_cannot_be_set() -> None:
    with pytest.raises(ConfigError, match="constant"):
        Learn.C(version=2)


def test_missing_parameter_is_reported_at_submit(tmp_path) -> None:
    missing = r"missing required parameter.*'model'"
    with experiment(tmp_path, "missing"), pytest.raises(ConfigError, match=missing):
        Learn.C().submit()


def test_validation_hook_is_called_before_submission(tmp_path) -> None:
    calls = []

    class Checked(Task):
        __trialbook_id__ = "test.checked"
        n: Param[int] = 1

        def __validate__(self) -> None:
            calls.append(self.n)
            if self.n < 0:
                raise ConfigError("n must be >= 0")

        def execute(self) -> None:
            pass

    with experiment(tmp_path, "validate", run_mode="dry-run"):
        with pytest.raises(ConfigError, match="n must be >= 0"):
            Checked.C(n=-1).submit()
        Checked.C(n=2).submit()
    assert calls == [-1, 2]


def test_submitted_task_and_its_configs_are_sealed(tmp_path) -> None:
    model = Model.C()
    learn = Learn.C(model=model)
    with experiment(tmp_path, "seal", run_mode="dry-run"):
        learn.submit()
    with pytest.raises(SealedError, match="sealed"):
        learn.epochs = 3
    with pytest.raises(SealedError, match="sealed"):
        model.layers = 3
    assert Model.C(layers=model.layers).__identifier__() == model.__identifier__()


def test_tags_and_tagspath() -> None:
    data = Model.C(layers=tag(4))
    learn = Learn.C(model=data, epochs=tag(10))
    learn.tag("run", "a b")
    assert learn.tags() == {"layers": 4, "epochs": 10, "run": "a b"}
    assert tagspath(learn) == "epochs=10_layers=4_run=a%20b"
    with pytest.raises(ConfigError, match="tag value"):
        tag([1])
    data.layers = 5  # a plain value replaces the tagged one, and its tag
    assert learn.tags() == {"epochs": 10, "run": "a b"}
    assert Model.C(width=tag(2)).tags() == {"width": 2.0}


def test_forwardoption_uses_type_default_and_help() -> None:
    @forwardoption(arguments(Model).layers)
    @click.command()
    def cli(layers: int) -> None:
        click.echo(repr(Model.C(layers=layers)))

    result = CliRunner().invoke(cli, ["--layers", "5"])
    assert result.output == "Model(layers=5, width=1.0)\n"
    assert "Number of layers" in CliRunner().invoke(cli, ["--help"]).output
    assert CliRunner().invoke(cli, ["--layers", "x"]).exit_code == 2


def test_parameter_help_is_read_past_wrappers_of_init_subclass() -> None:
    """The help of a parameter comes from the class statement's source, found from the frame
    that created the class, also when a base class (or a wrapper) adds __init_subclass__
    frames in between."""
    from trialbook.tasks.options import param_help

    registered: list[str] = []

    class Registered(Config):
        def __init_subclass__(cls, **kwargs: object) -> None:
            registered.append(cls.__name__)
            super().__init_subclass__(**kwargs)

    class Width(Registered):
        #: Width of each layer
        width: Param[int] = 8

    assert registered == ["Width"]
    assert param_help(Width, "width") == "Width of each layer"
