"""lab_utils.training: seeds, train_vae over tf.data, and resuming after an interruption."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_or_load, train_vae, training_seconds


def _run(seed: int, images) -> dict:
    set_seed(seed)
    # The kit's own path, XLA-compiled: bit-for-bit repeatable. Without XLA, TensorFlow's CPU
    # kernels may add up a batch's loss in another order from run to run (seen in CI: 1 ulp).
    vae = build_vae(latent_dim=2, hidden_units=(32,))
    return train_vae(vae, images, images[:64], epochs=2, batch_size=64, seed=seed, verbose=0)


def test_same_seed_gives_same_losses_and_another_seed_does_not(random_images):
    first, second, other = _run(5, random_images), _run(5, random_images), _run(6, random_images)
    assert first == second
    assert first["loss"] != other["loss"]


def test_set_seed_rejects_bad_values():
    with pytest.raises(ValueError, match="seed=-3"):
        set_seed(-3)


def test_train_vae_returns_history_with_validation_terms(random_images):
    vae = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False)
    history = train_vae(vae, random_images, random_images[:64], epochs=3, batch_size=64, verbose=0)
    assert set(history) == {
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "val_loss",
        "val_reconstruction_loss",
        "val_kl_loss",
    }
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((10, 28), "float32"), "shape \\(10, 28\\)"),
        (np.full((10, 784), 255.0, "float32"), "scale them to \\[0, 1\\]"),
        (np.zeros((0, 784), "float32"), "empty"),
    ],
)
def test_bad_images_are_explained(images, message):
    with pytest.raises(ValueError, match=message):
        train_vae(build_vae(hidden_units=(8,), jit_compile=False), images, epochs=1, verbose=0)


def test_bad_epochs_and_batch_size_are_named(random_images):
    vae = build_vae(hidden_units=(8,), jit_compile=False)
    with pytest.raises(ValueError, match="epochs=0"):
        train_vae(vae, random_images, epochs=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        train_vae(vae, random_images, batch_size=0)


class Interrupt(keras.callbacks.Callback):
    """Stops training the way a kernel interrupt does, at the start of epoch `at`."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ran = []

    def on_epoch_end(self, epoch, logs=None):
        self.ran.append(epoch)


def test_interrupted_training_resumes_without_losing_finished_epochs(random_images, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    vae = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False)
    with pytest.raises(KeyboardInterrupt):
        train_vae(
            vae,
            random_images,
            random_images[:64],
            epochs=5,
            batch_size=64,
            checkpoint_dir=checkpoints,
            callbacks=[Interrupt(at=3)],
            verbose=0,
        )
    weights_after_three = [w.copy() for w in vae.get_weights()]
    logged = (checkpoints / "history.csv").read_text().splitlines()
    assert len(logged) == 1 + 3  # header and epochs 0, 1, 2

    # A new kernel: fresh model, same checkpoint folder.
    resumed = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False)
    counter = CountEpochs()
    history = train_vae(
        resumed,
        random_images,
        random_images[:64],
        epochs=5,
        batch_size=64,
        checkpoint_dir=checkpoints,
        callbacks=[counter],
        verbose=0,
    )
    assert counter.ran == [3, 4]  # only the unfinished epochs ran
    # the training time counts the interrupted run's epochs too (notebook 05 once showed a resumed
    # model's last epoch, 8 s, as its training time beside 21-36 s for the same model trained in one go)
    timed = [line.split(",")[0] for line in (checkpoints / "epoch_seconds.csv").read_text().splitlines()]
    assert timed == ["0", "1", "2", "3", "4"] and training_seconds(checkpoints) > 0
    assert len(history["val_loss"]) == len(history["loss"]) == 5  # but the history covers all five
    assert history["loss"][4] < history["loss"][0]
    # the resumed run started from the interrupted run's weights, not from scratch
    fresh_loss = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False).evaluate(
        random_images, verbose=0, return_dict=True
    )["loss"]
    assert history["loss"][3] < fresh_loss
    assert not all(np.array_equal(a, b) for a, b in zip(weights_after_three, resumed.get_weights()))


def _interrupted_after(epochs_done: int, images, checkpoints) -> None:
    """A run of 3 epochs stopped after `epochs_done` of them, each one backed up."""
    with pytest.raises(KeyboardInterrupt):
        train_vae(
            build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False),
            images,
            epochs=3,
            batch_size=64,
            checkpoint_dir=checkpoints,
            callbacks=[Interrupt(at=epochs_done)],
            verbose=0,
        )


def _half(path) -> None:
    """What a kill -9 in the middle of writing a file leaves: its first half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _run_again(images, checkpoints) -> tuple[dict, list[int]]:
    counter = CountEpochs()
    history = train_vae(
        build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False),
        images,
        epochs=3,
        batch_size=64,
        checkpoint_dir=checkpoints,
        callbacks=[counter],
        verbose=0,
    )
    return history, counter.ran


@pytest.mark.parametrize("damaged", ["latest.weights.h5", "training_metadata.json"])
def test_a_kill_during_the_first_backup_is_moved_aside_and_training_starts_over(
    random_images, tmp_path, capsys, damaged
):
    checkpoints = tmp_path / "checkpoints"
    _interrupted_after(1, random_images, checkpoints)
    backup = checkpoints / "backup"
    assert not (backup / f"{damaged}.bkp").exists()  # the first backup: no earlier copy to fall back on
    _half(backup / damaged)
    capsys.readouterr()
    history, ran = _run_again(random_images, checkpoints)
    assert ran == [0, 1, 2] and len(history["loss"]) == 3  # from the first epoch, with a whole history
    kept = checkpoints / "backup.damaged" / damaged
    assert kept.is_file() and kept.stat().st_size > 0  # moved aside, never deleted
    said = capsys.readouterr().out
    assert f"{backup} could not be read" in said and "backup.damaged" in said and "first epoch" in said


def test_a_kill_while_the_epoch_count_is_written_resumes_from_the_backup_before(
    random_images, tmp_path, capsys
):
    checkpoints = tmp_path / "checkpoints"
    _interrupted_after(2, random_images, checkpoints)
    backup = checkpoints / "backup"
    assert (backup / "training_metadata.json.bkp").is_file()  # epoch 1's backup, kept by double_checkpoint
    _half(backup / "training_metadata.json")
    capsys.readouterr()
    history, ran = _run_again(random_images, checkpoints)
    assert ran == [1, 2] and len(history["loss"]) == 3  # epoch 1 again, from its own backup
    assert (checkpoints / "training_metadata.json.damaged").is_file()
    assert "resuming from the backup before it" in capsys.readouterr().out


def test_a_finished_run_leaves_its_log_and_a_new_run_starts_fresh(random_images, tmp_path):
    vae = build_vae(hidden_units=(16,), seed=0, jit_compile=False)
    train_vae(vae, random_images, epochs=2, batch_size=128, checkpoint_dir=tmp_path, verbose=0)
    assert not (tmp_path / "backup" / "training_metadata.json").exists()
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 3
    history = train_vae(vae, random_images, epochs=1, batch_size=128, checkpoint_dir=tmp_path, verbose=0)
    assert len(history["loss"]) == 1


def test_train_or_load_trains_once_then_loads_the_saved_model(random_images, tmp_path, capsys):
    path = tmp_path / "models" / "vae.keras"

    def build():
        return build_vae(latent_dim=2, hidden_units=(16,), jit_compile=False)

    model, history, seconds = train_or_load(
        build, path, random_images, random_images[:64], epochs=2, seed=1, verbose=0
    )
    assert path.is_file() and len(history["val_loss"]) == 2
    assert not list(path.parent.glob(".*partial*"))
    loaded = train_or_load(build, path, random_images, epochs=2, seed=1, verbose=0)
    assert "Loaded the trained model" in capsys.readouterr().out
    assert loaded.history == history and loaded.seconds == seconds  # the record of the run that trained it
    np.testing.assert_allclose(
        loaded.model.predict(random_images, verbose=0), model.predict(random_images, verbose=0), rtol=1e-6
    )

    other = train_or_load(build, path, random_images, epochs=1, seed=1, verbose=0).history
    assert "other settings" in capsys.readouterr().out and len(other["loss"]) == 1
    train_or_load(build, path, random_images, epochs=1, seed=1, retrain=True, verbose=0)
    assert "Saved the trained model" in capsys.readouterr().out


def test_train_or_load_wants_a_keras_path(random_images, tmp_path):
    with pytest.raises(ValueError, match="must end in .keras"):
        train_or_load(build_vae, tmp_path / "vae.h5", random_images)


def _losses(images, **compile_options) -> dict:
    set_seed(3)
    vae = build_vae(latent_dim=2, hidden_units=(64,), **compile_options)
    history = train_vae(vae, images, images[:128], epochs=3, batch_size=32, seed=3, verbose=0)
    return history


def test_several_steps_per_call_compute_the_same_losses(random_images):
    plain = _losses(random_images, jit_compile=False, steps_per_execution=1)
    many_steps = _losses(random_images, jit_compile=False, steps_per_execution=64)
    for key, values in plain.items():  # same numbers, up to float rounding in the trackers
        np.testing.assert_allclose(many_steps[key], values, rtol=1e-6, err_msg=key)


def test_training_takes_one_adam_step_per_batch(random_images):
    vae = build_vae(latent_dim=2, hidden_units=(8,), jit_compile=False)
    train_vae(vae, random_images, epochs=3, batch_size=20, seed=3, verbose=0)
    assert int(vae.optimizer.iterations) == 3 * 13  # 256 images: 12 batches of 20 and one of 16


def _noiseless_vae(jit_compile: bool):
    """A VAE whose posterior variance is ~1e-13, so the sampling noise cannot change any figure."""
    vae = build_vae(latent_dim=2, hidden_units=(64,), seed=0, jit_compile=jit_compile)
    head = vae.encoder.get_layer("z_log_var")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.full(2, -30.0, "float32")])
    return vae


def test_xla_steps_compute_the_same_loss_and_update(random_images):
    # XLA draws the sampling layer's Gaussian noise from another random stream, so the
    # figures are compared with the noise switched off; then only float rounding differs.
    eager, compiled = _noiseless_vae(jit_compile=False), _noiseless_vae(jit_compile=True)
    compiled.set_weights(eager.get_weights())
    batch = random_images[:64]
    for model in (eager, compiled):
        model.train_on_batch(batch)
    np.testing.assert_allclose(
        compiled.test_on_batch(batch, return_dict=True)["loss"],
        eager.test_on_batch(batch, return_dict=True)["loss"],
        rtol=1e-5,
    )
    # Adam's first step is lr * g / (|g| + 1e-7): for a gradient element near 1e-7 float
    # rounding moves the step by up to ~1e-6, so weights are compared to 1 % of lr = 1e-3.
    for after_xla, after_eager in zip(compiled.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(after_xla, after_eager, rtol=1e-4, atol=1e-5)


def test_train_vae_feeds_labels_to_a_conditional_vae(random_images):
    labels = np.arange(len(random_images)) % 10
    vae = build_vae(latent_dim=2, hidden_units=(16,), architecture="conditional", seed=0, jit_compile=False)
    history = train_vae(
        vae,
        random_images,
        random_images[:64],
        epochs=1,
        batch_size=64,
        y_train=labels,
        y_val=labels[:64],
        verbose=0,
    )
    assert history["val_loss"][0] == pytest.approx(
        history["val_reconstruction_loss"][0] + history["val_kl_loss"][0]
    )
    with pytest.raises(ValueError, match="256 images but 3 labels"):
        train_vae(vae, random_images, epochs=1, y_train=labels[:3], verbose=0)
