"""lab_utils.evaluation: the loss figures the notebooks report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lab_utils.evaluation import (
    build_classifier,
    classifier_features,
    compare_sets,
    comparison_table,
    evaluate_elbo,
    final_losses,
    frechet_distance,
    importance_log_likelihood,
    judge_samples,
    loss_table,
    nearest_training_images,
    reconstruction_error_per_digit,
    train_or_load_classifier,
)
from lab_utils.models import build_vae


def test_final_losses_and_table_report_the_last_epoch():
    history = {"loss": [170.0, 160.25], "reconstruction_loss": [165.0, 154.5], "kl_loss": [5.0, 5.75]}
    history |= {f"val_{key}": [value + 1 for value in values] for key, values in history.items()}
    assert final_losses(history)["val_kl_loss"] == 6.75
    table = loss_table(history).splitlines()
    assert table[2] == "| negative ELBO (total) | 160.25 | 161.25 |"
    assert table[4] == "| KL(q(z\\|x) ‖ p(z)) | 5.75 | 6.75 |"


def test_table_without_validation_shows_a_dash():
    assert loss_table({"loss": [1.0], "reconstruction_loss": [0.5], "kl_loss": [0.5]}).endswith("0.50 | — |")


def test_final_losses_rejects_non_history():
    with pytest.raises(ValueError, match="'loss' entry"):
        final_losses({"accuracy": [1.0]})


@pytest.fixture(scope="module")
def small_vae():
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
    x = random_images[:40]
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
        vae = build_vae(latent_dim=2, hidden_units=(16,), seed=0, beta=beta)
        figures = evaluate_elbo(vae, random_images)
        assert figures["negative_elbo"] == pytest.approx(figures["reconstruction_loss"] + figures["kl_loss"])


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


def test_classifier_judges_samples_and_exposes_features(random_images):
    classifier = build_classifier(seed=0)
    verdict = judge_samples(classifier, random_images[:30])
    assert verdict["digit_counts"].sum() == 30 and len(verdict["digit_counts"]) == 10
    probabilities = classifier.predict(random_images[:30], verbose=0)
    assert verdict["mean_confidence"] == pytest.approx(probabilities.max(axis=1).mean(), rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras 3.7 warned when the extractor took its inputs as a list
        features = classifier_features(classifier, random_images[:4])
    assert features.shape == (4, 128)


def test_compare_sets_judges_three_sets_alike(random_images):
    classifier = build_classifier(seed=0)
    labels = np.arange(40) % 10
    originals = random_images[:40]
    results = compare_sets(classifier, originals, labels, originals, random_images[40:80], random_images)
    assert results["reconstructions"]["frechet_distance"] == pytest.approx(0.0, abs=1e-3)  # identical sets
    assert results["originals"]["nearest_train_distance"] == pytest.approx(0.0, abs=1e-3)  # they are in it
    assert results["generated"]["accuracy"] is None
    assert results["originals"]["accuracy"] == results["reconstructions"]["accuracy"]
    table = comparison_table(results).splitlines()
    assert table[0] == "| measure | originals | reconstructions | generated |"
    assert table[2].endswith(" | — |") and len(table) == 7


def test_classifier_is_trained_once_then_loaded(random_images, tmp_path):
    labels = np.arange(len(random_images)) % 10
    path = tmp_path / "judge" / "classifier.keras"
    first, accuracy = train_or_load_classifier(path, random_images, labels, random_images, labels, epochs=1)
    assert path.is_file() and 0 <= accuracy <= 1 and not list(path.parent.glob(".*partial*"))
    again, same = train_or_load_classifier(path, random_images, labels, random_images, labels, epochs=1)
    assert same == pytest.approx(accuracy)
    np.testing.assert_allclose(
        again.predict(random_images[:5], verbose=0), first.predict(random_images[:5], verbose=0)
    )
