"""lab_utils.experiments: one row per VAE variant, measured alike, cached like every trained model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lab_utils.artifacts import record_path
from lab_utils.config import RunConfig
from lab_utils.experiments import Experiment, run_experiment, train_experiment
from lab_utils.judge import build_classifier, classifier_features
from lab_utils.reports import experiments_table


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    x = (rng.random((300, 784)) > 0.7).astype("float32")
    y = (np.arange(300) % 10).astype("uint8")
    data = ((x[:200], y[:200]), (x[200:], y[200:]))
    config = RunConfig(
        mode="fast",
        train_size=200,
        epochs=1,
        batch_size=50,
        iwae_images=20,
        iwae_samples=10,
        experiment_iwae_samples=5,
    )
    classifier = build_classifier(seed=0)
    return data, config, classifier, classifier_features(classifier, x[200:])


@pytest.mark.parametrize(
    "experiment",
    [
        Experiment("beta4", beta=4.0, hidden_units=(16,)),
        Experiment("cvae", architecture="conditional", hidden_units=(16,)),
    ],
    ids=lambda e: e.name,
)
def test_a_row_has_every_figure_and_reuses_the_saved_model(experiment, setting, tmp_path, capsys):
    data, config, classifier, reference = setting
    row = run_experiment(experiment, config, data, classifier, reference, tmp_path, samples=50)
    said = capsys.readouterr().out  # which model, Keras' epoch line, the IWAE progress line
    assert f"{experiment.name}: training (or loading)" in said and "4/4 - " in said
    assert "IWAE, K = 5, 20 images: 10% 20%" in said and "\x1b" not in said
    assert row["negative_elbo"] == pytest.approx(row["reconstruction_loss"] + row["kl_loss"])
    assert row["log_px"] < 0 and sum(row["digit_counts"]) == 50
    assert row["test_images"] == config.iwae_images  # −ELBO and IWAE on the same test images
    record = json.loads(record_path(tmp_path / f"{experiment.name}.keras").read_text())
    assert row["train_seconds"] == record["seconds"] and row["epochs"] == len(record["history"]["loss"]) == 1
    assert (row["accuracy"] is not None) == (experiment.architecture == "conditional")
    again = run_experiment(experiment, config, data, classifier, reference, tmp_path, samples=50)
    assert "Loaded the trained model" in capsys.readouterr().out
    assert again["train_seconds"] == row["train_seconds"] and again["negative_elbo"] == pytest.approx(
        row["negative_elbo"], rel=0.05
    )
    assert row["iwae_samples"] == config.experiment_iwae_samples
    table = experiments_table([row, again]).splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {experiment.name} |") and "(IWAE, K = 5)" in table[0]
    with pytest.raises(ValueError, match=r"different K \(\[5, 10\]\)"):
        experiments_table([row, {**again, "iwae_samples": 10}])


def test_an_experiment_with_its_own_seed_trains_another_model_and_records_the_seed(setting, tmp_path):
    (x_train, _), (x_test, _) = setting[0]
    config = setting[1]
    runs = {
        seed: train_experiment(
            Experiment(f"seed {seed}", hidden_units=(8,), seed=seed), config, x_train, x_test, tmp_path, 0
        )
        for seed in (None, 1)
    }
    weights = [run.model.get_weights()[0] for run in runs.values()]
    assert not np.array_equal(*weights)
    recorded = [
        json.loads(record_path(tmp_path / f"seed {seed}.keras").read_text())["settings"] for seed in runs
    ]
    assert [settings["seed"] for settings in recorded] == [config.seed, 1]


def test_the_remedies_are_part_of_an_experiments_settings_only_when_used():
    plain = Experiment("dense, latent 20", latent_dim=20).settings()
    assert "kl_warmup_epochs" not in plain and "free_bits" not in plain  # models saved before them still load
    warm = Experiment("warm-up", latent_dim=20, kl_warmup_epochs=3, free_bits=0.5).settings()
    assert warm["kl_warmup_epochs"] == 3 and warm["free_bits"] == 0.5


def test_a_warm_up_is_counted_in_the_runs_training_steps(tmp_path):
    config = RunConfig(mode="fast", train_size=100, epochs=1, batch_size=32)
    images = (np.random.default_rng(0).random((120, 784)) > 0.8).astype("float32")
    vae = train_experiment(
        Experiment("warm-up", hidden_units=(8,), kl_warmup_epochs=2),
        config,
        images,
        None,
        tmp_path,
        verbose=0,
    ).model
    assert vae.kl_warmup_steps == 2 * 4  # 100 images in batches of 32: 4 steps per epoch


def test_a_model_another_notebook_trains_is_loaded_even_when_the_run_retrains(setting, tmp_path, capsys):
    """make run sets retrain for every notebook: 07 must load 05's models, not train them again."""
    (x_train, _), (x_test, _) = setting[0]
    retraining = dataclasses.replace(setting[1], retrain=True)
    experiment = Experiment("borrowed", hidden_units=(8,))
    first = train_experiment(experiment, retraining, x_train, x_test, tmp_path, 0)
    capsys.readouterr()
    borrowed = train_experiment(experiment, retraining, x_train, x_test, tmp_path, 0, retrain=False)
    assert "Loaded the trained model" in capsys.readouterr().out
    assert borrowed.seconds == first.seconds
    np.testing.assert_array_equal(borrowed.model.get_weights()[0], first.model.get_weights()[0])
    again = train_experiment(experiment, retraining, x_train, x_test, tmp_path, 0)  # owner: config.retrain
    assert "Loaded" not in capsys.readouterr().out and again.seconds != first.seconds
