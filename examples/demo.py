"""trialbook demo: a grid of ridge regressions fitted with NumPy, persisted and reloaded.

Run it with `make demo`. It writes to the embedded default store (`.trialbook/` here, or
$TRIALBOOK_STORE), replacing the experiment of the previous demo run, then prints the
experiment's history as read back from the store.
"""

from __future__ import annotations

import numpy as np

import trialbook

EXPERIMENT = "demo-ridge"


def make_data(run: trialbook.Run) -> None:
    """Synthetic regression data; kept in run.vars (this execution only)."""
    rng = np.random.default_rng(run.params.seed)
    x = rng.normal(size=(400, 8))
    true_w = np.linspace(-2, 2, 8)
    y = x @ true_w + rng.normal(scale=run.params.noise, size=400)
    run.vars.train = (x[:300], y[:300])
    run.vars.test = (x[300:], y[300:])
    run.state.true_w = true_w  # kept in memory after execute, not persisted


def fit(run: trialbook.Run) -> None:
    """Closed-form ridge regression; weights and scores go to run.fields (persisted)."""
    x, y = run.vars.train
    alpha = run.params.alpha
    w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)
    run.fields.weights = w
    for epoch, frac in enumerate(np.linspace(0.1, 1.0, 10)):
        n = int(len(y) * frac)  # learning curve: test error vs. training-set size
        wn = np.linalg.solve(x[:n].T @ x[:n] + alpha * np.eye(x.shape[1]), x[:n].T @ y[:n])
        xt, yt = run.vars.test
        run.log_metric("test_mse", float(np.mean((xt @ wn - yt) ** 2)), step=epoch)


def evaluate(run: trialbook.Run) -> None:
    xt, yt = run.vars.test
    pred = xt @ run.fields.weights
    run.fields.test_mse = float(np.mean((pred - yt) ** 2))
    run.fields.weight_error = float(np.linalg.norm(run.fields.weights - run.state.true_w))


def main() -> None:
    with trialbook.create_session() as session:  # closes the store at the end
        # each demo run starts over: the previous one is replaced when this one persists
        experiment = session.create_experiment(EXPERIMENT, if_exists="replace")
        experiment.add_runs(alpha=[0.01, 1.0, 100.0], noise=[0.5, 2.0], seed=[0, 1])
        experiment.execute([make_data, fit, evaluate], n_jobs=2)
        experiment.persist()

        reloaded = session.load_experiment(EXPERIMENT)
        table = reloaded.df()[
            ["alpha", "noise", "seed", "status", "duration", "test_mse", "weight_error"]
        ]
        print(f"{session}\n")
        print(f"history of {EXPERIMENT!r} ({len(reloaded.runs)} runs, reloaded from the store):")
        print(table.round(4).to_string())
        best = table["test_mse"].idxmin()
        curve = reloaded.runs[best].metrics("test_mse")
        alpha, noise = table.loc[best, "alpha"], table.loc[best, "noise"]
        print(f"\nbest run: {best} (alpha={alpha}, noise={noise})")
        print(
            "its learning curve (test MSE by training-set tenth):",
            curve["value"].round(3).tolist(),
        )
        print(
            "\nlook around: .venv/bin/trialbook ls ; .venv/bin/trialbook runs demo-ridge ;"
            f" .venv/bin/trialbook show demo-ridge {best}"
        )


if __name__ == "__main__":
    main()
