"""The columns the UI keeps, saved to value files (storage/value_files.py): a process started
later on the same store answers from them at once, with the store's answers; a file is never
used once the experiment was written, deleted from, replaced or restored and written again; a
file that is cut short or changed is read as no file; a directory that cannot be written leaves
the columns in memory."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.conftest import backend_location

from trialbook.storage import open_store
from trialbook.storage.query import Name, query_runs
from trialbook.storage.records import RunRecord
from trialbook.storage.value_cache import ValueCache, cached_page, value_cache
from trialbook.storage.value_files import default_directory

BACKENDS = ["sqlite", "postgres"]
QUERY = {"where": 'x > 40 and o == "a"', "order_by": "y", "descending": True, "limit": 5,
         "offset": 0, "meta": {}}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    with backend_location(request.param, tmp_path) as location:
        yield location


def runs(count: int, shift: float = 0.0) -> list[RunRecord]:
    return [RunRecord(i, params={"x": i + shift, "o": "ab"[i % 2]}, fields={"y": (i * 7) % 11})
            for i in range(1, count + 1)]  # fmt: skip


def session(location: Any) -> tuple[Any, ValueCache]:
    """A store opened as a freshly started server opens it, with its cache."""
    store = open_store(location)
    cache = value_cache(store)
    assert cache is not None
    cache.min_runs = 0
    return store, cache


def answer(store: Any, experiment_id: int) -> Any:
    """The cache's answer without waiting for a read (``None``: the store answers)."""
    got = cached_page(store, experiment_id, **QUERY)
    return None if got is None else (got[0], [r.run_id for r in got[1]])


def stored(store: Any, experiment_id: int) -> Any:
    total, page = query_runs(store, experiment_id, **QUERY)
    return total, [r.run_id for r in page]


def saved(location: Any, count: int = 60) -> tuple[Any, ValueCache]:
    """An experiment ``e`` of ``count`` runs whose columns a server read (and saved): the
    experiment and that server's cache (its store closed)."""
    store, cache = session(location)
    with store:
        exp = store.create_experiment("e")
        store.write_runs(exp.id, runs(count))
        assert answer(store, exp.id) is None  # the store answers; the columns are read
        cache.wait()
    return exp, cache


def test_a_later_process_answers_from_the_saved_columns_at_once(location: Any) -> None:
    """The first server reads the columns (and saves them); the next one answers its first
    view from the file, without reading the store, with the store's answer; so does another
    Python."""
    exp, cache = saved(location)
    assert cache.reads == 1 and cache.files is not None and cache.files.path(exp.id).exists()
    with open_store(location) as store:
        expected = stored(store, exp.id)
    store, cache = session(location)
    with store:
        assert answer(store, exp.id) == expected  # at once: no wait, no read
        assert (cache.reads, cache.loads) == (0, 1)
    script = textwrap.dedent(f"""
        import json
        from trialbook.storage import open_store
        from trialbook.storage.value_cache import cached_page, value_cache
        with open_store({str(location)!r}) as store:
            cache = value_cache(store)
            cache.min_runs = 0
            got = cached_page(store, {exp.id}, **{QUERY!r})
            print(json.dumps([got[0], [r.run_id for r in got[1]], cache.reads, cache.loads]))
    """)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=os.environ)  # fmt: skip
    assert json.loads(out.stdout) == [*expected, 0, 1]


def test_a_file_is_not_used_after_a_write_or_a_delete(location: Any) -> None:
    """Runs written (by this process or any other) or deleted while no server ran: the next
    server reads the columns from the store and saves them again."""
    exp, _ = saved(location)
    for change in ("write", "delete"):
        with open_store(location) as writer:  # no cache: another process's write
            if change == "write":
                writer.write_runs(exp.id, runs(60, shift=0.5)[40:])
            else:
                writer.delete_runs(exp.id, [59, 57])
        store, cache = session(location)
        with store:
            assert answer(store, exp.id) is None
            cache.wait()
            assert answer(store, exp.id) == stored(store, exp.id)
            assert (cache.reads, cache.loads) == (1, 0)
        store, cache = session(location)
        with store:
            assert answer(store, exp.id) == stored(store, exp.id)
            assert (cache.reads, cache.loads) == (0, 1)


def test_an_experiment_replaced_under_the_same_name_is_read(tmp_path: pathlib.Path) -> None:
    """An experiment deleted and made again (a new id, a new creation time) never takes the
    file of the one before; a file of one experiment is never another's."""
    saved(tmp_path / "s")
    with open_store(tmp_path / "s") as store:
        store.delete_experiment("e")
        again = store.create_experiment("e")
        store.write_runs(again.id, runs(60, shift=100))
    store, cache = session(tmp_path / "s")
    with store:
        assert answer(store, again.id) is None
        cache.wait()
        assert answer(store, again.id) == stored(store, again.id)
        assert answer(store, again.id)[0] == 30  # every "a" run is above 40 now
        assert (cache.reads, cache.loads) == (1, 0)


@pytest.mark.parametrize("damage", ["cut", "flipped", "garbage", "other layout"])
def test_a_damaged_file_is_read_as_no_file(tmp_path: pathlib.Path, damage: str) -> None:
    """A file cut short, with a byte changed, of other bytes, or of another layout: the
    columns are read from the store, with its answers, and the file is written again."""
    exp, cache = saved(tmp_path / "s", 200)
    assert cache.files is not None
    path = cache.files.path(exp.id)
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"not a value file" * 10)
    else:
        np.savez(path, header=np.frombuffer(b'{"format": 99}', dtype=np.uint8))
        data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data))
    store, cache = session(tmp_path / "s")
    with store:
        got = answer(store, exp.id)
        cache.wait()
        assert got in (None, stored(store, exp.id))
        assert answer(store, exp.id) == stored(store, exp.id)
        if damage != "flipped":  # a changed byte may fall where it changes nothing read
            assert (cache.reads, cache.loads) == (1, 0)
    store, cache = session(tmp_path / "s")
    with store:
        assert answer(store, exp.id) == stored(store, exp.id)
        assert (cache.reads, cache.loads) == (0, 1)


def test_a_directory_that_cannot_be_written_keeps_the_columns_in_memory(
    tmp_path: pathlib.Path,
) -> None:
    """The cache directory is a file (or the disk is full): the save fails, the error is kept
    on the cache, and views are answered from memory as before."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory would be")
    with open_store(tmp_path / "s") as store:
        cache = ValueCache(store, min_runs=0, directory=blocked / "columns")
        store._trialbook_value_cache = cache
        exp = store.create_experiment("e")
        store.write_runs(exp.id, runs(60))
        answer(store, exp.id)
        cache.wait()
        assert answer(store, exp.id) == stored(store, exp.id)
        assert isinstance(cache.file_error, OSError) and cache.error is None


def test_the_default_directory_is_per_store(tmp_path: pathlib.Path) -> None:
    """Two stores have two directories (under ``$TRIALBOOK_CACHE_DIR``, which the suite sets),
    the same store opened twice the same one; a store in memory has none."""
    with open_store(tmp_path / "a") as a, open_store(tmp_path / "b") as b:
        with open_store(tmp_path / "a") as again:
            assert default_directory(a) == default_directory(again) != default_directory(b)
        assert str(default_directory(a)).startswith(os.environ["TRIALBOOK_CACHE_DIR"])
    with open_store("sqlite:///:memory:") as memory:
        assert default_directory(memory) is None
        assert ValueCache(memory).files is None


def test_files_beyond_the_budget_go_least_recently_used_first(tmp_path: pathlib.Path) -> None:
    """Saving beyond the budget (all stores' files together) removes the files used least
    recently, of any store; a file just loaded counts as used. A half-written file an hour old
    (its process killed while saving) goes too."""
    from trialbook.storage.value_columns import Column
    from trialbook.storage.value_files import ValueFiles

    root = tmp_path / "columns"
    one, other = ValueFiles(root / "one"), ValueFiles(root / "other")
    ids = np.arange(1000)
    columns = {Name("params", ("x",)): Column.of([float(i) for i in range(1000)])}
    for files, experiment in ((one, 1), (other, 2), (one, 3)):
        files.save(experiment, (1.0, experiment, 0, 7), ids, columns)
        time.sleep(0.02)
    size = one.path(1).stat().st_size
    assert one.load(1, (1.0, 1, 0, 7)) is not None  # used now: 2 is the oldest
    one.budget = other.budget = 3 * size + 10
    killed, recent = root / "other" / "x.tmp", root / "other" / "y.tmp"  # saves cut short
    killed.write_bytes(b"half"), recent.write_bytes(b"half")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    one.save(4, (1.0, 4, 0, 7), ids, columns)
    assert [p.name for p in sorted(root.glob("*/*.npz"))] == ["1.npz", "3.npz", "4.npz"]
    assert not killed.exists() and recent.exists()  # a save under way may be the recent one


def test_columns_read_while_a_write_commits_are_not_saved(tmp_path: pathlib.Path) -> None:
    """A write committed while the columns were read may be in them: they are kept in memory
    (and updated there) but not saved under the token read before them, which an older copy of
    the store restored would have again."""
    store, cache = session(tmp_path / "s")
    with store:
        exp = store.create_experiment("e")
        store.write_runs(exp.id, runs(60))
        read = store.value_columns

        def read_during_a_write(*args: Any, **kwargs: Any) -> Any:
            got = read(*args, **kwargs)
            with open_store(tmp_path / "s") as writer:
                writer.write_runs(exp.id, runs(60, shift=0.5)[50:])
            return got

        store.value_columns = read_during_a_write
        answer(store, exp.id)
        cache.wait()
        store.value_columns = read
        assert cache.files is not None and not cache.files.path(exp.id).exists()
        assert answer(store, exp.id) == stored(store, exp.id) and cache.updates == 1
