"""The torch-based integrations (issue 17): Lightning's logger, Keras's callback (on the PyTorch
backend) and the Transformers ``TrainerCallback``, each training a tiny model on CPU for two
epochs and recording into its own run in the default store, into the current run of a runs
step, or into a given experiment; every assertion reads the store again in a new session."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import trialbook
from conftest import require_module

torch = require_module("torch", "lightning")


def reloaded(store: pathlib.Path, name: str) -> trialbook.RunsExperiment:
    """The experiment ``name`` as a new session reads it (the session is closed: its runs and
    metrics are read at once)."""
    with trialbook.create_session(store) as session:
        experiment = session.load_experiment(name)
        for run in experiment.runs.values():
            for metric in run.metric_names():
                run.metrics(metric)
            dict(run.artifacts)
        return experiment


def regression_data(count: int = 32) -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(count, 2, generator=generator)
    return x, x.sum(dim=1, keepdim=True)


# -- Lightning -------------------------------------------------------------------------------


def lightning_trainer(root: pathlib.Path, logger: Any, **options: Any) -> Any:
    pl = require_module("lightning.pytorch", "lightning")
    return pl.Trainer(
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=root,
        **options,
    )


def lightning_module(**hparams: Any) -> Any:
    pl = require_module("lightning.pytorch", "lightning")

    class Regression(pl.LightningModule):
        def __init__(self, lr: float = 0.1, hidden: int = 4, fail_at: int | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def training_step(self, batch: Any, index: int) -> Any:
            if self.hparams.fail_at is not None and self.global_step >= self.hparams.fail_at:
                raise FloatingPointError("the loss diverged")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    return Regression(**hparams)


def lightning_data() -> Any:
    x, y = regression_data()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def test_lightning_logger_records_into_its_own_run(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hyperparameters become the run's params, metrics keep Lightning's steps, and the best
    checkpoint (lowest val_loss) is an artifact named in a field."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from trialbook.integrations.lightning import TrialbookLogger

    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "store"))
    logger = TrialbookLogger(log_checkpoint=True)
    best = ModelCheckpoint(monitor="val_loss", mode="min")
    trainer = lightning_trainer(tmp_path, logger, callbacks=[best])
    trainer.fit(lightning_module(lr=0.05), lightning_data(), lightning_data())

    (run,) = reloaded(tmp_path / "store", "lightning").runs.values()
    assert run.status == "done"
    assert dict(run.params) == {"lr": 0.05, "hidden": 4, "fail_at": None}
    assert logger.version == run.id and logger.name == "lightning"
    steps = run.metrics("train_loss_step")["step"].tolist()
    assert steps == list(range(8))  # 4 batches a epoch, 2 epochs, logged at every step
    assert run.metrics("val_loss")["step"].tolist() == [3, 7]  # the epoch's last step
    assert run.metrics("train_loss_epoch")["value"].size == 2
    epochs = run.metrics("epoch")
    assert epochs["value"].tolist() == [0] * 4 + [1] * 4  # one point per step
    checkpoint = run.fields.lightning_checkpoint
    assert checkpoint["monitor"] == "val_loss"
    assert checkpoint["score"] == pytest.approx(run.metrics("val_loss")["value"].min())
    assert checkpoint["artifact"] == pathlib.Path(best.best_model_path).name
    assert (
        run.artifacts[checkpoint["artifact"]].size
        == pathlib.Path(best.best_model_path).stat().st_size
    )


def test_lightning_logger_records_into_the_current_run_of_a_step(
    tmp_path: pathlib.Path,
) -> None:
    """Inside a runs step the step's run gets the metrics; the hyperparameters are a field."""
    from trialbook.integrations.lightning import TrialbookLogger

    def fit(run: Any) -> None:
        logger = TrialbookLogger()
        lightning_trainer(tmp_path, logger).fit(
            lightning_module(lr=run.params.lr), lightning_data(), lightning_data()
        )
        assert logger.version == run.id

    with trialbook.create_session(tmp_path / "store") as session:
        sweep = session.create_experiment("sweep")
        sweep.add_runs(lr=[0.1, 0.01])
        sweep.execute(fit)
        sweep.persist()
        assert session.ls()["name"].tolist() == ["sweep"]  # no run of the logger's own

    runs = reloaded(tmp_path / "store", "sweep").runs
    for run in runs.values():
        assert run.status == "done"
        assert run.fields.lightning_params == {"lr": run.params.lr, "hidden": 4, "fail_at": None}
        assert run.metrics("train_loss_step")["step"].tolist() == list(range(8))
    assert runs[1].metrics("train_loss_epoch")["value"].tolist() != (
        runs[2].metrics("train_loss_epoch")["value"].tolist()
    )


def test_lightning_failure_leaves_its_run_failed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in training propagates unchanged; the logger's own run is failed with it and
    keeps the metrics logged before it."""
    from trialbook.integrations.lightning import TrialbookLogger

    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "store"))
    trainer = lightning_trainer(tmp_path, TrialbookLogger())
    with pytest.raises(FloatingPointError, match="the loss diverged"):
        trainer.fit(lightning_module(fail_at=3), lightning_data(), lightning_data())

    (run,) = reloaded(tmp_path / "store", "lightning").runs.values()
    assert run.status == "failed"
    assert "FloatingPointError" in str(run.error) and "the loss diverged" in str(run.error)
    assert run.metrics("train_loss_step")["step"].tolist() == [0, 1, 2]


# -- Keras (on the PyTorch backend: the root conftest sets KERAS_BACKEND) ---------------------


def keras_model(lr: float = 0.01) -> Any:
    keras = require_module("keras", "keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def keras_data() -> tuple[Any, Any]:
    x, y = regression_data()
    return x.numpy(), y.numpy()


def test_keras_callback_records_into_its_own_run(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parameters of fit are the run's params; epoch logs (validation too) have step =
    the epoch; each fit gets a run of its own."""
    from trialbook.integrations.keras import TrialbookCallback

    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "store"))
    x, y = keras_data()
    model = keras_model(lr=0.05)
    callback = TrialbookCallback()
    history = model.fit(
        x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=0, callbacks=[callback]
    )
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])

    first, second = reloaded(tmp_path / "store", "keras").runs.values()
    assert first.status == second.status == "done"
    assert dict(first.params) == {
        "epochs": 2,
        "steps": 4,
        "optimizer": "Adam",
        "learning_rate": 0.05,
    }
    assert sorted(first.metric_names()) == ["loss", "mae", "val_loss", "val_mae"]
    for name, values in history.history.items():
        assert first.metrics(name)["step"].tolist() == [0, 1]
        assert first.metrics(name)["value"].tolist() == pytest.approx([float(v) for v in values])
    assert dict(second.params)["steps"] == 2 and second.metrics("loss")["step"].tolist() == [0]


def test_keras_callback_records_batches_into_the_current_run_of_a_step(
    tmp_path: pathlib.Path,
) -> None:
    """Inside a runs step: the step's params stay, fit's are a field, batches are counted from
    the first epoch."""
    from trialbook.integrations.keras import TrialbookCallback

    def fit(run: Any) -> None:
        x, y = keras_data()
        callback = TrialbookCallback(log_batches=True)
        keras_model(lr=run.params.lr).fit(
            x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback]
        )

    with trialbook.create_session(tmp_path / "store") as session:
        sweep = session.create_experiment("sweep")
        sweep.add_runs(lr=[0.01])
        sweep.execute(fit).persist()
        assert session.ls()["name"].tolist() == ["sweep"]

    (run,) = reloaded(tmp_path / "store", "sweep").runs.values()
    assert run.status == "done" and dict(run.params) == {"lr": 0.01}
    assert run.fields.keras_params == {
        "epochs": 2, "steps": 4, "optimizer": "Adam", "learning_rate": 0.01,
    }  # fmt: skip
    assert run.metrics("batch_loss")["step"].tolist() == list(range(8))
    assert run.metrics("loss")["step"].tolist() == [0, 1]
    # the last batch's running mean is the epoch's loss
    assert run.metrics("batch_loss")["value"].iloc[[3, 7]].tolist() == pytest.approx(
        run.metrics("loss")["value"].tolist()
    )


def test_keras_failure_in_fit_leaves_its_run_failed(tmp_path: pathlib.Path, closing: Any) -> None:
    """Keras has no error hook: the callback as a with block ends its run failed with the
    error, which propagates unchanged; the finished epoch stays recorded."""
    keras = require_module("keras", "keras")
    from trialbook.integrations.keras import TrialbookCallback

    def diverge(epoch: int, logs: Any) -> None:
        if epoch == 1:
            raise FloatingPointError("the loss diverged")

    session = closing(trialbook.create_session(tmp_path / "store"))
    experiment = session.create_experiment("dense")
    x, y = keras_data()
    model = keras_model()
    failing = keras.callbacks.LambdaCallback(on_epoch_begin=diverge)
    callback = TrialbookCallback(experiment)
    with pytest.raises(FloatingPointError, match="the loss diverged"), callback:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback, failing])

    (run,) = reloaded(tmp_path / "store", "dense").runs.values()
    assert run.status == "failed" and "the loss diverged" in str(run.error)
    assert run.metrics("loss")["step"].tolist() == [0]


# -- Transformers (a tiny BERT built from its config: nothing comes from a hub) ----------------


def hf_trainer(root: pathlib.Path, callbacks: list[Any], **arguments: Any) -> Any:
    transformers = require_module("transformers", "transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    data = [
        {
            "input_ids": torch.randint(0, 32, (8,), generator=generator),
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": torch.tensor(i % 2),
        }
        for i in range(16)
    ]
    args = transformers.TrainingArguments(
        output_dir=str(root / "out"), report_to=[], use_cpu=True, disable_tqdm=True,
        num_train_epochs=2, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="no", eval_strategy="epoch", **arguments,
    )  # fmt: skip
    return transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=data,
        eval_dataset=data[:8],
        callbacks=callbacks,
    )


def test_transformers_callback_records_into_its_own_run(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The main training arguments are params, all of them a field; every logged number has
    step = the global step; a later evaluate() gets a run of its own."""
    from trialbook.integrations.transformers import TrialbookCallback

    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "store"))
    trainer = hf_trainer(tmp_path, [TrialbookCallback()], learning_rate=1e-3, seed=7)
    trainer.train()
    scores = trainer.evaluate()

    run, evaluation = reloaded(tmp_path / "store", "transformers").runs.values()
    assert run.status == "done"
    assert dict(run.params) == {
        "learning_rate": 1e-3, "num_train_epochs": 2.0, "per_device_train_batch_size": 4,
        "seed": 7, "weight_decay": 0.0,
    }  # fmt: skip
    assert run.fields.transformers_args["eval_strategy"] == "epoch"
    assert run.fields.transformers_args["output_dir"] == str(tmp_path / "out")
    assert run.metrics("loss")["step"].tolist() == list(range(1, 9))  # 4 batches, 2 epochs
    assert run.metrics("eval_loss")["step"].tolist() == [4, 8]
    assert run.metrics("epoch")["value"].tolist() == [0.25 * step for step in range(1, 9)]
    history = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert run.metrics("loss")["value"].tolist() == pytest.approx(history)
    assert run.metrics("train_loss")["step"].tolist() == [8]
    # evaluate() after train(): a run of its own, done with its log
    assert evaluation.status == "done" and evaluation.params == run.params
    assert evaluation.metrics("eval_loss")["value"].tolist() == [scores["eval_loss"]]


def test_transformers_callback_records_into_the_current_run_of_a_step(
    tmp_path: pathlib.Path,
) -> None:
    """Inside a runs step: the step's params stay, the training arguments are fields."""
    from trialbook.integrations.transformers import TrialbookCallback

    def train(run: Any) -> None:
        hf_trainer(tmp_path, [TrialbookCallback()], learning_rate=run.params.lr).train()

    with trialbook.create_session(tmp_path / "store") as session:
        sweep = session.create_experiment("sweep")
        sweep.add_runs(lr=[1e-3])
        sweep.execute(train).persist()
        assert session.ls()["name"].tolist() == ["sweep"]

    (run,) = reloaded(tmp_path / "store", "sweep").runs.values()
    assert run.status == "done" and dict(run.params) == {"lr": 1e-3}
    assert run.fields.transformers_params["learning_rate"] == 1e-3
    assert run.fields.transformers_args["per_device_train_batch_size"] == 4
    assert run.metrics("loss")["step"].tolist() == list(range(1, 9))


def test_transformers_failure_in_training_leaves_its_run_failed(
    tmp_path: pathlib.Path, closing: Any
) -> None:
    """A Trainer has no error hook: the callback as a with block ends its run failed with the
    error, which propagates unchanged; what was logged before stays."""
    transformers = require_module("transformers", "transformers")
    from trialbook.integrations.transformers import TrialbookCallback

    class Diverge(transformers.TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 3:
                raise FloatingPointError("the loss diverged")

    session = closing(trialbook.create_session(tmp_path / "store"))
    callback = TrialbookCallback(session.create_experiment("bert"))
    trainer = hf_trainer(tmp_path, [callback, Diverge()])
    with pytest.raises(FloatingPointError, match="the loss diverged"), callback:
        trainer.train()

    (run,) = reloaded(tmp_path / "store", "bert").runs.values()
    assert run.status == "failed" and "the loss diverged" in str(run.error)
    assert run.metrics("loss")["step"].tolist() == [1, 2, 3]


def test_keras_callback_records_into_a_graph_trial(tmp_path: pathlib.Path, closing: Any) -> None:
    """Inside a step of a lazy graph the trial's run gets the epochs; a new experiment object
    reads them back."""
    from trialbook.integrations.keras import TrialbookCallback

    ex = closing(trialbook.Experiment(id="graph_keras", backend=tmp_path / "store"))
    lr = ex.parameter("lr")

    @ex.result
    def train(lr: float) -> float:
        x, y = keras_data()
        model = keras_model(lr=lr)
        history = model.fit(
            x, y, epochs=2, batch_size=8, verbose=0, callbacks=[TrialbookCallback()]
        )
        return float(history.history["loss"][-1])

    ex.set_parameters(lr=0.01)
    last = train(lr).compute(seed=0)

    again = closing(trialbook.Experiment(id="graph_keras", backend=tmp_path / "store"))
    losses = again.load_metric("loss", trial_id=1)
    assert losses.index.tolist() == [0, 1] and losses[1].iloc[-1] == pytest.approx(last)
