"""The contract every store backend passes: :class:`StoreContract`.

Subclass it in a test module and provide a ``store`` fixture that yields a fresh, empty store
(its own database, schema or key prefix) and cleans it up afterwards, and a ``store_password``
fixture: the password in the URL that store was opened from, which must never show (``None``
for a backend without passwords; a backend that takes one should be opened with one)::

    import pytest
    from trialbook.testing import StoreContract
    from trialbook.storage.sqlite import SqliteStore

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = SqliteStore(tmp_path / "t.db")
            yield store
            store.close()

        @pytest.fixture
        def store_password(self):
            return None  # e.g. open_store("postgresql://ann:s3cret@host/db") -> "s3cret"

Each test exercises one promise of :class:`trialbook.storage.Store` through its public methods
only, so the same suite runs unchanged against SQLite, PostgreSQL, Redis and MongoDB.
"""

from __future__ import annotations

import math
from typing import Any

from trialbook.codecs import Encoded, decode, encode
from trialbook.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    RunConflictError,
)
from trialbook.storage.records import ErrorInfo, MetricChunk, RunRecord

__all__ = ["QUERY_RUNS", "QUERY_TABLE", "StoreContract", "metric_chunk"]


def metric_chunk(
    run_id: int, name: str, values: list[float], first_step: int = 0, start: int | None = None
) -> MetricChunk:
    """A chunk of consecutive steps from ``first_step``, for tests; its position in the series
    (``start``) is ``first_step`` unless given.

    Examples
    --------
    >>> chunk = metric_chunk(1, "loss", [0.5, 0.25], first_step=3)
    >>> chunk.count, chunk.start
    (2, 3)
    """
    import numpy as np

    steps = np.arange(first_step, first_step + len(values), dtype="<i8")
    return MetricChunk(
        run_id,
        name,
        len(values),
        steps.tobytes(),
        np.asarray(values, dtype="<f8").tobytes(),
        np.linspace(1.0, 2.0, len(values)).astype("<f8").tobytes(),
        first_step if start is None else start,
    )


# The query language's rules (trialbook.storage.query), as fixed answers over QUERY_RUNS: every
# store gives exactly these run ids, whether it filters in SQL (SQLite) or in Python.
QUERY_RUNS = [
    RunRecord(1, status="done", key="1", seed=10, created=1.5,
              params={"x": 2, "flag": True, "s": "2", "lr": 0.1, "big": 2**60, "name": "Z",
                      "cfg": {"b": 1, "a": [True]}},
              fields={"note": "x"}, metrics={"loss": [3, 0.5, 0.25, 2.0]}, started=1.0,
              finished=3.5,
              result=[1, 2]),
    RunRecord(2, status="failed", seed=None,
              params={"x": 2.0, "flag": 1, "s": "a", "big": 2.0**60, "name": "é"},
              tags={"note": "y"}, metrics={"loss": [3, "n/a"]}, started=2.0, finished=2.5,
              error=ErrorInfo("ValueError", "bad", "")),
    RunRecord(3, status="done", key="k3", seed=3,
              params={"x": "2", "flag": False, "s": None, "lr": 0.3, "big": 2**60 + 1,
                      "name": "a", "cfg": [1, 2]},
              fields={"note": None}, tags={"note": "z"}, metrics={"loss": [3, 1.5, 1.5, 1.5]},
              result="done"),
    RunRecord(4, status="running", seed=0, params={"x": None, "lr": "0.1", "name": "ä"}),
]  # fmt: skip
QUERY_TABLE = [
    # a text never equals a number, on columns too (SQLite's affinity would convert it)
    ('run_id == "2"', []),
    ("run_id == 2", [2]),
    ('seed != "10"', [1, 3, 4]),
    ("seed != 10", [3, 4]),
    ('run_id in ["1", "3"]', []),
    ("run_id in [1, 3]", [1, 3]),
    ("key == 1", []),
    ('key == "1"', [1]),
    ('created == "1.5"', []),
    ("created == 1.5", [1]),
    ('x == "2"', [3]),
    ("x != 2", [3]),
    ('lr == "0.1"', [4]),
    ("lr == 0.1", [1]),
    # booleans are the numbers 1 and 0; an int equals the same float
    ("flag == 1", [1, 2]),
    ("flag == True", [1, 2]),
    ("flag == 0", [3]),
    ("x == 2", [1, 2]),
    ("x in [2]", [1, 2]),
    # across types, numbers sort before texts
    ("lr > 0.2", [3, 4]),
    ('seed < "a"', [1, 3, 4]),
    # missing or None: a comparison is unknown, `== None` / `!= None` test presence
    ("x == None", [4]),
    ("lr != None", [1, 3, 4]),
    ("seed == None", [2]),
    ("not (s == 'a')", [1]),
    ("not (x == 2) and lr != None", [3]),
    # `in` is an `or` of `==`: unknown for a missing value or a None item that nothing matched;
    # an empty list is false for every run (missing values included), `not in` its negation
    ('s in ["2", 2]', [1]),
    ('s not in ["a"]', [1]),
    ('s in ["a", None]', [2]),
    ("lr in []", []),
    ("not (lr in [])", [1, 2, 3, 4]),
    ("lr not in []", [1, 2, 3, 4]),
    # and / or / not
    ('s == "2" or seed == 0', [1, 4]),
    ('status == "done" and not (lr > 0.2)', [1]),
    ('status in ["done", "running"] and not (x == 2)', [3]),
    # ints beyond 64 bits compare exactly (SQLite cannot bind them): 2**65, 2**65 + 1, 10**20
    ("seed == 36893488147419103232", []),
    ("seed != 36893488147419103233", [1, 3, 4]),
    ("x < 100000000000000000000", [1, 2]),
    ("-100000000000000000000 < x", [1, 2, 3]),  # texts sort after every number
    ("created <= 36893488147419103233", [1]),
    ("not (lr >= 36893488147419103233)", [1, 3]),
    ("run_id in [1, 36893488147419103233]", [1]),
    ("s not in [36893488147419103233]", [1, 2]),
    # integers and floats compare exactly, beyond 2**53 too (2**60 == 2.0**60)
    ("big == 1.152921504606847e+18", [1, 2]),
    ("big > 1152921504606846976", [3]),
    # texts compare by code point, whatever the database's collation
    ('name > "Z"', [2, 3, 4]),
    ('name < "b"', [1, 3]),
    # a list or an object is its compact JSON text, keys in their order
    ("""cfg == '{"b":1,"a":[true]}'""", [1]),
    ('cfg == "[1,2]"', [3]),
    # a bare name: the parameter, else the field, else the tag (a None is skipped)
    ('note == "x"', [1]),
    ('note == "z"', [3]),
    # metrics (their last value), duration, result and error
    ("metric.loss > 1", [2, 3]),
    # a metric's count, last, min and max (run 2's summary, written before min and max were
    # kept, has none)
    ("metric.loss.min < 1", [1]),
    ("metric.loss.max >= 1.5", [1, 3]),
    ("metric.loss.min == None", [2, 4]),
    ("metric.loss.count == 3", [1, 2, 3]),
    ("metric.loss.last == 0.5", [1]),
    ("duration == 2.5", [1]),
    ("duration < 1", [2]),
    ('result == "[1,2]"', [1]),
    ('result == "done"', [3]),
    ('error == "ValueError"', [2]),
    ("error == None", [1, 3, 4]),
]
"""``(filter, run ids it keeps)`` over :data:`QUERY_RUNS`, on every store."""


class StoreContract:
    """Tests every backend must pass; needs a ``store`` fixture (see the module docs)."""

    # -- experiments --

    def test_new_store_is_empty(self, store: Any) -> None:
        assert store.list_experiments() == []
        assert store.find_experiment("nope") is None

    def test_create_find_and_list_experiments(self, store: Any) -> None:
        b = store.create_experiment("b", meta={"owner": "ann"})
        a = store.create_experiment("a")
        assert [e.name for e in store.list_experiments()] == ["a", "b"]
        found = store.find_experiment("b")
        assert found is not None
        assert (found.id, found.name, found.meta, found.runs) == (b.id, "b", {"owner": "ann"}, 0)
        assert a.id != b.id

    def test_names_are_exact(self, store: Any) -> None:
        store.create_experiment("my-exp")
        store.create_experiment("My Exp")
        store.create_experiment("my_exp")
        assert [e.name for e in store.list_experiments()] == ["My Exp", "my-exp", "my_exp"]

    def test_names_are_case_sensitive(self, store: Any) -> None:
        """``loss``, ``Loss`` and ``loss `` are three names (MySQL's default collations would
        fold case and ignore trailing spaces)."""
        names = ["loss", "Loss", "loss "]
        infos = [store.create_experiment(name) for name in names]
        assert sorted(e.name for e in store.list_experiments()) == sorted(names)
        for name, info in zip(names, infos, strict=True):
            assert store.find_experiment(name).id == info.id
        e = infos[0].id
        store.write_runs(
            e,
            [RunRecord(run_id=1)],
            [metric_chunk(1, name, [float(i)]) for i, name in enumerate(names)],
            artifacts=[(1, name, Encoded("json", str(i).encode())) for i, name in enumerate(names)],
            step_hashes=[(name, "in", f"out{i}", 1) for i, name in enumerate(names)],
        )
        assert store.metric_names(e, 1) == dict.fromkeys(names, 1)
        for i, name in enumerate(names):
            assert store.read_metrics(e, name, [1])[1].values.tolist() == [float(i)]
            assert store.read_artifact(e, 1, name) == Encoded("json", str(i).encode())
        assert store.list_artifacts(e, 1) == dict.fromkeys(names, 1)
        hashes = store.get_step_hashes(e, [(name, "in") for name in names])
        assert hashes == {(name, "in"): (f"out{i}", 1) for i, name in enumerate(names)}

    def test_long_names_are_stored_intact_or_refused(self, store: Any) -> None:
        """A 300-character name (experiment, metric, artifact, step) and a 40-character status
        or kind are stored intact, or refused with a :class:`ConfigError` that gives the length
        before anything of the write is stored: never cut to a column's size."""
        from trialbook.errors import ConfigError

        long = "n" * 299 + "!"
        info = store.create_experiment("long")
        attempts: list[tuple[str, Any, Any]] = [
            ("experiment", lambda: store.create_experiment(long),
             lambda: store.find_experiment(long).name == long),
            ("metric", lambda: store.write_runs(info.id, [RunRecord(1)],
                                                [metric_chunk(1, long, [1.0])]),
             lambda: store.read_metrics(info.id, long, [1])[1].values.tolist() == [1.0]),
            ("artifact", lambda: store.write_runs(info.id, [RunRecord(2)],
                                                  artifacts=[(2, long, Encoded("json", b"1"))]),
             lambda: store.read_artifact(info.id, 2, long) == Encoded("json", b"1")),
            ("step", lambda: store.write_runs(info.id, [RunRecord(3)],
                                              step_hashes=[(long, "in", "out", 3)]),
             lambda: store.get_step_hashes(info.id, [(long, "in")]) == {(long, "in"): ("out", 3)}),
            ("status", lambda: store.write_runs(info.id, [RunRecord(4, status="s" * 40)]),
             lambda: store.read_runs(info.id, [4])[0].status == "s" * 40),
            ("kind", lambda: store.write_runs(info.id, [RunRecord(5, kind="k" * 40)]),
             lambda: store.read_runs(info.id, [5])[0].kind == "k" * 40),
        ]  # fmt: skip
        for number, (what, write, intact) in enumerate(attempts):
            try:
                write()
            except ConfigError as exc:
                assert "characters" in str(exc), (what, str(exc))
                if number:  # the run written with the refused value is not there
                    assert store.read_runs(info.id, [number]) == [], what
            else:
                assert intact(), f"a long {what} was not stored intact"
        names = {e.name for e in store.list_experiments()}
        assert names <= {"long", long}, "an experiment name was cut"
        assert set(store.metric_names(info.id)) <= {long}, "a metric name was cut"
        assert set(store.list_artifacts(info.id, 2)) <= {long}, "an artifact name was cut"

    def test_create_existing_experiment_fails_unless_replace(self, store: Any) -> None:
        first = store.create_experiment("x")
        store.write_runs(first.id, [RunRecord(run_id=1)])
        try:
            store.create_experiment("x")
        except ExperimentExistsError as exc:
            assert "x" in str(exc)
        else:
            raise AssertionError("creating an existing experiment must fail")
        assert store.find_experiment("x").runs == 1
        second = store.create_experiment("x", replace=True)
        assert store.find_experiment("x").runs == 0
        assert store.read_runs(second.id) == []

    def test_delete_experiment_removes_everything(self, store: Any) -> None:
        keep = store.create_experiment("keep")
        gone = store.create_experiment("gone")
        for info in (keep, gone):
            store.write_runs(info.id, [RunRecord(run_id=1)], [metric_chunk(1, "m", [1.0])])
            store.write_artifact(info.id, 1, "a", Encoded("npy", b"x"))
        store.delete_experiment("gone")
        assert [e.name for e in store.list_experiments()] == ["keep"]
        assert store.read_metrics(keep.id, "m", [1])[1].values.tolist() == [1.0]
        assert store.read_artifact(keep.id, 1, "a") == Encoded("npy", b"x")
        try:
            store.delete_experiment("gone")
        except ExperimentNotFoundError as exc:
            assert "keep" in str(exc)
        else:
            raise AssertionError("deleting a missing experiment must fail")

    def test_update_meta_merges(self, store: Any) -> None:
        info = store.create_experiment("m", meta={"a": 1})
        store.update_meta(info.id, {"b": [1, 2]})
        assert store.find_experiment("m").meta == {"a": 1, "b": [1, 2]}

    def test_meta_keeps_experiment_id_and_fields(self, store: Any) -> None:
        """What a runs experiment keeps in its metadata (its id and its ``fields`` as a tagged
        JSON tree: nested containers, unicode, base64 of arrays) comes back exactly, when
        created and when merged later, from ``find_experiment`` and ``list_experiments``."""
        import numpy as np

        from trialbook.codecs import from_tree, to_tree

        fields = {"dataset": "iris ✓", "split": (0.8, 0.2), "w": np.arange(3.0), "n": None}
        meta = {"id": "0f8e7a66-5d1c-4c3e-9a51-2b7f1c0d9e11", "fields": to_tree(fields)}
        info = store.create_experiment("fields", meta=meta)
        assert store.find_experiment("fields").meta == meta
        later = {"fields": to_tree({**fields, "n": {"deep": [1, {"x": True}]}})}
        store.update_meta(info.id, later)
        found = store.find_experiment("fields").meta
        assert found == {**meta, **later} == next(e.meta for e in store.list_experiments())
        back = from_tree(found["fields"], allow_pickle=False)
        assert back["split"] == (0.8, 0.2) and back["w"].tolist() == [0.0, 1.0, 2.0]

    def test_deleted_experiment_reads_empty_and_refuses_ids_and_meta(self, store: Any) -> None:
        """A handle kept on an experiment that was then deleted: reads find nothing, and
        allocating run ids or updating the metadata raise ``ExperimentNotFoundError`` saying
        which id no longer exists (not "no experiment named '<a message>'")."""
        info = store.create_experiment("gone")
        store.write_runs(
            info.id,
            [RunRecord(run_id=1, key="k")],
            [metric_chunk(1, "m", [1.0])],
            artifacts=[(1, "a", Encoded("json", b"1"))],
            step_hashes=[("s", "in", "out", 1)],
        )
        store.delete_experiment("gone")
        assert store.read_runs(info.id) == []
        assert store.read_runs(info.id, [1]) == []
        assert store.find_runs_by_key(info.id, "k") == []
        assert store.read_metrics(info.id, "m", [1]) == {}
        assert store.metric_names(info.id) == {}
        assert store.metric_names(info.id, 1) == {}
        assert store.read_artifact(info.id, 1, "a") is None
        assert store.list_artifacts(info.id, 1) == {}
        assert store.get_step_hashes(info.id, [("s", "in")]) == {}
        for call in (
            lambda: store.allocate_run_ids(info.id, 1),
            lambda: store.update_meta(info.id, {"x": 1}),
        ):
            try:
                call()
            except ExperimentNotFoundError as exc:
                assert exc.experiment_id == info.id
                assert exc.name is None
                assert f"experiment id {info.id} no longer exists" in str(exc)
            else:
                raise AssertionError("an operation on a deleted experiment id must fail")

    def test_write_to_deleted_experiment_does_not_revive_it(self, store: Any) -> None:
        """A late write of a process that still holds a deleted experiment's id is refused
        (``ExperimentNotFoundError``), and the experiment stays deleted: it is not listed, run
        ids are still refused, and nothing was left behind for the garbage collector."""
        info = store.create_experiment("late")
        store.delete_experiment("late")
        try:
            store.write_runs(info.id, [RunRecord(run_id=1)], [metric_chunk(1, "m", [1.0])])
        except ExperimentNotFoundError as exc:
            assert exc.experiment_id == info.id
        else:
            raise AssertionError("a write to a deleted experiment must fail")
        assert store.find_experiment("late") is None
        assert store.list_experiments() == []
        try:
            store.allocate_run_ids(info.id, 1)
        except ExperimentNotFoundError as exc:
            assert exc.experiment_id == info.id
        else:
            raise AssertionError("a deleted experiment must not give run ids after a late write")
        assert store.collect_garbage(min_age=0, dry_run=True).rows == 0

    def test_experiment_ids_are_never_reused(self, store: Any) -> None:
        """Neither a deleted nor a replaced experiment's id is given again (SQLite would give
        the largest id again without ``AUTOINCREMENT``)."""
        seen = []
        for _ in range(3):
            info = store.create_experiment("top")
            seen.append(info.id)
            store.delete_experiment("top")
        first = store.create_experiment("x")
        second = store.create_experiment("x", replace=True)
        third = store.create_experiment("x", replace=True, replace_id=second.id)
        seen += [first.id, second.id, third.id]
        assert len(set(seen)) == len(seen), seen

    def test_every_write_to_a_vanished_experiment_is_refused(self, store: Any) -> None:
        """A process holds the id of ``x``; ``x`` is deleted and a new ``x`` created. Each of
        its writes raises ``ExperimentNotFoundError`` naming the old id (a write of a run read
        from the store too, not ``RunConflictError``), and the new ``x`` is untouched: no runs,
        metrics, artifacts, step hashes or metadata of the old one."""
        old = store.create_experiment("x", meta={"v": 1})
        store.write_runs(old.id, [RunRecord(run_id=1)])
        store.delete_experiment("x")
        new = store.create_experiment("x", meta={"v": 2})
        writes = {
            "write_runs": lambda: store.write_runs(
                old.id, [RunRecord(run_id=1, params={"late": True})]
            ),
            "write_runs(metrics)": lambda: store.write_runs(
                old.id, [], [metric_chunk(1, "m", [1.0])]
            ),
            # a run read from the store: its version is not what refuses it
            "write_runs(version)": lambda: store.write_runs(
                old.id, [RunRecord(run_id=1, version=1, writer="late")]
            ),
            "write_runs(replace_metrics)": lambda: store.write_runs(
                old.id, [], [metric_chunk(1, "m", [1.0])], replace_metrics=[(1, "m")]
            ),
            "allocate_run_ids": lambda: store.allocate_run_ids(old.id, 2),
            "write_artifact": lambda: store.write_artifact(old.id, 1, "a", Encoded("json", b"1")),
            "put_step_hash": lambda: store.put_step_hash(old.id, "s", "in", "out", 1),
            "update_meta": lambda: store.update_meta(old.id, {"late": True}),
        }
        for what, write in writes.items():
            try:
                write()
            except ExperimentNotFoundError as exc:
                assert exc.experiment_id == old.id, what
            else:
                raise AssertionError(f"{what} to a deleted experiment must fail")
        found = store.find_experiment("x")
        assert (found.id, found.runs, found.meta) == (new.id, 0, {"v": 2})
        assert store.read_runs(new.id) == []
        assert store.metric_names(new.id) == {}
        assert store.list_artifacts(new.id, 1) == {}
        assert store.get_step_hashes(new.id, [("s", "in")]) == {}
        assert store.allocate_run_ids(new.id, 1) == range(1, 2)
        assert store.collect_garbage(min_age=0, dry_run=True).rows == 0

    def test_create_experiment_with_its_first_runs(self, store: Any) -> None:
        """``create_experiment(runs=, metrics=)`` writes the first runs with the experiment;
        run ids then continue after the largest of them."""
        info = store.create_experiment(
            "first",
            meta={"kind": "runs"},
            runs=[RunRecord(run_id=i, params={"i": i}) for i in (1, 2, 4)],
            metrics=[metric_chunk(2, "loss", [1.0, 0.5])],
        )
        assert info.runs == 3
        assert [r.params["i"] for r in store.read_runs(info.id)] == [1, 2, 4]
        assert store.read_metrics(info.id, "loss", [2])[2].values.tolist() == [1.0, 0.5]
        assert store.find_experiment("first").meta == {"kind": "runs"}
        assert store.allocate_run_ids(info.id, 1) == range(5, 6)

    def test_replace_and_first_write_are_one_step(self, store: Any) -> None:
        """Replacing with runs: the old experiment's runs are gone and the new ones there at
        once; a compare-and-swap that loses writes nothing."""
        old = store.create_experiment("r")
        store.write_runs(old.id, [RunRecord(run_id=i) for i in (1, 2, 3)])
        new = store.create_experiment(
            "r", replace=True, replace_id=old.id, runs=[RunRecord(run_id=1, params={"v": 2})]
        )
        assert store.find_experiment("r").runs == 1
        assert store.read_runs(new.id)[0].params == {"v": 2}
        assert store.read_runs(old.id) == []
        try:
            store.create_experiment(
                "r", replace=True, replace_id=old.id, runs=[RunRecord(run_id=1, params={"v": 3})]
            )
        except ExperimentExistsError:
            pass
        else:
            raise AssertionError("replacing an experiment that was already replaced must fail")
        found = store.find_experiment("r")
        assert (found.id, found.runs) == (new.id, 1)
        assert store.read_runs(new.id)[0].params == {"v": 2}
        assert [e.name for e in store.list_experiments()] == ["r"]
        assert store.collect_garbage(min_age=0, dry_run=True).rows == 0

    # -- runs --

    def test_run_ids_are_sequential_per_experiment(self, store: Any) -> None:
        a = store.create_experiment("a")
        b = store.create_experiment("b")
        assert store.allocate_run_ids(a.id, 3) == range(1, 4)
        assert store.allocate_run_ids(a.id, 1) == range(4, 5)
        assert store.allocate_run_ids(b.id, 2) == range(1, 3)

    def test_run_record_round_trip(self, store: Any) -> None:
        import numpy as np

        info = store.create_experiment("r")
        record = RunRecord(
            run_id=7,
            kind="trial",
            status="failed",
            params={"lr": 0.1, "name": "x", "shape": encode((2, 3)), "none": None},
            fields={"acc": 0.5, "arr": encode(np.arange(4.0)), "nested": {"a": [1, 2]}},
            tags={"model": "mlp"},
            key="abc123",
            seed=42,
            created=1.0,
            started=2.0,
            finished=3.5,
            result=encode(np.float32(1.5)),
            error=ErrorInfo("ValueError", "bad", "Traceback ...\nValueError: bad\n"),
            code="c0de",
            environment="e1",
            metrics={"loss": [3, 0.25]},
        )
        store.write_runs(info.id, [record])
        (back,) = store.read_runs(info.id)
        assert back.params["shape"] == record.params["shape"]
        assert decode(back.fields["arr"]).tolist() == [0.0, 1.0, 2.0, 3.0]
        assert decode(back.result) == np.float32(1.5)
        back.fields["arr"] = record.fields["arr"]
        assert back == record

    def test_plain_result_and_nan_survive(self, store: Any) -> None:
        info = store.create_experiment("n")
        store.write_runs(
            info.id,
            [
                RunRecord(run_id=1, result={"score": 2}, fields={"x": math.nan}),
                RunRecord(run_id=2, result=None),
            ],
        )
        one, two = store.read_runs(info.id)
        assert one.result == {"score": 2}
        assert math.isnan(one.fields["x"])
        assert two.result is None

    def test_write_replaces_only_given_runs(self, store: Any) -> None:
        info = store.create_experiment("w")
        store.write_runs(info.id, [RunRecord(run_id=i, fields={"v": i}) for i in (1, 2, 3)])
        store.write_runs(info.id, [RunRecord(run_id=2, fields={"other": "new"})])
        runs = store.read_runs(info.id)
        assert [r.fields for r in runs] == [{"v": 1}, {"other": "new"}, {"v": 3}]

    def test_runs_keep_different_field_sets(self, store: Any) -> None:
        info = store.create_experiment("f")
        store.write_runs(
            info.id,
            [RunRecord(run_id=1, fields={"a": 1}), RunRecord(run_id=2, fields={"b": "x"})],
        )
        assert [r.fields for r in store.read_runs(info.id)] == [{"a": 1}, {"b": "x"}]

    def test_read_selected_runs(self, store: Any) -> None:
        info = store.create_experiment("s")
        store.write_runs(info.id, [RunRecord(run_id=i) for i in range(1, 1201)])
        got = store.read_runs(info.id, [1200, 3, 5, 99999])
        assert [r.run_id for r in got] == [3, 5, 1200]
        assert store.find_experiment("s").runs == 1200

    def test_delete_runs(self, store: Any) -> None:
        info = store.create_experiment("d")
        store.write_runs(
            info.id, [RunRecord(run_id=i) for i in (1, 2)], [metric_chunk(2, "m", [1.0])]
        )
        store.delete_runs(info.id, [2])
        assert [r.run_id for r in store.read_runs(info.id)] == [1]
        assert store.read_metrics(info.id, "m", [2]) == {}

    def test_large_values_round_trip(self, store: Any) -> None:
        import numpy as np

        info = store.create_experiment("big")
        big = np.arange(200_000, dtype="f8")  # 1.6 MB: beyond any inline limit
        store.write_runs(info.id, [RunRecord(run_id=1, fields={"big": encode(big)})])
        (back,) = store.read_runs(info.id)
        assert np.array_equal(decode(back.fields["big"]), big)

    def test_find_runs_by_key(self, store: Any) -> None:
        info = store.create_experiment("k")
        store.write_runs(
            info.id,
            [
                RunRecord(run_id=1, kind="job", key="aa", status="failed"),
                RunRecord(run_id=2, kind="job", key="bb"),
                RunRecord(run_id=3, kind="job", key="aa", status="done"),
            ],
        )
        assert [(r.run_id, r.status) for r in store.find_runs_by_key(info.id, "aa")] == [
            (1, "failed"),
            (3, "done"),
        ]
        assert store.find_runs_by_key(info.id, "zz") == []

    def test_step_hashes(self, store: Any) -> None:
        info = store.create_experiment("h")
        other = store.create_experiment("h2")
        assert store.get_step_hashes(info.id, [("prepare", "in1")]) == {}
        assert store.get_step_hashes(info.id, []) == {}
        store.put_step_hash(info.id, "prepare", "in1", "out1", 1)
        store.put_step_hash(info.id, "prepare", "in2", "out2", 2)
        store.put_step_hash(info.id, "prepare", "in1", "out3", 3)
        store.put_step_hash(info.id, "score", "in2", "out4", 3)
        keys = [("prepare", "in1"), ("prepare", "in2"), ("score", "in1"), ("score", "in2")]
        assert store.get_step_hashes(info.id, keys) == {
            ("prepare", "in1"): ("out3", 3),
            ("prepare", "in2"): ("out2", 2),
            ("score", "in2"): ("out4", 3),
        }
        assert store.get_step_hashes(info.id, [("prepare", "in1")] * 2) == {
            ("prepare", "in1"): ("out3", 3)
        }
        assert store.get_step_hashes(other.id, keys) == {}
        store.delete_experiment("h")
        info = store.create_experiment("h")
        assert store.get_step_hashes(info.id, keys) == {}

    def test_delete_runs_removes_their_step_hashes(self, store: Any) -> None:
        """Deleting runs removes the step hashes that point at them, and only those: a step
        hash keeps the latest run of its step and input, so one a later run replaced stays,
        as do those of other runs and other experiments."""
        info = store.create_experiment("d")
        other = store.create_experiment("d2")
        store.write_runs(
            info.id,
            [RunRecord(run_id=i) for i in (1, 2, 3)],
            step_hashes=[
                ("prepare", "in1", "out1", 1),
                ("score", "in1", "out2", 1),
                ("prepare", "in2", "out3", 2),
                ("score", "in2", "out4", 2),
            ],
        )
        store.write_runs(info.id, [], step_hashes=[("prepare", "in2", "out5", 3)])
        store.write_runs(other.id, [RunRecord(run_id=1)], step_hashes=[("prepare", "in1", "x", 1)])
        store.delete_runs(info.id, [1, 2])
        keys = [("prepare", "in1"), ("score", "in1"), ("prepare", "in2"), ("score", "in2")]
        assert store.get_step_hashes(info.id, keys) == {("prepare", "in2"): ("out5", 3)}
        assert store.get_step_hashes(other.id, keys) == {("prepare", "in1"): ("x", 1)}
        store.delete_runs(info.id, [3])
        assert store.get_step_hashes(info.id, keys) == {}
        # a run deleted, then its step and input recorded again by a new run
        store.write_runs(info.id, [RunRecord(run_id=4)], step_hashes=[("score", "in1", "y", 4)])
        assert store.get_step_hashes(info.id, keys) == {("score", "in1"): ("y", 4)}
        store.delete_runs(info.id, [1, 4])
        assert store.get_step_hashes(info.id, keys) == {}

    def test_write_runs_with_artifacts_and_hashes_in_one_call(self, store: Any) -> None:
        info = store.create_experiment("one-tx")
        store.write_runs(
            info.id,
            [RunRecord(run_id=1, kind="trial")],
            [metric_chunk(1, "m", [1.0, 2.0])],
            artifacts=[
                (1, "prepare", Encoded("json", b"3")),
                (1, "big", Encoded("npy", b"x" * 700_000)),
            ],
            step_hashes=[("prepare", "in", "out", 1)],
        )
        assert store.read_artifact(info.id, 1, "prepare") == Encoded("json", b"3")
        assert store.read_artifact(info.id, 1, "big").size == 700_000
        found = store.get_step_hashes(info.id, [("prepare", "in")])
        assert found == {("prepare", "in"): ("out", 1)}
        assert store.metric_names(info.id, 1) == {"m": 2}

    def test_backend_label_and_url(self, store: Any) -> None:
        assert store.backend_label.endswith("Backend")
        assert isinstance(store.url, str)
        user = store.url.partition("://")[2].partition("/")[0].rpartition("@")[0]
        password = user.partition(":")[2]
        assert password in ("", "***"), f"a password shows in the store's url {store.url!r}"

    def test_password_never_shows(self, store: Any, store_password: str | None) -> None:
        """The password of the URL the store was opened from (``store_password``) is in
        neither ``store.url``, ``repr(store)`` nor the messages of the errors that name the
        store (a deleted experiment's id, an unknown snapshot, an existing name)."""
        shown = [store.url, repr(store), str(store)]
        info = store.create_experiment("guarded")
        store.put_snapshot("code", "x = 1\n")
        calls = [
            lambda: store.create_experiment("guarded"),
            lambda: store.get_snapshot("0" * 64),
        ]
        for call in calls:
            try:
                call()
            except (ExperimentExistsError, NotFoundError) as exc:
                shown += [str(exc), repr(exc)]
            else:
                raise AssertionError("this call must fail")
        store.delete_experiment("guarded")
        for call in (
            lambda: store.allocate_run_ids(info.id, 1),
            lambda: store.update_meta(info.id, {"x": 1}),
        ):
            try:
                call()
            except ExperimentNotFoundError as exc:
                shown += [str(exc), repr(exc)]
            else:
                raise AssertionError("an operation on a deleted experiment id must fail")
        if store_password is None:
            return
        assert store_password, "store_password: the password, or None when there is none"
        for text in shown:
            assert store_password not in text, f"the store's password shows in {text!r}"

    def test_replace_only_the_experiment_of_an_id(self, store: Any) -> None:
        """``replace_id`` is a compare-and-swap: of two replacers of one experiment, one wins."""
        first = store.create_experiment("cas")
        second = store.create_experiment("cas", replace=True, replace_id=first.id)
        try:
            store.create_experiment("cas", replace=True, replace_id=first.id)
        except ExperimentExistsError:
            pass
        else:
            raise AssertionError("replacing an experiment that was already replaced must fail")
        assert store.find_experiment("cas").id == second.id
        assert store.allocate_run_ids(second.id, 1) == range(1, 2)

    # -- garbage --

    def test_collect_garbage_frees_blobs_of_deleted_experiments(self, store: Any) -> None:
        import numpy as np

        shared = encode(np.arange(100_000, dtype="f8"))  # 800 KB: a blob
        for name, seed in (("keep", 1.0), ("gone", 2.0)):
            info = store.create_experiment(name)
            own = encode(np.full(100_000, seed))
            store.write_runs(info.id, [RunRecord(1, fields={"shared": shared, "own": own})])
            store.write_artifact(info.id, 1, "model", Encoded("npy", bytes([int(seed)]) * 300_000))
        store.delete_experiment("gone")
        preview = store.collect_garbage(min_age=0, dry_run=True)
        assert preview.blobs == 2  # "gone"'s own field and its artifact; not the shared one
        assert preview.bytes >= 800_000 + 300_000
        report = store.collect_garbage(min_age=0)
        assert (report.blobs, report.bytes) == (preview.blobs, preview.bytes)
        assert store.collect_garbage(min_age=0).blobs == 0
        keep = store.find_experiment("keep")
        (run,) = store.read_runs(keep.id)
        assert decode(run.fields["shared"]).sum() == np.arange(100_000).sum()
        assert decode(run.fields["own"])[0] == 1.0
        assert store.read_artifact(keep.id, 1, "model").size == 300_000

    # -- metrics --

    def test_replace_metrics_in_the_same_write(self, store: Any) -> None:
        """A run executed again: its old points of a metric go in the write of the new ones."""
        info = store.create_experiment("again")
        big = [float(i) for i in range(20_000)]  # a chunk that may live outside the row
        store.write_runs(
            info.id,
            [RunRecord(run_id=1), RunRecord(run_id=2)],
            [
                metric_chunk(1, "loss", [3.0, 2.0, 1.0]),
                metric_chunk(1, "big", big),
                metric_chunk(1, "acc", [0.5]),
                metric_chunk(2, "loss", [7.0]),
            ],
        )
        store.write_runs(info.id, [], [metric_chunk(1, "loss", [0.0], first_step=3)])
        store.write_runs(
            info.id,
            [RunRecord(run_id=1)],
            [metric_chunk(1, "loss", [9.0, 8.0]), metric_chunk(1, "big", [1.0])],
            replace_metrics=[(1, "loss"), (1, "big")],
        )
        loss = store.read_metrics(info.id, "loss", [1, 2])
        assert loss[1].steps.tolist() == [0, 1]
        assert loss[1].values.tolist() == [9.0, 8.0]
        assert loss[2].values.tolist() == [7.0]  # another run's points stay
        assert store.read_metrics(info.id, "big", [1])[1].values.tolist() == [1.0]
        assert store.read_metrics(info.id, "acc", [1])[1].values.tolist() == [0.5]
        assert store.metric_names(info.id, 1) == {"acc": 1, "big": 1, "loss": 2}
        assert store.metric_names(info.id) == {"acc": 1, "big": 1, "loss": 3}

    def test_metrics_are_appended_in_chunks(self, store: Any) -> None:
        info = store.create_experiment("m")
        store.write_runs(info.id, [RunRecord(run_id=1)], [metric_chunk(1, "loss", [3.0, 2.0])])
        store.write_runs(info.id, [], [metric_chunk(1, "loss", [1.0], first_step=2)])
        store.write_runs(info.id, [], [metric_chunk(1, "acc", [0.5])])
        series = store.read_metrics(info.id, "loss", [1])[1]
        assert series.steps.tolist() == [0, 1, 2]
        assert series.values.tolist() == [3.0, 2.0, 1.0]
        assert len(series.times) == 3
        assert store.metric_names(info.id, 1) == {"acc": 1, "loss": 3}
        assert store.metric_names(info.id) == {"acc": 1, "loss": 3}

    def test_metrics_of_several_runs(self, store: Any) -> None:
        info = store.create_experiment("m2")
        chunks = [metric_chunk(r, "loss", [float(r)] * r) for r in (1, 2, 3)]
        store.write_runs(info.id, [RunRecord(run_id=r) for r in (1, 2, 3)], chunks)
        got = store.read_metrics(info.id, "loss", [1, 3, 4])
        assert sorted(got) == [1, 3]
        assert got[3].values.tolist() == [3.0, 3.0, 3.0]
        assert store.read_metrics(info.id, "nope", [1]) == {}

    def test_retried_write_leaves_points_once(self, store: Any) -> None:
        """The same ``write_runs`` issued twice (a retry after a lost answer) stores its
        points, run, artifacts and step hashes once; a retry that carries more points of the
        same chunk (logged before retrying) replaces that chunk."""
        info = store.create_experiment("retry")

        def write() -> None:
            store.write_runs(
                info.id,
                [RunRecord(1, metrics={"loss": [2, 0.5]})],
                [metric_chunk(1, "loss", [1.0, 0.5]), metric_chunk(1, "acc", [0.1])],
                artifacts=[(1, "a", Encoded("json", b"1"))],
                step_hashes=[("s", "in", "out", 1)],
            )

        write()
        write()
        for _ in range(2):
            store.write_runs(info.id, [], [metric_chunk(1, "loss", [0.25], first_step=2)])
        assert store.read_metrics(info.id, "loss", [1])[1].values.tolist() == [1.0, 0.5, 0.25]
        store.write_runs(info.id, [], [metric_chunk(1, "loss", [0.25, 0.125], first_step=2)])
        series = store.read_metrics(info.id, "loss", [1])[1]
        assert series.values.tolist() == [1.0, 0.5, 0.25, 0.125]
        assert series.steps.tolist() == [0, 1, 2, 3]
        assert store.metric_names(info.id, 1) == {"acc": 1, "loss": 4}
        assert store.metric_names(info.id) == {"acc": 1, "loss": 4}
        assert [r.run_id for r in store.read_runs(info.id)] == [1]
        assert store.list_artifacts(info.id, 1) == {"a": 1}
        # a run executed again, its write retried: the new points once, the old ones gone
        for _ in range(2):
            store.write_runs(
                info.id,
                [RunRecord(1)],
                [metric_chunk(1, "loss", [9.0])],
                replace_metrics=[(1, "loss")],
            )
        assert store.read_metrics(info.id, "loss", [1])[1].values.tolist() == [9.0]
        assert store.metric_names(info.id) == {"acc": 1, "loss": 1}

    def test_chunks_are_ordered_by_position_not_time(self, store: Any) -> None:
        """A metric's points are its chunks in order of ``start``, whatever order (or clock)
        they were written in."""
        info = store.create_experiment("order")
        store.write_runs(info.id, [RunRecord(1)], [metric_chunk(1, "m", [3.0, 4.0], 3)])
        store.write_runs(
            info.id, [], [metric_chunk(1, "m", [5.0], 5), metric_chunk(1, "m", [0.0, 1.0], 0)]
        )
        store.write_runs(info.id, [], [metric_chunk(1, "m", [2.0], 2)])
        series = store.read_metrics(info.id, "m", [1])[1]
        assert series.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert series.steps.tolist() == [0, 1, 2, 3, 4, 5]
        assert store.metric_names(info.id, 1) == {"m": 6}

    def test_runs_are_replaced_only_at_the_version_read(self, store: Any) -> None:
        """A record read from the store replaces the run only while the stored version is
        the one it was read at; a stale write raises ``RunConflictError`` naming the run and
        the versions, and nothing of it is applied. A new run (no version) is version 1."""
        info = store.create_experiment("cas")
        store.write_runs(info.id, [RunRecord(1, fields={"v": 0}), RunRecord(2)])
        first, second = store.read_runs(info.id)
        assert (first.version, second.version) == (1, 1)
        first.fields, first.writer = {"v": 1}, "session-a"
        store.write_runs(info.id, [first], [metric_chunk(1, "m", [1.0])])
        store.write_runs(info.id, [first], [metric_chunk(1, "m", [1.0])])  # its retry
        assert store.read_runs(info.id, [1])[0].version == 2
        stale = RunRecord(1, fields={"v": 2}, version=1, writer="session-b")
        try:
            store.write_runs(
                info.id,
                [RunRecord(2, fields={"new": 1}, version=1), stale],
                [metric_chunk(1, "m", [2.0]), metric_chunk(2, "m", [2.0])],
                artifacts=[(1, "a", Encoded("json", b"2"))],
                step_hashes=[("s", "in", "out", 1)],
            )
        except RunConflictError as exc:
            assert exc.conflicts == [(1, 1, 2)]
            assert "run 1 of experiment 'cas'" in str(exc) and "version 2" in str(exc)
            assert "Reload" in str(exc)
        else:
            raise AssertionError("a write of a stale version must fail")
        one, two = store.read_runs(info.id)
        assert (one.fields, one.version, two.fields, two.version) == ({"v": 1}, 2, {}, 1)
        assert store.read_metrics(info.id, "m", [1, 2])[1].values.tolist() == [1.0]
        assert store.metric_names(info.id) == {"m": 1}
        assert store.list_artifacts(info.id, 1) == {}
        assert store.get_step_hashes(info.id, [("s", "in")]) == {}
        store.delete_runs(info.id, [2])
        try:
            store.write_runs(info.id, [RunRecord(2, version=1)])
        except RunConflictError as exc:
            assert exc.conflicts == [(2, 1, None)] and "deleted" in str(exc)
        else:
            raise AssertionError("a write of a deleted run's version must fail")
        store.write_runs(info.id, [RunRecord(1, fields={"blind": 1})])  # no version: written
        assert store.read_runs(info.id)[0].fields == {"blind": 1}

    # -- artifacts and snapshots --

    def test_artifacts(self, store: Any) -> None:
        info = store.create_experiment("a")
        store.write_artifact(info.id, 1, "model", Encoded("npy", b"\x00" * 10))
        store.write_artifact(info.id, 1, "big", Encoded("npy", b"\x01" * 600_000))
        store.write_artifact(info.id, 1, "model", Encoded("npy", b"\x02" * 3))
        assert store.list_artifacts(info.id, 1) == {"big": 600_000, "model": 3}
        assert store.read_artifact(info.id, 1, "model") == Encoded("npy", b"\x02" * 3)
        assert store.read_artifact(info.id, 1, "big").data == b"\x01" * 600_000
        assert store.read_artifact(info.id, 1, "missing") is None
        assert store.list_artifacts(info.id, 2) == {}

    # -- artifact files (trialbook.storage.artifacts, built on the methods above) --

    def test_artifact_files_round_trip(self, store: Any, tmp_path: Any) -> None:
        """Bytes, a file and a folder come back byte for byte, streamed in pieces."""
        from trialbook.storage import artifacts as af

        info = store.create_experiment("files")
        data = bytes(range(256)) * 2_800  # 716,800 bytes: 3 pieces of at most 300,000
        (tmp_path / "model.bin").write_bytes(data)
        (tmp_path / "ckpt" / "sub").mkdir(parents=True)
        (tmp_path / "ckpt" / "a.json").write_text('{"a": 1}')
        (tmp_path / "ckpt" / "sub" / "w.bin").write_bytes(data[:1000])
        kw: dict[str, Any] = {"chunk_size": 300_000}
        got = af.log_artifact(store, info.id, 1, tmp_path / "model.bin", **kw)
        assert (got.name, got.size, got.kind) == ("model.bin", len(data), "file")
        assert af.log_artifact(store, info.id, 1, b"raw", name="r.txt").media_type == "text/plain"
        folder = af.log_artifact(store, info.id, 1, tmp_path / "ckpt", **kw)
        assert (folder.kind, folder.size, folder.media_type) == ("folder", 1008, "inode/directory")
        assert af.list_artifacts(store, info.id, 1) == ["ckpt", "model.bin", "r.txt"]
        manifest = af.read_manifest(store, info.id, 1, "model.bin")
        assert manifest is not None and len(manifest["chunks"]) == 3
        with af.open_artifact(store, info.id, 1, "model.bin") as f:
            assert f.read(10) == data[:10] and f.read() == data[10:]
        assert b"".join(af.iter_artifact(store, info.id, 1, "r.txt")) == b"raw"
        out = af.download_artifact(store, info.id, 1, "ckpt", tmp_path / "out")
        assert (out / "sub" / "w.bin").read_bytes() == data[:1000]
        assert (out / "a.json").read_text() == '{"a": 1}'
        copy = af.download_artifact(store, info.id, 1, "model.bin", tmp_path / "copy.bin")
        assert copy.read_bytes() == data
        assert af.artifact_info(store, info.id, 1, "model.bin") == got
        try:
            af.artifact_info(store, info.id, 1, "nope")
        except NotFoundError as exc:
            assert "'model.bin'" in str(exc)
        else:
            raise AssertionError("an unknown artifact must raise NotFoundError")

    def test_identical_artifact_is_stored_once(self, store: Any, tmp_path: Any) -> None:
        """The same file logged under two names and by two runs: its pieces are kept once
        (deleting both runs frees one blob per distinct piece, not one per copy)."""
        from trialbook.storage import artifacts as af

        info = store.create_experiment("once")
        path = tmp_path / "w.bin"
        path.write_bytes(b"\x07" * 600_000 + b"\x08" * 600_000)  # 2 distinct pieces
        for run_id, name in ((1, "a"), (1, "b"), (2, "a")):
            af.log_artifact(store, info.id, run_id, path, name=name, chunk_size=600_000)
        pieces = [n for n in store.list_artifacts(info.id, 1) if n.startswith(af.CHUNK)]
        assert len(pieces) == 2
        assert store.collect_garbage(min_age=0, dry_run=True).blobs == 0
        store.delete_runs(info.id, [1, 2])
        assert store.collect_garbage(min_age=0).blobs == 2

    def test_replaced_artifact_frees_its_pieces(self, store: Any) -> None:
        from trialbook.storage import artifacts as af

        info = store.create_experiment("replace")
        af.log_artifact(store, info.id, 1, b"\x01" * 300_000, name="m")
        af.log_artifact(store, info.id, 1, b"\x02" * 300_000, name="m")
        assert b"".join(af.iter_artifact(store, info.id, 1, "m")) == b"\x02" * 300_000
        assert af.list_artifacts(store, info.id, 1) == ["m"]
        assert store.collect_garbage(min_age=0).blobs == 1  # the first version's piece

    def test_corrupt_artifact_piece_names_run_and_artifact(self, store: Any) -> None:
        from trialbook.errors import CorruptStoreError
        from trialbook.storage import artifacts as af

        info = store.create_experiment("corrupt")
        af.log_artifact(store, info.id, 3, b"\x05" * 400_000, name="model.pt")
        manifest = af.read_manifest(store, info.id, 3, "model.pt")
        assert manifest is not None
        ((digest, _),) = manifest["chunks"]
        damaged = Encoded("bytes", b"\x06" * 400_000)
        store.write_artifact(info.id, 3, af.CHUNK + digest, damaged)
        try:
            b"".join(af.iter_artifact(store, info.id, 3, "model.pt"))
        except CorruptStoreError as exc:
            assert (exc.run_id, exc.field, exc.blob) == (3, "artifact 'model.pt'", digest)
        else:
            raise AssertionError("a changed piece must raise CorruptStoreError")

    def test_snapshots_are_content_addressed(self, store: Any) -> None:
        d1 = store.put_snapshot("code", "def f():\n    return 1\n")
        d2 = store.put_snapshot("code", "def f():\n    return 1\n")
        assert d1 == d2
        assert len(d1) == 64
        assert store.get_snapshot(d1) == "def f():\n    return 1\n"
        try:
            store.get_snapshot("0" * 64)
        except NotFoundError:
            pass
        else:
            raise AssertionError("an unknown snapshot must raise NotFoundError")

    # -- run queries (issue 7: web UI) --

    def test_query_language_has_one_semantics(self, store: Any) -> None:
        """Every filter of :data:`QUERY_TABLE` keeps exactly its run ids (types are never
        converted; missing values and ``in`` follow the rules of the query language)."""
        from trialbook.storage.query import query_runs as query

        info = store.create_experiment("rules")
        store.write_runs(info.id, QUERY_RUNS)
        got = {where: [r.run_id for r in query(store, info.id, where=where)[1]]
               for where, _ in QUERY_TABLE}  # fmt: skip
        assert got == dict(QUERY_TABLE)
        # sorting follows the same rules: texts by code point, exact numbers, missing last
        assert [r.run_id for r in query(store, info.id, order_by="name")[1]] == [1, 3, 4, 2]
        by_big = query(store, info.id, order_by="big", descending=True)[1]
        assert [r.run_id for r in by_big] == [3, 1, 2, 4]

    def test_numpy_numbers_are_queryable_and_exact(self, store: Any) -> None:
        """A NumPy number, boolean or text kept as a param, a field or the result (what
        ``np.mean`` returns) is found by queries as the plain value it shows, reads back with
        its exact type, and stays queryable when the record read is written again."""
        import numpy as np

        from trialbook.codecs import decode
        from trialbook.storage.query import query_runs as query

        info = store.create_experiment("numpy numbers")
        store.write_runs(info.id, [
            RunRecord(i, params={"lr": encode(np.float32(i / 10)), "arch": encode(np.str_(a))},
                      fields={"acc": encode(np.float64(i / 4)), "ok": encode(np.bool_(i > 1)),
                              "n": encode(np.int64(i)), "w": encode(np.ones(2))},
                      result=encode(np.float64(i)))
            for i, a in [(1, "mlp"), (2, "cnn"), (3, "cnn")]
        ])  # fmt: skip

        def ids(where: str | None = None, order_by: str | None = None) -> list[int]:
            return [r.run_id for r in query(store, info.id, where=where, order_by=order_by,
                                             descending=bool(order_by))[1]]  # fmt: skip

        assert ids("acc > 0.3") == [2, 3]
        assert ids("lr == 0.2 and arch == 'cnn' and ok == True and n >= 2") == [2]
        assert ids("result >= 2") == [2, 3]
        assert ids(order_by="fields.acc") == [3, 2, 1]
        runs = store.read_runs(info.id)
        assert type(decode(runs[0].fields["acc"])) is np.float64
        assert type(decode(runs[0].params["lr"])) is np.float32
        assert type(decode(runs[0].result)) is np.float64
        rewritten = [RunRecord(r.run_id, params=r.params, fields=r.fields, result=r.result,
                               version=r.version) for r in runs]  # fmt: skip
        store.write_runs(info.id, rewritten)
        assert ids("acc > 0.3 and lr > 0.15 and result >= 2") == [2, 3]
        # an array is kept in the bundle only: a filter or sort on it says so, and how to go on
        from trialbook.errors import ConfigError, QueryError

        refusals: list[tuple[str | None, str | None, type[ConfigError]]] = [
            ("w > 1", None, QueryError), ("acc > 0 and fields.w == 1", None, QueryError),
            (None, "fields.w", ConfigError)]  # fmt: skip
        for where, order_by, error in refusals:
            name = "fields.w" if where and "fields.w" in where else "w"
            try:
                ids(where, order_by)
            except error as exc:
                assert "holds arrays" in str(exc) and "as a field" in str(exc), str(exc)
                if isinstance(exc, QueryError):
                    assert where is not None and exc.column == where.index(name) + 1, exc.column
            else:
                raise AssertionError(f"no error for {where or order_by} on an array")
        try:
            ids("fields.nothing > 1")
        except QueryError as exc:
            assert "is not a field of any run" in str(exc), str(exc)

    def test_change_token_changes_with_every_commit(self, store: Any) -> None:
        """A store with ``change_token()`` (which lets a reader keep what it read, see
        ``trialbook.storage.value_cache``) gives the same token while nothing is committed,
        and another one after any write: a run, a metric, metadata."""
        if not hasattr(store, "change_token"):
            return
        info = store.create_experiment("tokens")
        writes = [
            lambda: store.write_runs(info.id, [RunRecord(1, params={"x": 1})]),
            lambda: store.write_runs(info.id, [RunRecord(1, params={"x": 2}, version=1)]),
            lambda: store.update_meta(info.id, {"note": "n"}),
            lambda: store.delete_runs(info.id, [1]),
        ]
        for write in writes:
            token = store.change_token()
            if token is None:
                return  # this store cannot tell (in memory, or a database without one)
            store.read_runs(info.id)
            assert store.change_token() == token  # a read commits nothing
            write()
            assert store.change_token() != token

    def test_query_runs_filters_sorts_and_pages(self, store: Any) -> None:
        """``trialbook.storage.query.query_runs`` (native when the store has ``query_runs``)
        agrees with the generic Python filter over the same runs."""
        from trialbook.storage.query import parse_name, parse_query, sort_runs
        from trialbook.storage.query import query_runs as query

        info = store.create_experiment("q")
        store.write_runs(info.id, [
            RunRecord(i, status="done" if i % 3 else "failed", params={"lr": i / 10},
                      tags={"model": "mlp" if i % 2 else "cnn"},
                      metrics={"loss": [1, 1 / i]} if i % 4 else {})
            for i in range(1, 13)
        ])  # fmt: skip
        everything = store.read_runs(info.id)
        for where, order_by, descending in [
            ('lr > 0.3 and status == "done"', None, False),
            ('tags.model == "mlp" or not (metric.loss >= 0.2)', "metric.loss", True),
            (None, "lr", True),
        ]:
            keep = parse_query(where).predicate() if where else (lambda run: True)
            expected = [r for r in everything if keep(r)]
            if order_by:
                expected = sort_runs(expected, parse_name(order_by), descending)
            total, page = query(store, info.id, where=where, order_by=order_by,
                                descending=descending, limit=3, offset=1)  # fmt: skip
            assert total == len(expected), where
            assert [r.run_id for r in page] == [r.run_id for r in expected[1:4]], where
