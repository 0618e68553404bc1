"""An outage longer than the retry budget loses no computed work (issue 18): the write of a
trial (``compute()``) or of persisted runs is kept in the local journal, ``compute()`` still
returns its value with a JournalWarning naming the journal, and the entries are written before
the next write to the store, or by ``trialbook flush``. Each server test stops a private
server of its own (tests/servers.py) from inside the step, so the outage starts after the
trial's id was allocated and before its record is written."""

from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner

import trialbook
from servers import Server, private_server
from trialbook.cli import cli
from trialbook.errors import JournalWarning, StoreUnavailableError, TrialbookWarning
from trialbook.graph import Experiment
from trialbook.journal import Journal
from trialbook.storage import open_store


@pytest.fixture
def journal_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """The working directory of the test is a folder of its own: the journal goes there."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("TRIALBOOK_JOURNAL", raising=False)
    return work / ".trialbook-journal"


def _graph(store, server: Server | None) -> tuple[Experiment, trialbook.graph.Parameter]:
    """An experiment whose step stops ``server`` when ``a`` is 2 (then logs and returns)."""
    ex = Experiment("journalled", backend=store)
    a = ex.parameter("a")

    @ex.result
    def double(a):
        if a == 2 and server is not None:
            server.stop()
        ex.save_metric("m", epoch=1, value=float(a))
        return 2 * a

    return ex, a, double  # type: ignore[return-value]


def test_a_trial_of_a_long_outage_is_returned_kept_and_written_when_the_server_is_back(
    server: Server, journal_dir: pathlib.Path, closing
) -> None:
    store = closing(open_store(server.url + "?retry_seconds=0.5"))
    ex, a, double = _graph(store, server)
    ex.set_parameters(a=1)
    assert double(a).compute() == 2
    ex.set_parameters(a=2)
    with pytest.warns(JournalWarning, match=r"trial 2 of experiment 'journalled' is kept in"):
        assert double(a).compute() == 4  # the result, though the server went away
    (entry,) = Journal(journal_dir).entries(store)
    assert entry.what == "trial 2 of experiment 'journalled'" and entry.store == store.url
    print(f"injected: {server.url} stopped inside trial 2; kept: {entry.path.name}")

    server.start()
    ex.set_parameters(a=3)
    assert double(a).compute() == 6  # writes the kept trial first, then its own
    assert Journal(journal_dir).entries() == []
    history = ex.get_history()
    assert history["Result"].tolist() == [2, 4, 6]
    assert history["Success"].tolist() == [True, True, True]
    metric = ex.load_metric("m", trial_id=[1, 2, 3])
    assert metric.loc[1].tolist() == [1.0, 2.0, 3.0]


def test_persisted_runs_of_a_long_outage_are_kept_and_flushed_by_the_command(
    tmp_path: pathlib.Path, journal_dir: pathlib.Path
) -> None:
    """The runs of a stored experiment finish while PostgreSQL is down; persist() keeps them
    in the journal and warns; `trialbook flush --store URL` writes them once it is back."""
    server = private_server("postgres", tmp_path)
    try:
        url = server.url + "?retry_seconds=0.5"
        with trialbook.create_session(url) as session:
            experiment = session.create_experiment("sweep")
            experiment.add_runs(x=[1, 2, 3])
            experiment.persist()

            def step(run: trialbook.Run) -> None:
                if run.params.x == 2:
                    server.stop()
                run.fields.y = run.params.x * 10
                run.log_metric("m", run.params.x)

            with pytest.warns(TrialbookWarning) as caught:
                experiment.execute(step).persist()
            kept = [w for w in caught if issubclass(w.category, JournalWarning)]
            assert len(kept) == 1 and "3 run(s) of experiment 'sweep'" in str(kept[0].message)
            assert "trialbook flush" in str(kept[0].message)
            assert len(Journal(journal_dir).entries()) == 1

        server.start()
        result = CliRunner().invoke(cli, ["flush", "--store", url])
        assert result.exit_code == 0, result.output
        assert "wrote 1 journal entry" in result.output
        assert Journal(journal_dir).entries() == []
        with trialbook.create_session(url) as session:
            loaded = session.load_experiment("sweep")
            assert [run.status for run in loaded.runs.values()] == ["done"] * 3
            assert [run.fields.y for run in loaded.runs.values()] == [10, 20, 30]
            assert loaded.runs[2].metrics("m")["value"].tolist() == [2]
    finally:
        server.close()


def test_an_entry_the_store_refuses_stays_and_the_command_says_why(
    tmp_path: pathlib.Path, journal_dir: pathlib.Path
) -> None:
    """A kept write whose experiment was deleted meanwhile stays in the journal; entries of
    another store are listed, not touched; the command exits with status 1."""
    location = str(tmp_path / "store")
    other = str(tmp_path / "other")
    with trialbook.create_session(location) as session, trialbook.create_session(other) as two:
        info = session.store.create_experiment("gone")
        journal = Journal(journal_dir)
        journal.keep(session.store, "update_meta", info.id, {"k": 1}, what="fields of 'gone'")
        journal.keep(two.store, "update_meta", 1, {"k": 2}, what="fields of 'elsewhere'")
        session.store.delete_experiment("gone")
    result = CliRunner().invoke(cli, ["flush", "--store", location])
    assert result.exit_code == 1
    assert "kept:" in result.output and "fields of 'gone'" in result.output
    assert "ExperimentNotFoundError" in result.output
    assert "other store:" in result.output and "fields of 'elsewhere'" in result.output
    assert len(Journal(journal_dir).entries()) == 2


def test_a_journal_that_cannot_be_written_gives_the_outage_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, closing
) -> None:
    """If even the journal cannot be written (here: its path is a file), compute() raises the
    StoreUnavailableError, with a note naming the journal."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TRIALBOOK_JOURNAL", str(blocker / "journal"))
    server = private_server("redis", tmp_path)
    try:
        store = closing(open_store(server.url + "?retry_seconds=0.5"))
        ex, a, double = _graph(store, server)
        ex.set_parameters(a=2)
        with pytest.raises(StoreUnavailableError) as caught:
            double(a).compute()
        assert any("could not be kept in the journal" in note for note in caught.value.__notes__)
    finally:
        server.close()
