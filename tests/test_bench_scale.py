"""The scale benchmark's quick path still runs (its figures are for benchmarks/, not asserted)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_scale.py"


def test_bench_scale_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny run (1,000 runs, trials and 20,000 points) prints every figure of the table."""
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--runs", "1000", "--points", "20000", "--trials", "1000",
                        "--repeats", "1"]) == 0  # fmt: skip
    table = capsys.readouterr().out.split("\nfigure")[1]
    for figure in [
        "create 1,000 runs: add_runs + persist",
        "df() of the loaded experiment",
        "peak memory allocated reading 1,000 runs",
        "search_runs('model == \"cnn\" and i < 1000')",  # the 250 cnn runs of 1,000 match
        "one run committed into an experiment of 1,000 runs",
        "log_metric + persist of 20,000 points",
        "log_metrics + persist of 20,000 points",
        "store.write_runs of the same points as metric chunks",
        "read one run's series (20,000 points)",
        "get_history() of 1,",
        "one trial computed + stored, 1,000 trials stored",
    ]:
        assert figure in table
