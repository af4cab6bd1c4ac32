"""lab_utils.models and lab_utils.losses: sizes, the sampling trick, the loss, training logs, saving."""

from __future__ import annotations

import warnings
import zipfile

import keras
import numpy as np
import pytest

from lab_utils.losses import (
    continuous_bernoulli_log_normaliser,
    continuous_bernoulli_mean,
    kl_divergence,
    kl_per_dimension,
    negative_elbo,
    reconstruction_loss,
)
from lab_utils.models import (
    VAE,
    ConditionalVAE,
    Sampling,
    WarmupFreeBitsVAE,
    build_decoder,
    build_encoder,
    build_vae,
)


def test_lab_model_has_the_lab_parameter_counts():
    assert build_encoder(latent_dim=2, hidden_units=(512,)).count_params() == 403_972
    assert build_decoder(latent_dim=2, hidden_units=(512,)).count_params() == 403_728


def test_pseudocode_model_is_dense_128_then_64():
    encoder = build_encoder(latent_dim=2, hidden_units=(128, 64))
    decoder = build_decoder(latent_dim=2, hidden_units=(128, 64))
    assert [layer.units for layer in encoder.layers if layer.name.startswith("hidden")] == [128, 64]
    assert [layer.units for layer in decoder.layers if layer.name.startswith("hidden")] == [64, 128]
    # 784*128+128 + 128*64+64 + 2*(64*2+2)  and  2*64+64 + 64*128+128 + 128*784+784
    assert encoder.count_params() == 108_996
    assert decoder.count_params() == 109_648


def test_encoder_outputs_and_decoder_range(random_images):
    z_mean, z_log_var, z = build_encoder(latent_dim=3)(random_images[:4])
    assert z_mean.shape == z_log_var.shape == z.shape == (4, 3)
    pixels = np.asarray(build_decoder(latent_dim=3)(np.zeros((4, 3))))
    assert pixels.shape == (4, 784) and pixels.min() > 0 and pixels.max() < 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"hidden_units": ()}, "hidden_units=()"),
        ({"hidden_units": (512, -1)}, "hidden_units=\\(512, -1\\)"),
    ],
)
def test_bad_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_encoder(**kwargs)


def test_sampling_matches_the_reparameterisation_distribution():
    n = 200_000
    z_mean = np.full((n, 2), [1.5, -2.0], dtype="float32")
    z_log_var = np.full((n, 2), np.log([0.25, 4.0]), dtype="float32")
    z = np.asarray(Sampling(seed=7)([z_mean, z_log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.01)


def test_sampling_with_a_seed_repeats_and_draws_fresh_noise_each_call():
    z_mean, z_log_var = np.zeros((3, 2), "float32"), np.zeros((3, 2), "float32")
    first, second = Sampling(seed=1), Sampling(seed=1)
    a, b = np.asarray(first([z_mean, z_log_var])), np.asarray(second([z_mean, z_log_var]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(first([z_mean, z_log_var])))


def test_reconstruction_loss_is_bce_summed_over_pixels():
    rng = np.random.default_rng(0)
    x = (rng.random((5, 784)) > 0.5).astype("float32")
    p = rng.uniform(0.05, 0.95, (5, 784)).astype("float32")
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(np.asarray(reconstruction_loss(x, p)), expected, rtol=1e-5)


def test_kl_is_summed_over_latent_dimensions_not_averaged():
    z_mean = np.array([[1.0, 2.0, 0.0]], "float32")
    z_log_var = np.array([[0.0, np.log(2.0), np.log(0.5)]], "float32")
    variance = np.exp(z_log_var)
    expected = 0.5 * (variance + z_mean**2 - 1 - z_log_var).sum()
    np.testing.assert_allclose(np.asarray(kl_divergence(z_mean, z_log_var)), [expected], rtol=1e-6)
    assert np.asarray(kl_divergence(np.zeros((2, 4)), np.zeros((2, 4)))).tolist() == [0.0, 0.0]


def test_negative_elbo_averages_per_image_terms_over_the_batch():
    rng = np.random.default_rng(1)
    x = rng.random((4, 784)).astype("float32")
    p = rng.uniform(0.1, 0.9, (4, 784)).astype("float32")
    z_mean, z_log_var = rng.normal(size=(4, 2)).astype("float32"), np.zeros((4, 2), "float32")
    loss, rec, kl = (float(t) for t in negative_elbo(x, p, z_mean, z_log_var, beta=4.0))
    assert rec == pytest.approx(float(np.mean(reconstruction_loss(x, p))), rel=1e-6)
    assert kl == pytest.approx(float(np.mean(0.5 * (z_mean**2).sum(axis=1))), rel=1e-5)
    assert loss == pytest.approx(rec + 4.0 * kl, rel=1e-6)


def test_fit_logs_real_validation_losses_that_add_up(random_images):
    vae = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False)
    history = vae.fit(
        random_images, epochs=2, batch_size=64, validation_data=(random_images[:64],), verbose=0
    )
    logs = history.history
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        assert key in logs and f"val_{key}" in logs
    assert all(value > 100 for value in logs["val_loss"])  # 784 pixels of BCE: never 0.0000
    np.testing.assert_allclose(
        logs["val_loss"], np.add(logs["val_reconstruction_loss"], logs["val_kl_loss"]), rtol=1e-5
    )
    evaluated = vae.evaluate(random_images[:64], verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(logs["val_loss"][-1], rel=0.05)


def test_logged_loss_is_the_epoch_average_of_batch_losses(random_images):
    vae = build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False)
    batch_losses = [
        vae.test_on_batch(random_images[i : i + 64], return_dict=True)["loss"] for i in range(0, 256, 64)
    ]
    result = vae.evaluate(random_images, batch_size=64, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(np.mean(batch_losses), rel=0.03)  # sampling noise only


def test_trained_vae_round_trips_through_keras_file_in_safe_mode(trained_vae, saved_vae):
    vae, images, _ = trained_vae
    loaded = keras.models.load_model(saved_vae, safe_mode=True)
    assert isinstance(loaded, VAE) and loaded.beta == vae.beta
    # same weights, same outputs (up to the order TensorFlow's CPU kernels add in, without XLA)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), vae.predict(images, verbose=0), rtol=1e-6)
    for original, restored in zip(vae.encoder(images[:8])[:2], loaded.encoder(images[:8])[:2]):
        np.testing.assert_allclose(np.asarray(original), np.asarray(restored), rtol=1e-6)
    z = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded.decoder(z)), np.asarray(vae.decoder(z)), rtol=1e-6)
    # it keeps training where it stopped
    assert int(loaded.optimizer.iterations) == int(vae.optimizer.iterations) == 4
    loaded.fit(images, epochs=1, batch_size=30, verbose=0)
    assert int(loaded.optimizer.iterations) == 6


def test_import_lab_utils_is_enough_to_load_a_saved_vae(saved_vae):
    """A fresh Python that imports only lab_utils and keras opens the file (before: "Could not
    locate class 'VAE'", as the model classes were registered only by importing lab_utils.models)."""
    import subprocess
    import sys

    script = f"import lab_utils, keras; print(type(keras.saving.load_model({str(saved_vae)!r})).__name__)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "VAE"


def test_a_reloaded_vae_is_used_without_keras_warnings(trained_vae, saved_vae):
    """Keras 3.10 (Colab) and newer reload one-input models differently; the kit's calls suit both."""
    from lab_utils.latent import encode_means

    vae, random_images, _ = trained_vae
    loaded = keras.models.load_model(saved_vae, safe_mode=True)
    z = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = [np.asarray(loaded.decode(z)).reshape(4, 28, 28), loaded.decode_images(z)]
        z_mean = [np.asarray(loaded.encode(random_images[:4])[0])]
        z_mean.append(encode_means(loaded, random_images[:4])[0])
    for images in decoded:
        np.testing.assert_allclose(images, np.asarray(vae.decoder(z)).reshape(4, 28, 28), atol=1e-6)
    for means in z_mean:
        np.testing.assert_allclose(means, np.asarray(vae.encoder(random_images[:4])[0]), atol=1e-5)


def test_decode_images_decodes_like_a_plain_keras_call_and_explains_bad_codes():
    vae = build_vae(latent_dim=3, hidden_units=(8,), jit_compile=False)
    z = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(vae.decode_images(z), np.asarray(vae.decoder(z)).reshape(5, 28, 28), atol=1e-6)
    np.testing.assert_allclose(
        vae.generate(5, seed=0), vae.decode_images(z), atol=1e-6
    )  # prior codes, seed 0
    assert vae.latent_dim == 3 and not vae.conditional
    with pytest.raises(ValueError, match="shape \\(1, 2\\)"):
        vae.decode_images(np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        vae.decode_images(np.array([np.nan, 0.0, 0.0]))


def test_a_conditional_vae_decodes_the_digit_it_is_asked_for():
    cvae = build_vae(latent_dim=2, hidden_units=(8,), architecture="conditional", jit_compile=False)
    z = np.zeros((2, 2), "float32")
    assert cvae.conditional
    expected = np.asarray(cvae.decode(z, np.array([3, 7]))).reshape(2, 28, 28)
    np.testing.assert_allclose(cvae.decode_images(z, [3, 7]), expected, atol=1e-6)
    with pytest.raises(ValueError, match="pass labels"):
        cvae.decode_images(z)


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError, match="beta=-1"):
        VAE(build_encoder(), build_decoder(), beta=-1)


def test_conv_vae_trains_and_round_trips(random_images, tmp_path):
    vae = build_vae(latent_dim=2, architecture="conv", seed=0)
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in vae.encoder.layers)
    # XLA's CPU convolutions are the slower: a conv VAE trains (and is scored) without it, a dense one with it
    assert vae.jit_compile is False and build_vae(hidden_units=(8,)).jit_compile is True
    history = vae.fit(random_images, epochs=1, batch_size=64, verbose=0).history
    assert 0 < history["loss"][0] < 1000
    assert vae.predict(random_images[:3], verbose=0).shape == (3, 784)
    vae.save(tmp_path / "conv.keras")
    loaded = keras.models.load_model(tmp_path / "conv.keras", safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(random_images[:3], verbose=0), vae.predict(random_images[:3], verbose=0)
    )
    assert loaded.jit_compile is False


def test_conditional_vae_decodes_the_label_it_is_given(random_images, tmp_path):
    labels = np.arange(len(random_images)) % 10
    vae = build_vae(latent_dim=2, hidden_units=(32,), architecture="conditional", seed=0, jit_compile=False)
    assert isinstance(vae, ConditionalVAE)
    vae.fit(random_images, labels, epochs=1, batch_size=64, verbose=0)
    z = np.zeros((2, 2), "float32")
    as_three = np.asarray(vae.decode(z, np.array([3, 3])))
    as_seven = np.asarray(vae.decode(z, np.array([7, 7])))
    assert not np.allclose(as_three, as_seven)  # same code, different digit asked for
    reconstructed = vae.predict((random_images[:4], labels[:4]), verbose=0)
    assert reconstructed.shape == (4, 784)
    vae.save(tmp_path / "cvae.keras")
    loaded = keras.models.load_model(tmp_path / "cvae.keras", safe_mode=True)
    assert isinstance(loaded, ConditionalVAE)
    np.testing.assert_allclose(np.asarray(loaded.decode(z, np.array([3, 3]))), as_three, atol=1e-6)
    with pytest.raises(ValueError, match="needs labels"):
        vae.encode(random_images[:2])


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="architecture='mlp'"):
        build_vae(architecture="mlp", jit_compile=False)


def _integrate(function, points: int = 200) -> float:
    """∫₀¹ function(x) dx by Gauss–Legendre quadrature."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return float(np.sum(weights / 2 * function((nodes + 1) / 2)))


@pytest.mark.parametrize("lam", [1e-3, 0.1, 0.3, 0.49, 0.4999, 0.5, 0.5001, 0.504, 0.7, 0.999])
def test_continuous_bernoulli_normaliser_and_mean_match_numerical_integration(lam):
    density = lambda x: lam**x * (1 - lam) ** (1 - x)  # noqa: E731  (unnormalised)
    mass = _integrate(density)
    got = float(continuous_bernoulli_log_normaliser(np.float32(lam)))
    assert got == pytest.approx(-np.log(mass), abs=2e-6)
    mean = _integrate(lambda x: x * density(x)) / mass
    assert float(continuous_bernoulli_mean(np.float32(lam))) == pytest.approx(mean, abs=2e-5)


def test_continuous_bernoulli_loss_is_a_normalised_density_with_finite_gradients_at_one_half():
    import tensorflow as tf

    lam = tf.constant([[0.2, 0.5, 0.5 + 1e-4, 0.9]])
    with tf.GradientTape() as tape:
        tape.watch(lam)
        loss = reconstruction_loss(tf.constant([[0.3, 0.5, 0.7, 1.0]]), lam, "continuous_bernoulli")
    assert np.isfinite(tape.gradient(loss, lam).numpy()).all()
    # −log p of each pixel integrates to one: ∫ exp(−loss) dx = 1 for a one-pixel image.
    for value in (0.2, 0.5, 0.9):
        pixel = lambda x, value=value: np.exp(  # noqa: E731
            -np.asarray(
                reconstruction_loss(
                    x[:, None].astype("float32"),
                    np.full((len(x), 1), value, "float32"),
                    "continuous_bernoulli",
                )
            )
        )
        assert _integrate(pixel) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="likelihood='gaussian'"):
        reconstruction_loss(tf.constant([[0.5]]), lam[:, :1], "gaussian")


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # saved untrained
def test_the_likelihood_is_part_of_the_saved_model(tmp_path):
    vae = build_vae(latent_dim=2, hidden_units=(8,), likelihood="continuous_bernoulli", jit_compile=False)
    vae.save(tmp_path / "cb.keras")
    assert keras.saving.load_model(tmp_path / "cb.keras").likelihood == "continuous_bernoulli"
    with pytest.raises(ValueError, match="likelihood='gauss'"):
        build_vae(hidden_units=(8,), likelihood="gauss", jit_compile=False)


def test_epoch_figures_weigh_a_smaller_last_batch_by_its_size(random_images):
    vae = build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False)
    images = random_images[:3]
    z_mean, z_log_var, _ = vae.encoder(images)
    per_image = np.asarray(kl_divergence(z_mean, z_log_var))  # the KL term needs no sampling
    result = vae.evaluate(images, batch_size=2, verbose=0, return_dict=True)  # batches of 2 and 1
    assert result["kl_loss"] == pytest.approx(per_image.mean(), rel=1e-5)


def test_the_training_loss_takes_a_saturated_pixel_at_its_full_cost():
    """Keras (TensorFlow) scores the decoder's sigmoid output from its logits, not clipped at 16.1 nats."""
    decoder = build_decoder(latent_dim=2, hidden_units=(4,))
    last = decoder.get_layer("pixel_probabilities")
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.full_like(bias, 30.0)])  # every pixel's logit is 30
    probabilities = decoder(np.zeros((1, 2), "float32"))
    loss = float(reconstruction_loss(np.zeros((1, 784), "float32"), probabilities)[0])
    assert loss == pytest.approx(784 * 30.0, rel=1e-4)  # clipping at 1 − 1e-7 would give 784 × 16.1


def test_free_bits_charge_each_dimension_at_least_lambda_and_report_the_true_kl():
    vae = build_vae(latent_dim=2, hidden_units=(8,), jit_compile=False, free_bits=0.5)
    z_mean = np.array([[0.1, 2.0]] * 4, "float32")  # KL of dimension 0: 0.005 nats, of dimension 1: 2 nats
    z_log_var = np.zeros((4, 2), "float32")
    np.testing.assert_allclose(kl_per_dimension(z_mean, z_log_var), [0.005, 2.0], rtol=1e-5)
    images = np.full((4, 784), 0.5, "float32")
    vae.encode = lambda images, labels=None, training=False: (z_mean, z_log_var, z_mean)
    loss, reconstruction, kl = (float(v) for v in vae.compute_losses(images, None, training=True))
    assert kl == pytest.approx(2.005)  # what is logged is the true KL
    assert loss == pytest.approx(reconstruction + 0.5 + 2.0)  # dimension 0 is charged λ, not 0.005
    validation, _, _ = vae.compute_losses(images, None, training=False)
    assert float(validation) == pytest.approx(reconstruction + 2.005)  # validation scores the plain ELBO


def test_kl_warm_up_weighs_the_training_kl_from_zero_to_beta_and_validation_stays_the_elbo(random_images):
    vae = build_vae(
        latent_dim=2, hidden_units=(8,), jit_compile=False, steps_per_execution=1, kl_warmup_steps=4
    )
    assert float(vae.kl_weight()) == pytest.approx(0.25)  # the first step already counts
    history = vae.fit(random_images[:64], epochs=1, batch_size=32, verbose=0).history
    assert float(vae.kl_weight()) == pytest.approx(0.75)  # two steps taken
    assert history["loss"][0] < history["reconstruction_loss"][0] + history["kl_loss"][0] - 1e-3
    validation = vae.evaluate(random_images[:64], batch_size=32, verbose=0, return_dict=True)
    assert validation["loss"] == pytest.approx(
        validation["reconstruction_loss"] + validation["kl_loss"], rel=1e-5
    )
    vae.fit(random_images[:128], epochs=1, batch_size=32, verbose=0)
    assert float(vae.kl_weight()) == 1.0  # reached β and stays there


def test_the_remedies_are_saved_with_the_model_and_bad_values_are_named(tmp_path):
    vae = build_vae(latent_dim=2, hidden_units=(8,), jit_compile=False, kl_warmup_steps=10, free_bits=0.25)
    vae.save(tmp_path / "remedies.keras")
    loaded = keras.saving.load_model(tmp_path / "remedies.keras")
    assert (loaded.kl_warmup_steps, loaded.free_bits) == (10, 0.25)
    assert isinstance(loaded, WarmupFreeBitsVAE)
    assert type(build_vae(hidden_units=(8,), jit_compile=False)) is VAE
    # a model saved when the class was called RemediedVAE still loads, as this class
    with zipfile.ZipFile(tmp_path / "remedies.keras") as saved:
        files = {name: saved.read(name) for name in saved.namelist()}
    assert b'"lab_utils>WarmupFreeBitsVAE"' in files["config.json"]
    config = files["config.json"]
    files["config.json"] = config.replace(b'"lab_utils>WarmupFreeBitsVAE"', b'"lab_utils>RemediedVAE"')
    with zipfile.ZipFile(tmp_path / "old_name.keras", "w") as old:
        for name, data in files.items():
            old.writestr(name, data)
    older = keras.saving.load_model(tmp_path / "old_name.keras")
    assert isinstance(older, WarmupFreeBitsVAE) and older.free_bits == 0.25
    with pytest.raises(ValueError, match="kl_warmup_steps=-1"):
        WarmupFreeBitsVAE(build_encoder(), build_decoder(), kl_warmup_steps=-1)
    with pytest.raises(ValueError, match="free_bits=-0.5"):
        WarmupFreeBitsVAE(build_encoder(), build_decoder(), free_bits=-0.5)
    with pytest.raises(ValueError, match="not the conditional one"):
        build_vae(architecture="conditional", hidden_units=(8,), jit_compile=False, free_bits=1.0)
