"""experimaestro 1.x configuration code runs with only the import changed (issue 13).

Each test follows an example of experimaestro's documentation, rewritten: chained ``tag``,
attributes set by ``execute()``, unsubmitted tasks as parameters, ``Option``, ``setmeta``,
``@cache``, ``copyconfig``, ``deprecate``, ``__xpmid__`` and the "defaults do not count" rule.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from trialbook import (
    Config,
    Meta,
    Option,
    Param,
    Task,
    cache,
    copyconfig,
    deprecate,
    experiment,
    field,
    setmeta,
    tag,
)
from trialbook.errors import ConfigError, JobFailedError, SealedError, TrialbookWarning
from trialbook.tasks.jobdir import read_params

# -- the two-task example of experimaestro's README: Say, then Concat of what they said --


class Say(Task):
    __trialbook_id__ = "test.xpm.say"
    word: Param[str]

    def execute(self) -> None:
        Path("said.txt").write_text(self.word.upper())


class Concat(Task):
    __trialbook_id__ = "test.xpm.concat"
    strings: Param[list[Say]]

    def execute(self) -> None:
        print(" ".join((s.jobpath / "said.txt").read_text() for s in self.strings))


def test_tag_returns_the_configuration_so_calls_chain(tmp_path: Path) -> None:
    with experiment(tmp_path, "readme") as xp:
        hello, world = Say.C(word="hello").submit(), Say.C(word="world").submit()
        concat = Concat.C(strings=[hello, world]).tag("y", 1).submit()
    assert (concat.jobpath / "stdout.log").read_text() == "HELLO WORLD\n"
    assert concat.tags() == {"y": 1}
    assert read_params(concat.jobpath)["tags"] == {"y": 1}
    assert concat.jobpath.parent == xp.workdir / "jobs" / "test.xpm.concat"


# -- attributes that are not parameters, set while the job runs --


class Train(Task):
    __trialbook_id__ = "test.xpm.train"
    layers: Param[int] = 2

    def execute(self) -> None:
        self.model = ["layer"] * self.layers  # not a parameter: a plain attribute
        self.model.append("head")
        print(len(self.model))


class Overwrite(Task):
    __trialbook_id__ = "test.xpm.overwrite"
    layers: Param[int] = 2

    def execute(self) -> None:
        self.layers = 5  # a declared parameter: refused, the job fails


def test_execute_may_set_attributes_that_are_not_parameters(tmp_path: Path) -> None:
    with experiment(tmp_path, "attrs"):
        task = Train.C().submit()
    assert (task.jobpath / "stdout.log").read_text() == "3\n"


def test_execute_may_not_set_a_declared_parameter(tmp_path: Path) -> None:
    failed = pytest.raises(JobFailedError, match="SealedError: Overwrite is sealed")
    with failed, experiment(tmp_path, "attrs"):
        Overwrite.C().submit()


def test_before_submission_unknown_names_are_still_refused() -> None:
    """A typo is caught while a configuration is built; only sealed ones take plain attributes."""
    task = Train.C()
    with pytest.raises(ConfigError, match=r"Train has no parameter 'layer'.*did you mean 'layers'"):
        task.layer = 3
    task.__tb_seal__()
    task.cache = {"ready": True}  # sealed: a plain attribute
    with pytest.raises(SealedError, match="cannot set 'layers'"):
        task.layers = 3
    assert task.cache == {"ready": True}
    assert repr(task) == "Train(layers=2)"


def test_plain_attributes_do_not_count_and_are_not_saved() -> None:
    task = Train.C()
    task.__tb_seal__()
    before = task.__identifier__()
    task.model = object()  # not picklable state, e.g. a loaded network
    assert Train.C().__identifier__() == before
    copy = pickle.loads(pickle.dumps(task))
    assert "model" not in copy.__dict__
    assert copy.layers == 2


# -- an unsubmitted task as a parameter --


class Report(Task):
    __trialbook_id__ = "test.xpm.report"
    said: Param[Say]

    def execute(self) -> None:
        print((self.said.jobpath / "said.txt").read_text())


class Settings(Config):
    __trialbook_id__ = "test.xpm.settings"
    verbose: Param[bool] = False


class Holder(Config):
    __trialbook_id__ = "test.xpm.holder"
    inner: Param[Say]


class Wrapped(Task):
    __trialbook_id__ = "test.xpm.wrapped"
    holder: Param[Holder]
    settings: Param[Settings]

    def execute(self) -> None:
        pass


def test_an_unsubmitted_task_as_parameter_is_refused_naming_both(tmp_path: Path) -> None:
    with experiment(tmp_path, "deps"):
        report = Report.C(said=Say.C(word="hi"))
        with pytest.raises(ConfigError) as caught:
            report.submit()
        assert str(caught.value) == (
            "Report.submit(): its parameter 'said' is a Say task that was never submitted; call "
            "submit() on the Say first (then Report waits for its job), or give a configuration "
            "that is not a Task"
        )
        nested = Wrapped.C(holder=Holder.C(inner=Say.C(word="x")), settings=Settings.C())
        with pytest.raises(ConfigError, match=r"parameter 'holder\.inner' is a Say task"):
            nested.submit()
    assert not report.__dict__["_tb_sealed"]  # refused before anything was sealed


def test_a_plain_config_and_a_submitted_task_are_fine(tmp_path: Path) -> None:
    with experiment(tmp_path, "deps"):
        said = Say.C(word="hi").submit()
        report = Report.C(said=said).submit()
        wrapped = Wrapped.C(holder=Holder.C(inner=said), settings=Settings.C()).submit()
    assert (report.jobpath / "stdout.log").read_text() == "HI\n"  # it waited for Say's job
    assert wrapped.jobpath.exists()


# -- Option and setmeta --


def test_a_task_checked_with_a_dry_run_may_be_the_parameter_of_another() -> None:
    """submit(run_mode="dry-run") outside an experiment counts as submitted: a plan whose
    tasks depend on each other can be checked without a workdir."""
    said = Say.C(word="hi").submit(run_mode="dry-run")
    report = Report.C(said=said).submit(run_mode="dry-run")
    assert len(report.__identifier__()) == 64


class Model(Config):
    __trialbook_id__ = "test.xpm.model"
    layers: Param[int] = 3
    name: Option[str] = "unnamed"


class Ensemble(Config):
    __trialbook_id__ = "test.xpm.ensemble"
    models: Param[list[Model]]
    monitor: Param[Model | None] = None
    reference: Meta[Model | None] = None


def test_option_is_a_parameter_that_does_not_count() -> None:
    assert Model.C(name="best").__identifier__() == Model.C().__identifier__()
    assert Model.C(name="best").name == "best"
    with pytest.raises(ConfigError, match="parameter 'name' of Model must be <class 'str'>"):
        Model.C(name=3)


def test_setmeta_true_leaves_a_configuration_out_of_its_holders_identifier() -> None:
    small, big = Model.C(layers=1), Model.C(layers=8)
    plain = Ensemble.C(models=[small])
    assert Ensemble.C(models=[small, setmeta(big, True)]).__identifier__() == plain.__identifier__()
    assert Ensemble.C(models=[small, Model.C(layers=8)]).__identifier__() != plain.__identifier__()
    watched = Ensemble.C(models=[small], monitor=setmeta(Model.C(layers=9), True))
    assert watched.__identifier__() != plain.__identifier__()  # monitor=None counts in plain
    other = Ensemble.C(models=[small], monitor=setmeta(Model.C(layers=4), True))
    assert watched.__identifier__() == other.__identifier__()


def test_setmeta_false_makes_a_meta_parameter_count() -> None:
    one = Ensemble.C(models=[], reference=Model.C(layers=1))
    two = Ensemble.C(models=[], reference=Model.C(layers=2))
    assert one.__identifier__() == two.__identifier__()
    setmeta(one.reference, False)
    setmeta(two.reference, False)
    assert one.__identifier__() != two.__identifier__()


def test_setmeta_refuses_a_sealed_configuration_and_bad_values() -> None:
    model = Model.C()
    assert setmeta(model, True) is model
    model.__tb_seal__()
    with pytest.raises(SealedError, match="Model is sealed"):
        setmeta(model, False)
    with pytest.raises(ConfigError, match=r"needs True or False as flag \(got 1"):
        setmeta(Model.C(), 1)  # type: ignore[arg-type]


# -- @cache --


class Terms(Config):
    __trialbook_id__ = "test.xpm.terms"
    size: Param[int] = 4
    log: Meta[str] = ""

    @cache("terms.txt")
    def load(self, path: Path) -> str:
        if not path.exists():
            with open(self.log, "a") as log:
                log.write("computed\n")
            path.write_text(",".join(str(i * i) for i in range(self.size)))
        return path.read_text()


class UseTerms(Task):
    __trialbook_id__ = "test.xpm.useterms"
    terms: Param[Terms]

    def execute(self) -> None:
        print(self.terms.load())


def test_cache_computes_once_per_identifier_in_the_experiment_and_in_jobs(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with experiment(tmp_path / "work", "cache") as xp:
        assert Terms.C(log=str(log)).load() == "0,1,4,9"
        job = UseTerms.C(terms=Terms.C(log=str(log))).submit()
        other = UseTerms.C(terms=Terms.C(size=2, log=str(log))).submit()
    assert (job.jobpath / "stdout.log").read_text() == "0,1,4,9\n"
    assert (other.jobpath / "stdout.log").read_text() == "0,1\n"
    assert log.read_text() == "computed\n" * 2  # size=4 once (experiment, then job), size=2 once
    folder = xp.workdir / "config" / "test.xpm.terms" / Terms.C().__identifier__()
    assert (folder / "terms.txt").read_text() == "0,1,4,9"
    assert (folder / "terms.txt.lock").exists()


def test_cache_needs_a_workdir_and_a_relative_name() -> None:
    with pytest.raises(ConfigError, match=r"Terms.load\(\) uses a cache folder, which needs a"):
        Terms.C().load()
    with pytest.raises(ConfigError, match="relative file name inside the cache folder"):
        cache("/etc/passwd")


# -- copyconfig --


def test_copyconfig_varies_a_submitted_configuration(tmp_path: Path) -> None:
    with experiment(tmp_path, "copy"):
        first = Say.C(word=tag("hello")).submit()
        second = copyconfig(first, word="bye")
        assert not second.__dict__["_tb_sealed"]
        assert second.tags() == {}  # the tagged value was replaced
        kept = copyconfig(first)
        assert kept.tags() == {"word": "hello"}
        assert kept.__identifier__() == first.__identifier__()
        second.submit()
    assert (second.jobpath / "said.txt").read_text() == "BYE"
    assert second.jobpath != first.jobpath
    with pytest.raises(ConfigError, match="copyconfig\\(\\) needs a configuration"):
        copyconfig({"word": "x"})  # type: ignore[type-var]


def test_copyconfig_shares_nested_configurations_and_copies_lists() -> None:
    small = Model.C(layers=1)
    ensemble = Ensemble.C(models=[small])
    copy = copyconfig(ensemble)
    copy.models.append(Model.C())
    assert copy.models[0] is small
    assert len(ensemble.models) == 1


# -- deprecate --


class Encoder(Task):
    __trialbook_id__ = "test.xpm.encoder"
    dim: Param[int] = 8

    def execute(self) -> None:
        print("encoding", self.dim)


@deprecate
class OldEncoder(Encoder):
    pass


def test_a_deprecated_class_identifies_as_the_class_replacing_it(tmp_path: Path) -> None:
    assert OldEncoder.C(dim=4).__identifier__() == Encoder.C(dim=4).__identifier__()
    assert OldEncoder.__trialbook_type_id__() == "test.xpm.encoder"
    assert OldEncoder.__tb_deprecated_id__.endswith("OldEncoder")  # type: ignore[attr-defined]
    with experiment(tmp_path, "deprecated"):
        new = Encoder.C(dim=4).submit()
        old = OldEncoder.C(dim=4).submit()
    assert old.jobpath == new.jobpath
    assert (new.jobpath / "stdout.log").read_text() == "encoding 4\n"  # ran once


def test_deprecating_a_class_with_its_own_parameters_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"declares parameters of its own \(extra\)"):

        @deprecate
        class Extended(Encoder):
            extra: Param[int] = 1

    with pytest.raises(ConfigError, match="derives from exactly one configuration class"):

        @deprecate
        class Alone(Task):
            pass


class Learning(Config):
    __trialbook_id__ = "test.xpm.learning"
    losses: Param[list[str]] = field(default_factory=list)

    @deprecate
    def loss(self, value: str) -> None:
        assert not self.losses, "give either loss (deprecated) or losses"
        self.losses = [value]


def test_a_deprecated_parameter_warns_and_sets_its_replacement() -> None:
    with pytest.warns(TrialbookWarning, match="parameter 'loss' of Learning is deprecated"):
        old = Learning.C(loss="mse")
    assert old.losses == ["mse"]
    assert old.__identifier__() == Learning.C(losses=["mse"]).__identifier__()
    with pytest.raises(AttributeError, match="'loss' of Learning is a deprecated parameter"):
        old.loss  # noqa: B018
    old.__tb_seal__()
    with pytest.raises(SealedError, match="cannot set 'loss'"):
        old.loss = "l1"


def test_deprecate_refuses_other_values() -> None:
    with pytest.raises(ConfigError, match="deprecate\\(\\) takes a configuration class"):
        deprecate(3)


# -- identifiers: __xpmid__ and experimaestro's default rule --


class Named(Config):
    __xpmid__ = "my.model"
    gamma: Param[float] = 1.0


def test_xpmid_names_the_type_like_trialbook_id() -> None:
    class Same(Config):
        __trialbook_id__ = "my.model"
        gamma: Param[float] = 1.0

    assert Named.__trialbook_type_id__() == "my.model"
    assert Named.C().__identifier__() == Same.C().__identifier__()


class Before(Config):
    __trialbook_id__ = "test.xpm.evolving"
    a: Param[int]


class Added(Config, ignore_defaults=True):
    __trialbook_id__ = "test.xpm.evolving"
    a: Param[int]
    b: Param[int] = 4  # a new parameter with an experimaestro-style bare default
    name: Meta[str] = "x"


class AddedChild(Added):
    d: Param[str] = "new"  # the option is inherited


class Explicit(Config, ignore_defaults=True):
    __trialbook_id__ = "test.xpm.evolving"
    a: Param[int]
    c: Param[int] = field(default=0)  # explicit: counts even at its default


def test_ignore_defaults_lets_a_parameter_be_added_without_new_identifiers() -> None:
    old = Before.C(a=2).__identifier__()
    assert Added.C(a=2).__identifier__() == old
    assert Added.C(a=2, b=4).__identifier__() == old
    assert Added.C(a=2, b=5).__identifier__() != old
    assert Added.C(a=2).b == 4
    assert AddedChild.C(a=2, d="new").__identifier__() == AddedChild.C(a=2).__identifier__()
    assert AddedChild.C(a=2, d="other").__identifier__() != AddedChild.C(a=2).__identifier__()
    assert Explicit.C(a=2).__identifier__() != old


def test_without_the_option_a_bare_default_counts() -> None:
    """trialbook's default (pinned by the golden identifiers): a bare default counts."""

    class Plain(Config):
        __trialbook_id__ = "test.xpm.evolving"
        a: Param[int]
        b: Param[int] = 4

    assert Plain.C(a=2).__identifier__() != Before.C(a=2).__identifier__()


def test_cache_inside_a_job_directory_finds_the_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job runs in its directory: with no experiment block open, @cache finds the workdir
    from there (the process a launcher started has no experiment of its own)."""
    from trialbook.tasks.jobdir import job_path, write_params

    path = job_path(tmp_path, "test.xpm.useterms", "abc123")
    path.mkdir(parents=True)
    write_params(
        path, task="test.xpm.useterms", identifier="abc123", experiment="e", params={}, tags={}
    )
    monkeypatch.chdir(path)
    assert Terms.C(size=2, log=str(tmp_path / "log")).load() == "0,1"
    assert (tmp_path / "config" / "test.xpm.terms" / Terms.C(size=2).__identifier__()).is_dir()
    monkeypatch.chdir(tmp_path)  # not a job directory
    with pytest.raises(ConfigError, match="needs a workdir"):
        Terms.C(size=2).load()
