"""Value segments (storage/value_segments.py, sqlite.py, sql_segments.py): the typed columns a
bulk write keeps beside the run documents give the values the documents give, for any runs
and any name; a later write, insert or delete of a run, a replaced experiment or a failed write
never lets a segment answer with what is no longer stored; a store written before them opens
and reads as before, then gains them."""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import backend_location
from tests.test_query import records
from tests.test_query_backends import finite_records

from trialbook.errors import RunConflictError
from trialbook.storage import open_store
from trialbook.storage.query import parse_name
from trialbook.storage.records import RunRecord
from trialbook.storage.value_cache import ValueCache, cached_groups, value_cache

BACKENDS = ["sqlite", "postgres"]
NAMES = ["a", "b", "params.a", "params.b", "fields.a", "fields.b", "tags.a", "metric.a",
         "metric.b", "metric.a.min", "metric.b.max", "metric.a.count", "params.a.b", "status",
         "kind", "key", "seed", "started", "finished", "duration", "run_id", "result", "error",
         "params.nothing"]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    with backend_location(request.param, tmp_path) as location, open_store(location) as store:
        yield store


def from_documents(store: Any, experiment_id: int, names: list[Any]) -> Any:
    """The columns as the store reads them from its documents (no segment)."""
    if hasattr(store, "_with_json_doc"):
        from trialbook.storage.sqlite_query import value_columns

        return store._with_json_doc(
            lambda doc: value_columns(store._db.read_apart, experiment_id, names, doc)
        )
    from trialbook.storage.sql_query import value_columns as pg_columns

    return pg_columns(store._db, experiment_id, names)


def same(got: Any, expected: Any) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    if not np.array_equal(got[0], expected[0]):
        return False
    return all(
        np.array_equal(a.kind, b.kind) and np.array_equal(a.num, b.num, equal_nan=True)
        and np.array_equal(a.code, b.code) and a.words == b.words
        for a, b in zip(got[1], expected[1], strict=True)
    )  # fmt: skip


def bulk(rows: list[dict[str, Any]], first: int = 3900, count: int = 600) -> list[RunRecord]:
    """``count`` runs from ``first`` (across the boundary of two segments), their values taken
    in turn from ``rows``."""
    return [RunRecord(first + i, **rows[i % len(rows)]) for i in range(count)]


def test_segments_give_the_documents_values_for_any_runs(store: Any) -> None:
    """Any runs (NaN, infinities, ints beyond 64 bits, lists, dicts, texts, NUL-free or not):
    what a read gives with the stored segments is what the documents give, name by name."""
    names = [parse_name(n) for n in NAMES]
    counter = iter(range(10_000))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.one_of(records, finite_records).filter(bool))
    def check(rows: list[dict[str, Any]]) -> None:
        exp = store.create_experiment(f"e{next(counter)}")
        store.write_runs(exp.id, bulk(rows))
        if hasattr(store, "_with_json_doc"):  # SQLite stores them whatever the documents hold
            assert store.segments_cover(exp.id) == 1.0
        assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))

    check()


def test_a_bulk_write_stores_exact_segments_that_later_writes_retire(store: Any) -> None:
    """A bulk write's runs are read from segments (all of them); a run written again, a run
    added to a segment or deleted, each retire its segment (its runs are read from their
    documents, right), and the next bulk write stores them anew."""
    exp = store.create_experiment("e")
    names = [parse_name(n) for n in ("params.x", "lr", "fields.acc", "status", "duration")]
    runs = [RunRecord(i, status="done", params={"x": i % 7, "lr": 0.1}, fields={"acc": i / 9},
                      started=1.0, finished=1.0 + i) for i in range(1, 10_001)]  # fmt: skip
    store.write_runs(exp.id, runs)
    assert store.segments_cover(exp.id) == 1.0
    assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))

    store.write_runs(exp.id, [RunRecord(5, status="failed", params={"x": "changed"})])
    assert store.segments_cover(exp.id) == pytest.approx(1 - 4095 / 10_000)
    got = store.value_columns(exp.id, names)
    assert got[1][0].words == ["changed"] and got[1][3].words == ["done", "failed"]
    assert same(got, from_documents(store, exp.id, names))

    store.write_runs(exp.id, [RunRecord(20_000, params={"x": 1})])  # a segment of its own
    store.write_runs(exp.id, [RunRecord(10_001, params={"x": 2})])  # into segment 2
    assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))
    assert store.segments_cover(exp.id) < 0.6

    store.delete_runs(exp.id, [9000])
    assert store.segments_cover(exp.id) == 0.0  # a delete retires them all
    assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))

    store.write_runs(exp.id, store.read_runs(exp.id))  # all written again: stored anew
    assert store.segments_cover(exp.id) == 1.0
    assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))


def test_a_replaced_experiment_and_a_refused_write_leave_no_segment_behind(store: Any) -> None:
    """An experiment replaced under the same name starts without the old one's segments; a
    write refused (a run changed since it was read) stores none and changes none."""
    first = store.create_experiment("e")
    store.write_runs(first.id, [RunRecord(i, params={"x": 1}) for i in range(1, 2001)])
    runs = [RunRecord(i, params={"x": 2}) for i in range(1, 601)]
    second = store.create_experiment("e", replace=True, runs=runs)
    name = [parse_name("params.x")]
    ids, (x,) = store.value_columns(second.id, name)
    assert len(ids) == 600 and set(x.num.tolist()) == {2.0}
    assert store.segments_cover(second.id) == 1.0

    read = store.read_runs(second.id)
    other = store.read_runs(second.id, [1])[0]
    other.params = {"x": 3}
    store.write_runs(second.id, [other])  # another writer, meanwhile
    for run in read:
        run.params = {"x": 4}
    with pytest.raises(RunConflictError):
        store.write_runs(second.id, read)
    ids, (x,) = store.value_columns(second.id, name)
    assert sorted(set(x.num.tolist())) == [2.0, 3.0]
    assert same(store.value_columns(second.id, name), from_documents(store, second.id, name))


WRITER = """
import sys
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
with open_store(sys.argv[1]) as store:
    exp = store.find_experiment("e")
    store.write_runs(exp.id, [RunRecord(i, params={"x": "other"}) for i in range(1, 2001)])
"""


def test_a_write_of_another_process_retires_the_segments_a_reader_had(store: Any) -> None:
    """A reader that found exact segments, then another process writes the same runs: the
    reader's next read has the other process's values (its marks are not reused)."""
    exp = store.create_experiment("e")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 2001)])
    name = [parse_name("params.x")]
    assert store.segments_cover(exp.id) == 1.0
    store.value_columns(exp.id, name)
    subprocess.run([sys.executable, "-c", WRITER, store.url], check=True)
    ids, (x,) = store.value_columns(exp.id, name)
    assert x.words == ["other"] and len(ids) == 2000
    assert store.segments_cover(exp.id) == 1.0  # that bulk write stored its own


def test_a_grouped_view_waits_for_columns_read_from_segments(store: Any) -> None:
    """With segments, the first grouped view is answered from the columns (read at once),
    not by the store's SQL; a store without them leaves the first view to its SQL."""
    exp = store.create_experiment("e")
    store.write_runs(exp.id, [RunRecord(i, params={"o": "ab"[i % 2]}, fields={"acc": i})
                              for i in range(1, 3001)])  # fmt: skip
    cache = value_cache(store)
    assert cache is not None
    cache.min_runs = 0
    assert cache.is_quick(exp.id)
    groups = cached_groups(store, exp.id, where=None, keys=[parse_name("params.o")],
                           measures=[parse_name("fields.acc")], meta={})  # fmt: skip
    assert groups == [(("a",), 1500, [(1500, 2251500.0, groups[0][2][0][2])]),
                      (("b",), 1500, [(1500, 2250000.0, groups[1][2][0][2])])]  # fmt: skip
    small = store.create_experiment("small")
    store.write_runs(small.id, [RunRecord(i, params={"o": "a"}) for i in range(1, 11)])
    assert not ValueCache(store, min_runs=0).is_quick(small.id)


def reads_as_before_then_gains_segments(store: Any, experiment_id: int) -> None:
    """An upgraded store's runs 1..1000 (``params.x``: the run id) read from their documents,
    then, written again in bulk, from segments, with the same values."""
    name = [parse_name("params.x")]
    assert store.segments_cover(experiment_id) == 0.0
    ids, (x,) = store.value_columns(experiment_id, name)
    assert ids.tolist() == x.num.tolist() == list(range(1, 1001))
    store.write_runs(experiment_id, store.read_runs(experiment_id))
    assert store.segments_cover(experiment_id) == 1.0
    assert same(store.value_columns(experiment_id, name),
                from_documents(store, experiment_id, name))  # fmt: skip


def test_a_sqlite_store_written_before_segments_opens_reads_and_gains_them(
    tmp_path: pathlib.Path,
) -> None:
    """A SQLite store of schema version 8 (no segments, no index by seq) opens as version 9:
    its runs read from their documents as before, and a bulk write stores segments."""
    from trialbook.storage import sqlite_schema

    location = tmp_path / "store"
    with open_store(location) as store:
        exp = store.create_experiment("before")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 1001)])
    conn = sqlite3.connect(location / sqlite_schema.DB_NAME, isolation_level=None)
    for statement in ("DROP INDEX runs_by_seq", "DROP TABLE value_segments",
                      "DROP TABLE value_segment_columns", "PRAGMA user_version=8"):  # fmt: skip
        conn.execute(statement)
    conn.close()
    with open_store(location) as store:
        reads_as_before_then_gains_segments(store, exp.id)
    conn = sqlite3.connect(location / sqlite_schema.DB_NAME, isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM value_segments").fetchone()[0] == 1
    conn.close()


def test_a_postgres_store_of_layout_7_opens_reads_and_gains_segments(
    tmp_path: pathlib.Path,
) -> None:
    """A PostgreSQL store of layout version 7 (no segment tables, no index by seq) opens as
    version 8: read from its documents as before, then a bulk write stores segments."""
    import sqlalchemy as sa

    from trialbook.storage.sql_migrations import SCHEMA_VERSION

    with backend_location("postgres", tmp_path) as location:
        with open_store(location) as store:
            exp = store.create_experiment("before")
            store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 1001)])
            schema = f'"{store._db.schema}".'
            with store._db.engine.begin() as conn:
                for statement in (f"DROP INDEX {schema}trialbook_runs_by_seq",
                                  f"DROP TABLE {schema}trialbook_value_segments",
                                  f"DROP TABLE {schema}trialbook_value_segment_columns",
                                  f"UPDATE {schema}trialbook_schema SET version = 7"):  # fmt: skip
                    conn.execute(sa.text(statement))
        with open_store(location) as store:
            reads_as_before_then_gains_segments(store, exp.id)
            with store._db.engine.connect() as conn:
                version = conn.execute(sa.text(f"SELECT version FROM {schema}trialbook_schema"))
                assert version.scalar() == SCHEMA_VERSION == 8


def test_reading_segments_in_another_python(store: Any, tmp_path: pathlib.Path) -> None:
    """Segments a process stored are read by another Python started later, with the same
    values as its documents give."""
    exp = store.create_experiment("e")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i % 3, "s": "é"}, status="done")
                              for i in range(1, 5001)])  # fmt: skip
    script = textwrap.dedent("""
        import sys
        from trialbook.storage import open_store
        from trialbook.storage.query import parse_name
        with open_store(sys.argv[1]) as store:
            exp = store.find_experiment("e")
            cover = store.segments_cover(exp.id)
            ids, (x, s) = store.value_columns(exp.id, [parse_name("params.x"), parse_name("s")])
            print(cover, len(ids), sorted(set(x.num.tolist())), s.words)
    """)
    done = subprocess.run([sys.executable, "-c", script, store.url], check=True,
                          capture_output=True, text=True)  # fmt: skip
    out = done.stdout.strip().split(maxsplit=2)
    assert out == ["1.0", "5000", "[0.0, 1.0, 2.0] ['é']"]


def test_a_read_from_the_documents_makes_the_segments_anew(store: Any) -> None:
    """Runs written a few at a time (no bulk write) are read from their documents once; the
    column cache then has the store make their segments, and the next process reads those."""
    exp = store.create_experiment("e")
    for start in range(1, 5001, 250):
        store.write_runs(exp.id, [RunRecord(i, params={"x": i % 5}, status="done")
                                  for i in range(start, start + 250)])  # fmt: skip
    assert store.segments_cover(exp.id) < 0.2
    cache = ValueCache(store, min_runs=0, directory=False)
    names = [parse_name("params.x"), parse_name("status")]
    ids, columns, _ = cache.columns(exp.id, names)
    assert len(ids) == 5000 and columns[names[0]].num.tolist()[:5] == [1, 2, 3, 4, 0]
    assert cache.wait(60)
    assert cache.segments_stored == 2 and cache.segment_error is None
    assert store.segments_cover(exp.id) == 1.0
    assert same(store.value_columns(exp.id, names), from_documents(store, exp.id, names))
