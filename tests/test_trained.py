"""lab_utils.trained: the one door to trained models, and notebook 02's fit on the page (`keep`)."""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import pytest

from lab_utils import trained
from lab_utils.artifacts import record_path
from lab_utils.config import RunConfig
from lab_utils.data import make_dataset
from lab_utils.models import VAE, build_decoder, build_encoder
from lab_utils.training import set_seed

CONFIG = RunConfig(mode="fast", train_size=200, epochs=2, batch_size=50, classifier_epochs=1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = (rng.random((300, 784)) > 0.7).astype("float32")
    y = (np.arange(300) % 10).astype("uint8")
    return (x[:200], y[:200]), (x[200:], y[200:])


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_ARTIFACTS", str(tmp_path))
    monkeypatch.delenv("VAE_LAB_RETRAIN", raising=False)
    monkeypatch.delenv(trained.RETRAIN_SINCE_VARIABLE, raising=False)
    return tmp_path / "fast"


def codes(model, images):
    return model.encoder.predict(images, verbose=0)[0]


def lab_on_the_page(data, epochs=2, hidden=(512,)):
    """What notebook 02 does: build, wrap, compile, fit with keep("lab"); returns (vae, History)."""
    (x_train, _), (x_test, _) = data
    set_seed(CONFIG.seed)
    encoder = build_encoder(latent_dim=2, hidden_units=hidden, seed=CONFIG.seed)
    vae = VAE(encoder, build_decoder(latent_dim=2, hidden_units=hidden), name="vae")
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), jit_compile=True, steps_per_execution=64)
    train_data = make_dataset(x_train, batch_size=50, shuffle=True, seed=CONFIG.seed)
    fitted = vae.fit(train_data, validation_data=make_dataset(x_test, batch_size=50), epochs=epochs,
                     shuffle=False, verbose=2, callbacks=trained.keep("lab", CONFIG))
    return vae, fitted


def test_every_recipe_is_named_once_and_an_unknown_name_lists_them():
    names = list(trained.RECIPES)
    assert len(names) == len(set(names)) == 19 and {"lab", "judge"} <= set(names)
    assert {recipe.notebook for recipe in trained.RECIPES.values()} == {
        "02_vae_lab", "04_compare", "05_experiments", "06_likelihoods", "07_what_the_elbo_hides"
    }
    with pytest.raises(KeyError, match="'dense, latent 3'.*'lab', 'judge'"):
        trained.recipe("dense, latent 3")
    with pytest.raises(ValueError, match="'judge' is not a VAE"):
        trained.untrained_model("judge", CONFIG)
    assert trained.untrained_model("conv, latent 2", CONFIG).encoder.count_params() == 105_476


def test_a_model_is_trained_once_then_loaded_by_name(data, folder, capsys):
    first = trained.trained_model("β = 4", CONFIG, data, verbose=0)
    assert "Saved the trained model to" in capsys.readouterr().out
    assert first.model.beta == 4.0 and len(first.history["loss"]) == CONFIG.epochs
    again = trained.trained_model("β = 4", CONFIG, data, verbose=0)
    assert "Loaded the trained model" in capsys.readouterr().out
    images = data[1][0][:4]
    np.testing.assert_allclose(codes(again.model, images), codes(first.model, images), rtol=1e-5)
    assert (folder / "experiments" / "β = 4.keras").is_file() and again.seconds == first.seconds
    judge = trained.trained_model("judge", CONFIG, data, verbose=0)
    assert judge.model.name == "digit_classifier" and (folder / "digit_classifier.keras").is_file()


def test_a_retraining_run_trains_each_model_once(data, folder, monkeypatch, capsys):
    """VAE_LAB_RETRAIN=1 (make run): a model saved before the run is trained again; one saved during it
    (by an earlier notebook of the same run) is loaded by every later notebook."""
    trained.trained_model("dense, latent 8", CONFIG, data, verbose=0)
    before = (folder / "experiments" / "dense, latent 8.keras").stat().st_mtime
    capsys.readouterr()
    monkeypatch.setenv(trained.RETRAIN_SINCE_VARIABLE, str(time.time() + 1))
    retraining = RunConfig(**{**CONFIG.__dict__, "retrain": True})
    time.sleep(1.1)
    trained.trained_model("dense, latent 8", retraining, data, verbose=0)
    assert "Saved the trained model" in capsys.readouterr().out
    assert (folder / "experiments" / "dense, latent 8.keras").stat().st_mtime > before
    trained.trained_model("dense, latent 8", retraining, data, verbose=0)  # a later notebook, same run
    assert "Loaded the trained model" in capsys.readouterr().out


def test_the_fit_on_the_page_saves_the_lab_model_and_a_rerun_restores_it(data, folder, capsys):
    vae, fitted = lab_on_the_page(data)
    said = capsys.readouterr().out
    assert "Epoch 2/2" in said and "Saved the trained model to" in said and len(fitted.epoch) == 2
    saved = json.loads(record_path(folder / "vae_lab.keras").read_text())
    assert saved["settings"] == trained._settings(trained.recipe("lab"), CONFIG)
    assert trained.history("lab", CONFIG) == saved["history"] and len(saved["history"]["val_loss"]) == 2
    # the later notebooks get the model built and fitted on the page
    loaded = trained.trained_model("lab", CONFIG, data, verbose=0).model
    images = data[1][0][:4]
    np.testing.assert_allclose(codes(loaded, images), codes(vae, images), rtol=1e-5)
    # running the cell again restores the saved weights and Adam's state; fit trains no epoch
    again, refit = lab_on_the_page(data)
    said = capsys.readouterr().out
    assert "Restored the lab model saved in" in said and "Epoch" not in said
    assert refit.history == saved["history"]  # what fit returns: the saved run's epochs
    np.testing.assert_allclose(codes(again, images), codes(vae, images), rtol=1e-5)
    assert int(again.optimizer.iterations.numpy()) == int(vae.optimizer.iterations.numpy()) == 2 * 4
    assert json.loads(record_path(folder / "vae_lab.keras").read_text()) == saved  # untouched


def test_a_model_the_registry_trained_is_restored_by_the_page(data, folder, capsys):
    """Notebook 03 run before 02 trains the lab model from its recipe; 02's fit then restores it."""
    first = trained.trained_model("lab", CONFIG, data, verbose=0).model
    capsys.readouterr()
    page, refit = lab_on_the_page(data)
    assert "Restored the lab model" in capsys.readouterr().out and len(refit.history["loss"]) == CONFIG.epochs
    images = data[1][0][:4]
    np.testing.assert_allclose(codes(page, images), codes(first, images), rtol=1e-5)
    np.testing.assert_allclose(page.predict(images, verbose=0), first.predict(images, verbose=0), rtol=1e-4)


def test_a_fit_that_is_not_the_recipe_trains_but_is_not_saved_as_the_lab_model(data, folder, capsys):
    lab_on_the_page(data, epochs=1)  # one epoch, not the run's two
    said = capsys.readouterr().out
    assert "not the recipe for 'lab': epochs 1 (the recipe's: 2)" in said and "4/4 - " in said
    assert not (folder / "vae_lab.keras").exists()
    lab_on_the_page(data, hidden=(64,))
    assert "parameters" in capsys.readouterr().out and not (folder / "vae_lab.keras").exists()


def test_an_interrupted_fit_on_the_page_resumes_at_its_next_epoch(data, folder, capsys):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    (x_train, _), (x_test, _) = data
    set_seed(CONFIG.seed)
    vae = VAE(build_encoder(seed=CONFIG.seed), build_decoder(), name="vae")
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=64)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(make_dataset(x_train, batch_size=50, shuffle=True, seed=CONFIG.seed), epochs=2, shuffle=False,
                verbose=0, validation_data=make_dataset(x_test, batch_size=50),
                callbacks=[*trained.keep("lab", CONFIG), Interrupt()])
    assert not (folder / "vae_lab.keras").exists()
    capsys.readouterr()
    _, fitted = lab_on_the_page(data)  # same kernel: its lock is still held by the interrupted fit
    said = capsys.readouterr().out
    assert "waiting" not in said and "Epoch 2/2" in said and "Epoch 1/2" not in said
    assert len(fitted.history["loss"]) == 2 and fitted.history == trained.history("lab", CONFIG)


def test_history_of_a_model_not_yet_trained_says_so(folder):
    with pytest.raises(FileNotFoundError, match="No model called 'lab' is saved"):
        trained.history("lab", CONFIG)


def test_the_lock_is_released_after_the_page_fit(data, folder):
    lab_on_the_page(data)
    lock = trained._LOCKS[str(folder / "vae_lab.keras")]
    assert not lock.is_locked and os.path.exists(f"{folder / 'vae_lab.keras'}.lock")


def test_the_training_view_draws_every_epoch_and_a_restored_run_once(data, folder, monkeypatch):
    """The live view of notebook 02's fit: one figure per epoch, updated in place; a rerun that restores
    the saved model draws its saved history once."""
    from lab_utils import training_view

    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    def display(figure, display_id=False):
        shown.append(("display", figure))
        return Handle()

    monkeypatch.setattr(training_view, "display", display)
    figures, draw = [], training_view.TrainingView.figure

    def figure(view, history):
        figures.append(draw(view, history))
        return figures[-1]

    monkeypatch.setattr(training_view.TrainingView, "figure", figure)
    (x_train, y_train), (x_test, y_test) = data

    def fit():
        set_seed(CONFIG.seed)
        vae = VAE(build_encoder(seed=CONFIG.seed), build_decoder(), name="vae")
        vae.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=64)
        view = training_view.TrainingView(x_test, y_test, codes=50)
        vae.fit(make_dataset(x_train, batch_size=50, shuffle=True, seed=CONFIG.seed), epochs=2, shuffle=False,
                verbose=0, validation_data=make_dataset(x_test, batch_size=50),
                callbacks=[*trained.keep("lab", CONFIG), view])
        return view

    view = fit()
    assert [how for how, _ in shown] == ["display", "update"] and len(view.seconds) == 2
    assert all(picture.data.startswith(b"\x89PNG") for _, picture in shown)  # stored as an ordinary image
    last = figures[-1]
    assert last._suptitle.get_text() == "after 2 epochs" and len(last.axes) == 4  # losses, KL, images, codes
    assert sorted(text.get_text() for text in last.axes[3].texts) == [str(digit) for digit in range(10)]
    shown.clear()
    fit()  # restored: no epoch runs, the saved run is drawn once
    assert [how for how, _ in shown] == ["display"] and figures[-1]._suptitle.get_text() == "after 2 epochs"


def test_watching_the_training_does_not_change_it(data, monkeypatch):
    """The view encodes test images after every epoch; through the Sampling layer that would move its
    random generator, and the same seed would train another model (the lab model's test loss moved)."""
    from lab_utils import training_view

    monkeypatch.setattr(training_view, "display", lambda picture, display_id=False: type(
        "Handle", (), {"update": lambda self, picture: None})())
    (x_train, _), (x_test, y_test) = data

    def weights(callbacks):
        set_seed(CONFIG.seed)
        vae = VAE(build_encoder(seed=CONFIG.seed), build_decoder(), name="vae")
        vae.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=64)
        vae.fit(make_dataset(x_train, batch_size=50, shuffle=True, seed=CONFIG.seed), epochs=2, shuffle=False,
                verbose=0, callbacks=callbacks)
        return vae.get_weights()

    plain, watched = weights([]), weights([training_view.TrainingView(x_test, y_test, codes=50)])
    assert all(np.array_equal(a, b) for a, b in zip(plain, watched))
