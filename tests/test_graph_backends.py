"""The lazy step graph on every backend: SQLite here, PostgreSQL, Redis and MongoDB when their
servers are configured (see tests/conftest.py; skipped with the reason otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

import trialbook
from conftest import Closing
from trialbook.storage.base import Store


def test_quickstart_on_each_backend(backend_store: Store, closing: Closing) -> None:
    ex = closing(trialbook.Experiment("quickstart_pj", backend=backend_store))
    assert repr(ex) == (
        f"Experiment(id: quickstart_pj, trial_id: 0, "
        f"backend: {backend_store.backend_label}({backend_store.url!r}))"
    )
    a, b = ex.parameter("a"), ex.parameter("b")

    @ex.persist
    def prepare_data(a, b):
        return np.arange(a + b)

    @ex.result
    def calculate_score(d):
        for i in range(3):
            ex.save_metric("score", epoch=i, value=float(d.sum() * i))
        return 10 / len(d)

    s = calculate_score(prepare_data(a, b))
    for value in (2, 3, -1):
        ex.set_parameters(a=1, b=value)
        if value < 0:
            with pytest.raises(ZeroDivisionError):
                s.compute(seed=1)
        else:
            s.compute(seed=1)

    again = closing(trialbook.Experiment("quickstart_pj", backend=backend_store))
    assert again.trial_id == 3
    assert again.get_parameters() == {"a": 1, "b": -1}
    history = again.get_history()
    assert history["Result"].tolist()[:2] == [pytest.approx(10 / 3), 2.5]
    assert history["Success"].tolist() == [True, True, False]
    assert history.loc[3, "Description"] == "ZeroDivisionError(division by zero)"
    np.testing.assert_array_equal(again.get_persisted("prepare_data", trial_id=2), np.arange(4))
    assert again.load_metric("score", trial_id=[1, 2]).loc[2].tolist() == [6.0, 12.0]
    assert "def calculate_score(d):" in again.get_code(trial_id=1)
    assert again.get_environment(trial_id=1) == again.get_environment()
    assert again.diff(1, 2).parameters == {"b": (2, 3)}
