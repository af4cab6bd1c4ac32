"""lab_utils.pitfalls: each of the original lab's mistakes really does what notebook 02 says it does."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lab_utils.losses import kl_divergence
from lab_utils.models import VAE, build_decoder, build_encoder
from lab_utils.pitfalls import VAEWithoutTestStep, VAEWithoutTrackers, averaged_kl


def _compiled(model_class):
    model = model_class(build_encoder(hidden_units=(32,), seed=0), build_decoder(hidden_units=(32,)))
    model.compile(optimizer=keras.optimizers.Adam())
    return model


def test_without_trackers_keras_3_logs_zero_although_it_trains(random_images):
    model = _compiled(VAEWithoutTrackers)
    measured = VAE(model.encoder, model.decoder)
    measured.compile()
    before = measured.evaluate(random_images, verbose=0, return_dict=True)["loss"]
    logged = model.fit(random_images, epochs=3, batch_size=64, verbose=0).history["loss"]
    after = measured.evaluate(random_images, verbose=0, return_dict=True)["loss"]
    assert logged == [0.0, 0.0, 0.0]
    assert after < before - 10


def test_without_test_step_keras_3_refuses_to_validate(random_images):
    model = _compiled(VAEWithoutTestStep)
    history = model.fit(random_images, epochs=1, batch_size=64, verbose=0).history
    assert history["loss"][0] > 100  # with a tracker the training loss is real
    with pytest.raises(ValueError, match="No loss to compute"):
        model.fit(random_images, epochs=1, batch_size=64, validation_data=(random_images[:64],), verbose=0)


def test_averaged_kl_is_the_sum_divided_by_the_latent_dimension():
    rng = np.random.default_rng(0)
    z_mean, z_log_var = rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(averaged_kl(z_mean, z_log_var)),
        np.asarray(kl_divergence(z_mean, z_log_var)) / 4,
        rtol=1e-6,
    )
