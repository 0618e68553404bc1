"""Typed configurations and tasks, in the cases mutation testing found untested (`make mutate`).

The configuration classes are defined inside the tests on purpose: a class statement runs
``Config.__init_subclass__`` and, at its first use, reads its parameters; classes defined at
module level would do both once, when the module is imported, before the code under test is
changed. Jobs are only planned (``run_mode="dry-run"``): nothing runs in worker processes.
"""

from __future__ import annotations

import hashlib
import linecache
import pickle
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest

from trialbook import Config, Constant, Meta, Param, Task, field, tag, tagspath
from trialbook.errors import ConfigError, SealedError
from trialbook.identity import canonical_bytes
from trialbook.tasks import experiment
from trialbook.tasks.options import param_help
from trialbook.tasks.submission import LightweightTask
from trialbook.tasks.tokens import CounterToken


def expected_id(type_id: str, params: dict[str, Any], *links: Any) -> str:
    """The documented identifier encoding: sha256 of the canonical bytes of the key."""
    return hashlib.sha256(
        canonical_bytes(["trialbook.task/1", type_id, params, *links])
    ).hexdigest()


# -- tags -------------------------------------------------------------------------------------


def test_tagspath_quotes_slashes_in_keys_and_values() -> None:
    """tagspath() is one path component: a "/" in a tag's name or value is quoted too."""

    class M(Config):
        x: Param[int] = 1

    assert tagspath(M.C().tag("a/b", "c/d")) == "a%2Fb=c%2Fd"


def test_a_bad_tag_value_names_its_type() -> None:
    """The error for a tag value that is not a str, int, float or bool says what it was."""
    expected = "a tag value must be a str, int, float or bool (got [1] that is a <class 'list'>)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        tag([1])


def test_tags_are_collected_from_configurations_in_lists_and_dicts() -> None:
    """tags() includes the tags of configurations held in list, tuple and dict parameters."""

    class Part(Config):
        n: Param[int] = 0

    class Whole(Config):
        listed: Param[list[Part]] = field(default_factory=list)
        paired: Param[tuple[Part, Part]]
        named: Param[dict[str, Part]] = field(default_factory=dict)

    whole = Whole.C(
        listed=[Part.C(n=tag(1))],
        paired=(Part.C(), Part.C().tag("b", 2)),
        named={"k": Part.C().tag("c", 3)},
    )
    assert whole.tags() == {"n": 1, "b": 2, "c": 3}


# -- reading the parameters of a class ---------------------------------------------------------


def test_local_classes_refer_to_each_other_in_string_annotations() -> None:
    """With ``from __future__ import annotations``, a class defined in a function may name
    other classes of that function; the identifier nests the inner one's."""

    class Inner(Config):
        __trialbook_id__ = "mut.inner"
        n: Param[int] = 1

    class Outer(Config):
        __trialbook_id__ = "mut.outer"
        inner: Param[Inner]
        items: Param[list[Inner]] = field(default_factory=list)

    outer = Outer.C(inner=Inner.C(n=2))
    inner_id = expected_id("mut.inner", {"n": 2})
    assert outer.inner.__identifier__() == inner_id
    assert outer.__identifier__() == expected_id("mut.outer", {"inner": Inner.C(n=2), "items": []})
    with pytest.raises(ConfigError, match="must be"):
        Outer.C(inner=3)


def test_an_unresolvable_annotation_is_reported_with_what_to_do() -> None:
    """A string annotation naming nothing known fails with a message saying what to change."""

    class Broken(Config):
        part: Param[Missing]  # type: ignore[name-defined]  # noqa: F821

    expected = (
        "cannot resolve the annotations of "
        "test_an_unresolvable_annotation_is_reported_with_what_to_do.<locals>.Broken: "
        "name 'Missing' is not defined; define the classes it refers to at module level "
        "(or avoid string annotations for local classes)"
    )
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Broken.C()


def test_parameters_of_a_base_class_are_inherited() -> None:
    """A subclass has the parameters of its direct base and of the bases above it."""

    class Base(Config):
        a: Param[int] = 1

    class Middle(Base):
        b: Param[int] = 2

    class Leaf(Middle):
        c: Param[int] = 3

    assert repr(Leaf.C(a=4)) == f"{Leaf.__qualname__}(a=4, b=2, c=3)"
    assert repr(Middle.C(a=5)) == f"{Middle.__qualname__}(a=5, b=2)"


def test_a_redeclared_parameter_without_default_becomes_required() -> None:
    """A subclass that declares a base's parameter again without a default makes it required:
    reading it before it is set raises, the base's default does not leak through."""

    class Base(Config):
        x: Param[int] = 3

    class Child(Base):
        x: Param[int]

    child = Child.C()
    with pytest.raises(AttributeError, match=r"parameter 'x' of .*Child is not set"):
        child.x  # noqa: B018
    assert Base.C().x == 3


def test_annotations_that_are_not_parameters_are_skipped() -> None:
    """Plain annotations (a ClassVar, an Annotated without a kind) are not parameters, and the
    parameters declared after them are still read."""

    class Mixed(Config):
        __trialbook_id__ = "mut.mixed"
        doc: Annotated[int, "just a note"]
        count: ClassVar[int]
        after: Param[int] = 5

    assert repr(Mixed.C()) == f"{Mixed.__qualname__}(after=5)"
    assert Mixed.C().__identifier__() == expected_id("mut.mixed", {"after": 5})


def test_each_kind_of_parameter_counts_as_documented() -> None:
    """Param counts; Meta, Path, field(ignored=True) and field(ignore_default=v) set to v do
    not; a Constant counts with its value; a default_factory gives a fresh value each time."""

    class Every(Task):
        __trialbook_id__ = "mut.every"
        n: Param[int]
        label: Meta[str] = "x"
        out: Param[Path] = Path("out")
        debug: Param[bool] = field(default=False, ignored=True)
        seed: Param[int] = field(ignore_default=0)
        names: Param[list[str]] = field(default_factory=list)
        version: Constant[int] = 2

    every = Every.C(n=1)
    assert every.__identifier__() == expected_id("mut.every", {"n": 1, "names": [], "version": 2})
    changed = Every.C(n=1, label="y", out=Path("elsewhere"), debug=True, seed=0)
    assert changed.__identifier__() == every.__identifier__()
    assert Every.C(n=1, seed=4).__identifier__() == expected_id(
        "mut.every", {"n": 1, "seed": 4, "names": [], "version": 2}
    )
    assert every.names is not Every.C(n=1).names
    with pytest.raises(ConfigError, match="must be"):
        Every.C(n="1")
    with pytest.raises(ConfigError, match=r"missing required parameter\(s\) 'n'"):
        Every.C().submit(run_mode="dry-run")


def test_missing_parameters_are_all_named() -> None:
    """Sealing a configuration that lacks several required parameters names them all."""

    class Two(Task):
        a: Param[int]
        b: Param[str]

    expected = "Two is missing required parameter(s) 'a', 'b'; set them"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Two.C().submit(run_mode="dry-run")


def test_a_constant_needs_a_value() -> None:
    """A Constant declared without a value is refused, saying how to give one."""

    class Versioned(Config):
        version: Constant[int] = 1

    assert Versioned.C().version == 1

    class Unversioned(Config):
        version: Constant[int]

    expected = (
        "constant 'version' of test_a_constant_needs_a_value.<locals>.Unversioned needs a "
        "value: version: Constant[...] = v"
    )
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Unversioned.C()


def test_ignore_defaults_on_local_classes_and_their_subclasses() -> None:
    """``class X(Config, ignore_defaults=True)``: a parameter equal to its bare default does not
    count; subclasses inherit the rule, ``ignore_defaults=False`` turns it off; it applies to
    Param only (a Meta never counts anyway)."""

    class Lenient(Config, ignore_defaults=True):
        __trialbook_id__ = "mut.lenient"
        n: Param[int] = 1
        note: Meta[str] = "m"

    class Sub(Lenient):
        __trialbook_id__ = "mut.lenient-sub"
        k: Param[int] = 2

    class Strict(Lenient, ignore_defaults=False):
        __trialbook_id__ = "mut.strict"
        k: Param[int] = 2

    assert Lenient.C().n == 1 and Lenient.C().note == "m"
    assert Lenient.C().__identifier__() == expected_id("mut.lenient", {})
    assert Lenient.C(n=3).__identifier__() == expected_id("mut.lenient", {"n": 3})
    assert Sub.C().__identifier__() == expected_id("mut.lenient-sub", {})
    assert Strict.C().__identifier__() == expected_id("mut.strict", {"k": 2})


def test_names_of_parameter_kinds_resolve_in_a_module_that_did_not_import_them() -> None:
    """String annotations may use Param, Meta, Constant and Option in a module that imported
    only Config, and may name classes of the module from inside its functions (the module is
    here a namespace given to exec, as a notebook or a generated script would)."""
    source = (
        "from __future__ import annotations\n"
        "class Inner(Config):\n"
        "    __trialbook_id__ = 'mut.exec-inner'\n"
        "    a: Param[int] = 1\n"
        "    b: Meta[int] = 2\n"
        "    c: Constant[int] = 3\n"
        "    d: Option[int] = 4\n"
        "def make():\n"
        "    class Outer(Config):\n"
        "        __trialbook_id__ = 'mut.exec-outer'\n"
        "        inner: Param[Inner]\n"
        "    return Outer\n"
    )
    namespace: dict[str, Any] = {"__name__": "mut_generated", "Config": Config}
    exec(compile(source, "<generated>", "exec"), namespace)
    inner = namespace["Inner"].C()
    assert repr(inner) == "Inner(a=1, b=2, c=3, d=4)"
    assert inner.__identifier__() == expected_id("mut.exec-inner", {"a": 1, "c": 3})
    outer = namespace["make"]().C(inner=inner)
    assert outer.__identifier__() == expected_id("mut.exec-outer", {"inner": inner})


def test_an_annotated_dunder_is_not_a_parameter() -> None:
    """An annotated class attribute with a dunder name (``__trialbook_id__: str = ...``) stays
    what it is: the class's type id, not a parameter."""

    class Named(Config):
        __trialbook_id__: ClassVar[str] = "mut.named"
        n: Param[int] = 1

    assert Named.C().__identifier__() == expected_id("mut.named", {"n": 1})


def test_xpmid_may_be_a_classmethod() -> None:
    """experimaestro's ``__xpmid__`` may be a classmethod returning the id."""

    class Dynamic(Config):
        n: Param[int] = 1

        @classmethod
        def __xpmid__(cls) -> str:
            return "mut.dynamic"

    assert Dynamic.C().__identifier__() == expected_id("mut.dynamic", {"n": 1})


# -- reading attributes ------------------------------------------------------------------------


def test_reading_an_unset_or_unknown_attribute_says_which() -> None:
    """An unset required parameter and an unknown name raise AttributeError with their own
    messages."""

    class Needs(Config):
        n: Param[int]

    needs = Needs.C()
    expected = "parameter 'n' of test_reading_an_unset_or_unknown_attribute_says_which"
    with pytest.raises(AttributeError, match=re.escape(expected + ".<locals>.Needs is not set")):
        needs.n  # noqa: B018
    unknown = "'test_reading_an_unset_or_unknown_attribute_says_which.<locals>.Needs' object has"
    with pytest.raises(AttributeError, match=re.escape(unknown + " no attribute 'other'")):
        needs.other  # noqa: B018
    assert not hasattr(needs, "n")


# -- tasks: execute, dependencies, callbacks ---------------------------------------------------


def test_a_task_without_execute_names_itself() -> None:
    """Calling execute() of a task class that does not define it names that class."""

    class Bare(Task):
        pass

    expected = f"{Bare.__qualname__} must define execute(self)"
    with pytest.raises(NotImplementedError, match=f"^{re.escape(expected)}$"):
        Bare.C().execute()


def test_add_dependencies_checks_and_collects_them(tmp_path: Path) -> None:
    """add_dependencies() accepts submitted tasks and token dependencies (the job waits for
    all of them, across calls), refuses anything else naming it, and refuses a sealed task."""

    class Step(Task):
        __trialbook_id__ = "mut.step"
        n: Param[int] = 0

        def execute(self) -> None:
            pass

    token = CounterToken("gpu", tmp_path / "tokens", 2)
    with experiment(tmp_path / "wd", "deps", run_mode="dry-run") as xp:
        first, second = Step.C(n=1).submit(), Step.C(n=2).submit()
        last = Step.C(n=3)
        last.add_dependencies(first)
        last.add_dependencies(second, token.dependency(1))
        with pytest.raises(ConfigError) as refused:
            last.add_dependencies(3)
        last.submit()
    message = (
        f"a dependency of {Step.__qualname__} must be a submitted Task or a token dependency "
        "(token.dependency(n)); got 3 that is a <class 'int'>"
    )
    assert str(refused.value) == message
    job = xp.scheduler.jobs[last.jobpath]
    assert [dep.task for dep in job.deps] == [first, second]
    assert [(t.token.name, t.count) for t in job.tokens] == [("gpu", 1)]
    sealed = f"{Step.__qualname__} is sealed (submitted): add dependencies before submit()"
    with pytest.raises(SealedError, match=f"^{re.escape(sealed)}$"):
        last.add_dependencies(first)


def test_on_completed_callbacks_go_to_the_job(tmp_path: Path) -> None:
    """A callback registered before submit() and one registered after both wait on the job."""

    class Quiet(Task):
        __trialbook_id__ = "mut.quiet"

        def execute(self) -> None:
            pass

    def before() -> None:
        pass

    def after() -> None:
        pass

    with experiment(tmp_path / "wd", "callbacks", run_mode="dry-run") as xp:
        task = Quiet.C()
        task.on_completed(before)
        task.submit()
        task.on_completed(after)
    assert xp.scheduler.jobs[task.jobpath].callbacks == [before, after]


def test_submit_passes_its_launcher_and_init_tasks_on(tmp_path: Path) -> None:
    """submit(launcher=..., init_tasks=[...]): the job gets that launcher, and the init tasks
    count in the identifier as ``["init-tasks", [their identifiers]]``."""

    class Load(LightweightTask):
        __trialbook_id__ = "mut.load"

        def execute(self) -> None:
            pass

    class Evaluate(Task):
        __trialbook_id__ = "mut.evaluate"

        def execute(self) -> None:
            pass

    launcher = object()
    with experiment(tmp_path / "wd", "launch", run_mode="dry-run") as xp:
        task = Evaluate.C().submit(launcher=launcher, init_tasks=[Load.C()])
    assert [job.launcher for job in xp.scheduler.jobs.values()] == [launcher]
    load_id = expected_id("mut.load", {})
    assert task.__identifier__() == expected_id("mut.evaluate", {}, ["init-tasks", [load_id]])


def test_an_output_of_a_task_includes_the_task_in_its_identifier() -> None:
    """A configuration returned through dep() in task_outputs counts the task's identifier
    as ``["output-of", task id]``."""

    class Weights(Config):
        __trialbook_id__ = "mut.weights"
        name: Param[str] = "w"

    class Train(Task):
        __trialbook_id__ = "mut.train"

        def task_outputs(self, dep: Any) -> Any:
            return dep(Weights.C())

        def execute(self) -> None:
            pass

    weights = Train.C().submit(run_mode="dry-run")
    train_id = expected_id("mut.train", {})
    assert weights.__identifier__() == expected_id(
        "mut.weights", {"name": "w"}, ["output-of", train_id]
    )


# -- submitted or not, and pickling ------------------------------------------------------------


class _Said(Task):
    """Module level, to be pickled (its parameters are read in the tests that use it)."""

    __trialbook_id__ = "mut.said"
    word: Param[str] = "hi"

    def execute(self) -> None:
        pass


class _Report(Task):
    __trialbook_id__ = "mut.report"
    said: Param[_Said]

    def execute(self) -> None:
        pass


def test_an_unsubmitted_task_parameter_is_refused_outside_an_experiment() -> None:
    """Even a dry run refuses a task whose task parameter (directly, in a list, or inside a
    configuration) was never submitted, naming where it is."""

    class Holder(Config):
        tasks: Param[list[_Said]]

    class Wrap(Task):
        holder: Param[Holder]

        def execute(self) -> None:
            pass

    expected = "_Report.submit(): its parameter 'said' is a _Said task that was never submitted"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        _Report.C(said=_Said.C()).submit(run_mode="dry-run")
    nested = "Wrap.submit(): its parameter 'holder.tasks' is a _Said task"
    with pytest.raises(ConfigError, match=re.escape(nested)):
        Wrap.C(holder=Holder.C(tasks=[_Said.C(word="a")])).submit(run_mode="dry-run")


def test_a_scheduled_task_pickles_with_its_job_directory(tmp_path: Path) -> None:
    """A task scheduled with ``xp.schedule`` (the job only) or ``submit()`` pickles with its
    job directory, without its job, dependencies or callbacks (a lambda callback does not
    stop it pickling), and once unpickled it is a submitted task others may depend on."""
    scheduled = _Said.C(word="scheduled")
    scheduled.__tb_seal__()
    submitted = _Said.C(word="submitted")
    submitted.on_completed(lambda: None)
    with experiment(tmp_path / "wd", "pickle", run_mode="dry-run") as xp:
        xp.schedule(scheduled)
        _Report.C(said=scheduled).submit()  # a task with a job counts as submitted
        submitted.add_dependencies(scheduled)
        submitted.submit()
    for task in (scheduled, submitted):
        state = task.__getstate__()
        assert not {"_tb_job", "_tb_deps", "_tb_callbacks"} & state.keys()
        clone = pickle.loads(pickle.dumps(task))
        assert clone.jobpath == task.jobpath
        assert clone.__identifier__() == task.__identifier__()
        with pytest.raises(SealedError):
            clone.word = "changed"
        assert _Report.C(said=clone).submit(run_mode="dry-run").said is clone


def test_a_task_with_callbacks_pickles_before_it_is_submitted() -> None:
    """Callbacks given to on_completed() stay in the submitting process: a task holding a
    lambda callback still pickles, and its copy has none."""
    task = _Said.C(word="later")
    task.on_completed(lambda: None)
    clone = pickle.loads(pickle.dumps(task))
    assert clone.__identifier__() == task.__identifier__()
    assert "_tb_callbacks" not in clone.__getstate__()


def test_help_of_a_class_whose_source_is_only_in_linecache() -> None:
    """The help texts of a class defined in a notebook cell (its source is known to linecache
    only, not as a module's file) are read from where the class statement ran."""
    filename = "<mut-notebook-cell-1>"
    source = 'class Cell(Config):\n    steps: Param[int] = 3\n    "How many steps"\n'
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        namespace: dict[str, Any] = {"__name__": "mut_notebook", "Config": Config}
        exec(compile(source, filename, "exec"), namespace)
        assert param_help(namespace["Cell"], "steps") == "How many steps"
    finally:
        del linecache.cache[filename]
