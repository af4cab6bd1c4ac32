"""lab_utils.experiments: one row per VAE variant, measured alike, cached like every trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lab_utils.artifacts import record_path
from lab_utils.config import RunConfig
from lab_utils.experiments import run_experiment
from lab_utils.judge import build_classifier, classifier_features
from lab_utils.reports import experiments_table
from lab_utils.trained import KL_WARMUP_EPOCHS, Experiment, trained_model


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


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_ARTIFACTS", str(tmp_path))
    return tmp_path / "fast" / "experiments"


@pytest.mark.parametrize("name", ["β = 4", "conditional, latent 2"])
def test_a_row_has_every_figure_and_reuses_the_saved_model(name, setting, artifacts, capsys):
    data, config, classifier, reference = setting
    row = run_experiment(name, classifier, reference, config, data, generated=50)
    said = capsys.readouterr().out  # which model, Keras' epoch line, the IWAE progress line
    assert f"{name}.keras." in said and "Training " in said and "4/4 - " in said
    assert "IWAE, K = 5, 20 images: 10% 20%" in said and "\x1b" not in said
    assert row["negative_elbo"] == pytest.approx(row["reconstruction_loss"] + row["kl_loss"])
    assert row["log_px"] < 0 and sum(row["digit_counts"]) == 50 and row["name"] == name
    assert row["test_images"] == config.iwae_images  # −ELBO and IWAE on the same test images
    record = json.loads(record_path(artifacts / f"{name}.keras").read_text())
    assert row["train_seconds"] == record["seconds"] and row["epochs"] == len(record["history"]["loss"]) == 1
    assert (row["accuracy"] is not None) == (row["architecture"] == "conditional")
    again = run_experiment(name, classifier, reference, config, data, generated=50)
    assert "Loaded the trained model" in capsys.readouterr().out
    assert again["train_seconds"] == row["train_seconds"] and again["negative_elbo"] == pytest.approx(
        row["negative_elbo"], rel=0.05
    )
    assert row["iwae_samples"] == config.experiment_iwae_samples
    table = experiments_table([row, again]).splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {name} |") and "(IWAE, K = 5)" in table[0]
    with pytest.raises(ValueError, match=r"different K \(\[5, 10\]\)"):
        experiments_table([row, {**again, "iwae_samples": 10}])


def test_an_experiment_with_its_own_seed_trains_another_model_and_records_the_seed(setting, artifacts):
    data, config = setting[0], setting[1]
    names = ("dense, latent 2", "dense, latent 2, seed 1")
    runs = [trained_model(name, config, data, verbose=0) for name in names]
    assert not np.array_equal(runs[0].model.get_weights()[0], runs[1].model.get_weights()[0])
    recorded = [json.loads(record_path(artifacts / f"{name}.keras").read_text()) for name in names]
    assert [record["settings"]["seed"] for record in recorded] == [config.seed, 1]


def test_the_remedies_are_part_of_an_experiments_settings_only_when_used():
    plain = Experiment("dense, latent 20", latent_dim=20).settings()
    assert "kl_warmup_epochs" not in plain and "free_bits" not in plain  # models saved before them still load
    warm = Experiment("warm-up", latent_dim=20, kl_warmup_epochs=3, free_bits=0.5).settings()
    assert warm["kl_warmup_epochs"] == 3 and warm["free_bits"] == 0.5


def test_a_warm_up_is_counted_in_the_runs_training_steps(artifacts):
    config = RunConfig(mode="fast", train_size=100, epochs=1, batch_size=32)
    images = (np.random.default_rng(0).random((120, 784)) > 0.8).astype("float32")
    labels = np.arange(120) % 10
    data = ((images[:100], labels[:100]), (images[100:], labels[100:]))
    vae = trained_model("latent 20, KL warm-up", config, data, verbose=0).model
    assert vae.kl_warmup_steps == KL_WARMUP_EPOCHS * 4  # 100 images in batches of 32: 4 steps per epoch
