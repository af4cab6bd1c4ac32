"""lab_utils.metrics: ELBO terms, the IWAE bound, per-digit error, Fréchet and nearest-image distances."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.latent import encode_means
from lab_utils.losses import reconstruction_loss
from lab_utils.metrics import (
    cross_entropy_floor,
    dimension_rows,
    evaluate_elbo,
    frechet_distance,
    importance_log_likelihood,
    likelihood_figures,
    nearest_training_images,
    no_latent_baseline,
    posterior_elbo,
    reconstruction_error_per_digit,
    refine_posterior,
)
from lab_utils.models import build_vae
from lab_utils.training import set_seed


@pytest.fixture(scope="module")
def small_vae():
    """An untrained VAE, the same every run (`build_vae`'s seed covers only the sampling noise)."""
    set_seed(0)
    return build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False)


def test_iwae_estimate_matches_a_direct_numpy_computation(small_vae, random_images):
    x, samples = random_images[:3], 50
    got = importance_log_likelihood(small_vae, x, samples=samples, images_per_batch=3, seed=4)
    epsilon = np.random.default_rng(4).standard_normal((samples, 3, 2), dtype=np.float32)
    z_mean, z_log_var, _ = (np.asarray(t) for t in small_vae.encoder(x))
    z = z_mean + np.exp(0.5 * z_log_var) * epsilon
    p = np.clip(np.asarray(small_vae.decoder(z.reshape(-1, 2))).reshape(samples, 3, 784), 1e-7, 1 - 1e-7)
    log_2pi = np.log(2 * np.pi)
    log_w = (
        (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
        - 0.5 * (z**2 + log_2pi).sum(-1)
        + 0.5 * (epsilon**2 + log_2pi + z_log_var).sum(-1)
    )
    peak = log_w.max(axis=0)
    expected = peak + np.log(np.exp(log_w - peak).sum(axis=0)) - np.log(samples)
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_more_importance_samples_tighten_the_bound(small_vae, random_images):
    # All 256 images: over 25 weight seeds `many - one` was 0.42-1.69 nats with them, 0.32-2.14 with 40.
    x = random_images
    one = importance_log_likelihood(small_vae, x, samples=1, seed=0).mean()
    many = importance_log_likelihood(small_vae, x, samples=200, seed=0).mean()
    elbo = -evaluate_elbo(small_vae, x)["negative_elbo"]
    assert many >= one and one == pytest.approx(elbo, abs=3.0)


def test_iwae_handles_a_last_partial_batch(small_vae, random_images):
    five = importance_log_likelihood(small_vae, random_images[:5], samples=20, images_per_batch=2, seed=1)
    two = importance_log_likelihood(small_vae, random_images[:2], samples=20, images_per_batch=2, seed=1)
    assert five.shape == (5,) and np.isfinite(five).all()
    np.testing.assert_allclose(five[:2], two, rtol=1e-6)
    with pytest.raises(ValueError, match="samples=0"):
        importance_log_likelihood(small_vae, random_images[:2], samples=0)


def test_elbo_terms_add_up_whatever_the_beta(random_images):
    for beta in (1.0, 4.0):
        vae = build_vae(latent_dim=2, hidden_units=(16,), seed=0, beta=beta, jit_compile=False)
        figures = evaluate_elbo(vae, random_images)
        assert figures["negative_elbo"] == pytest.approx(figures["reconstruction_loss"] + figures["kl_loss"])


def test_the_elbo_figure_is_the_same_in_every_run_and_agrees_with_keras_evaluate(trained_vae):
    """Keras' evaluate draws the codes' noise from the model's generator, whose state depends on the
    calls before it: the same model's figure moved 0.2 nats between notebooks."""
    vae, images, _ = trained_vae
    first = evaluate_elbo(vae, images, batch_size=7)
    vae.evaluate(images, verbose=0)  # advances the model's own generator
    assert evaluate_elbo(vae, images, batch_size=7) == first
    assert evaluate_elbo(vae, images, seed=1) != first
    keras_figures = vae.evaluate(images, batch_size=len(images), verbose=0, return_dict=True)
    assert first["kl_loss"] == pytest.approx(keras_figures["kl_loss"], rel=1e-4)  # the KL term is exact
    assert first["reconstruction_loss"] == pytest.approx(keras_figures["reconstruction_loss"], rel=0.05)


def test_reconstruction_error_per_digit_averages_each_class(small_vae, random_images):
    labels = np.arange(len(random_images)) % 3
    errors = reconstruction_error_per_digit(small_vae, random_images, labels)
    assert sorted(errors) == [0, 1, 2]
    reconstructions = small_vae.predict(random_images, verbose=0)
    p = np.clip(reconstructions, 1e-7, 1 - 1e-7)
    per_image = -(random_images * np.log(p) + (1 - random_images) * np.log(1 - p)).sum(axis=1)
    assert errors[1] == pytest.approx(per_image[labels == 1].mean(), rel=1e-4)


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5000, 3))
    a -= a.mean(axis=0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + [1.0, 2.0, 0.0]) == pytest.approx(5.0, rel=1e-6)
    # b = 2a: Σ_b = 4Σ_a, so d² = tr(Σ_a + 4Σ_a − 2·2Σ_a) = tr(Σ_a)
    assert frechet_distance(a, 2 * a) == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-6)
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(a, a[:, :2])


def test_nearest_training_image_finds_an_exact_copy(random_images):
    samples = random_images[[7, 100]].copy()
    samples[1, :5] = 1 - samples[1, :5]  # five pixels flipped
    indices, distances = nearest_training_images(samples, random_images, batch_size=1)
    assert indices.tolist() == [7, 100]
    np.testing.assert_allclose(distances, [0.0, np.sqrt(5.0)], atol=1e-3)


def test_cross_entropy_floor_is_the_loss_of_a_perfect_decoder():
    x = np.zeros((2, 784), "float32")
    x[0, :4] = [1.0, 0.5, 0.25, 0.0]
    expected = np.log(2) - (0.25 * np.log(0.25) + 0.75 * np.log(0.75))  # black, white and 0 cost nothing
    np.testing.assert_allclose(cross_entropy_floor(x), [expected, 0.0], rtol=1e-12)
    grey = np.random.default_rng(0).uniform(0.01, 0.99, (5, 784)).astype("float32")
    direct = np.asarray(reconstruction_loss(grey, grey))  # the kit's own loss with p = x
    np.testing.assert_allclose(cross_entropy_floor(grey), direct, rtol=1e-4)


def test_no_latent_baseline_is_the_loss_of_each_pixels_training_mean(random_images):
    train, test = random_images[:40], random_images[40:50]
    mean = np.clip(train.mean(axis=0), 1e-7, 1 - 1e-7)
    direct = np.asarray(reconstruction_loss(test, np.tile(mean, (len(test), 1))))
    np.testing.assert_allclose(no_latent_baseline(train, test), direct, rtol=1e-4)
    assert np.all(no_latent_baseline(train, test) >= cross_entropy_floor(test))


def test_likelihood_figures_put_the_elbo_and_the_iwae_estimate_on_the_same_images(small_vae, random_images):
    # 120 images: over 25 weight seeds the ELBO-IWAE gap was 0.36-1.70 nats with them, 0.11-1.53 with 30.
    images = random_images[:120]
    figures = likelihood_figures(small_vae, images, samples=50, seed=3)
    iwae = importance_log_likelihood(small_vae, images, samples=50, seed=3)
    assert figures["images"] == 120 and figures["samples"] == 50
    assert figures["negative_log_px"] == pytest.approx(-iwae.mean(), rel=1e-6)
    assert figures["standard_error"] == pytest.approx(iwae.std(ddof=1) / np.sqrt(120), rel=1e-5)
    elbo = evaluate_elbo(small_vae, images)["negative_elbo"]
    assert figures["negative_elbo"] == pytest.approx(elbo, abs=2.0)  # one z sample each: sampling noise only
    assert figures["negative_log_px"] < figures["negative_elbo"]


def test_iwae_scores_a_continuous_bernoulli_model_with_its_density(random_images):
    grey = np.clip(random_images[:8] * 0.8 + 0.1, 0, 1)
    vae = build_vae(
        latent_dim=2, hidden_units=(16,), seed=0, likelihood="continuous_bernoulli", jit_compile=False
    )
    log_px = importance_log_likelihood(vae, grey, samples=20, seed=0)
    # log C(λ) >= log 2 for every pixel: the density scores an image 784 log 2 or more above the cross-entropy
    bernoulli = build_vae(latent_dim=2, hidden_units=(16,), seed=0, jit_compile=False)
    bernoulli.set_weights(vae.get_weights())
    assert (
        log_px - importance_log_likelihood(bernoulli, grey, samples=20, seed=0) >= 784 * np.log(2) - 1e-3
    ).all()


def test_posterior_elbo_of_the_encoders_q_is_the_models_elbo(trained_vae):
    vae, images, _ = trained_vae
    z_mean, z_log_var = encode_means(vae, images)
    per_image = posterior_elbo(vae, images, z_mean, z_log_var, samples=400, seed=0)
    assert per_image.shape == (len(images),)
    assert -per_image.mean() == pytest.approx(evaluate_elbo(vae, images)["negative_elbo"], abs=0.5)


def test_refining_each_images_q_raises_its_elbo_and_the_gain_is_the_amortisation_gap(trained_vae):
    vae, images, _ = trained_vae
    z_mean, z_log_var = encode_means(vae, images[:20])
    refined = refine_posterior(vae, images[:20], steps=100, samples=8, learning_rate=0.05, seed=0)
    before = posterior_elbo(vae, images[:20], z_mean, z_log_var, samples=300, seed=1)
    after = posterior_elbo(vae, images[:20], *refined, samples=300, seed=1)
    # An encoder trained two epochs leaves a gap: 0.38-1.22 nats in 13 runs with other weights (0.61 for
    # this one) while a 300-sample ELBO moves by at most 0.04 nats between sample seeds.
    assert after.mean() > before.mean() + 0.2
    assert np.mean(after > before) >= 0.9


def test_iwae_with_the_encoders_q_as_proposal_is_the_default_and_a_refined_q_is_used_as_given(trained_vae):
    vae, images, _ = trained_vae
    encoder_q = encode_means(vae, images[:7])
    default = importance_log_likelihood(vae, images[:7], samples=30, images_per_batch=4, seed=2)
    given = importance_log_likelihood(
        vae, images[:7], samples=30, images_per_batch=4, seed=2, proposal=encoder_q
    )
    np.testing.assert_allclose(given, default, rtol=1e-5)
    moved = (encoder_q[0] + 10.0, encoder_q[1])  # codes ten prior sds out: every image scores worse
    worse = importance_log_likelihood(vae, images[:7], samples=30, images_per_batch=4, seed=2, proposal=moved)
    assert np.all(worse < default)
    with pytest.raises(ValueError, match="proposal must be"):
        importance_log_likelihood(vae, images[:7], samples=30, proposal=(encoder_q[0][:3], encoder_q[1][:3]))


def test_dimension_rows_hold_the_elbo_terms_and_each_dimensions_use(trained_vae):
    vae, images, _ = trained_vae
    rows = dimension_rows({"small": vae}, images)
    assert rows["small"]["negative_elbo"] == evaluate_elbo(vae, images)["negative_elbo"]
    assert rows["small"]["kl"].shape == rows["small"]["active"].shape == (vae.latent_dim,)
