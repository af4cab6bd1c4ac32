"""The exercises' self-checks pass right answers and name the usual mistakes in plain words."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils import checks
from lab_utils.checks import CheckFailed


def reparameterise(z_mean, z_log_var, epsilon):
    return z_mean + np.exp(0.5 * z_log_var) * epsilon


def kl_per_image(z_mean, z_log_var):
    return -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)


def sample_prior(count, latent_dim, seed):
    return np.random.default_rng(seed).standard_normal((count, latent_dim))


def reconstruction_loss_per_image(originals, reconstructions):
    p = np.clip(reconstructions, 1e-7, 1 - 1e-7)
    return -np.sum(originals * np.log(p) + (1 - originals) * np.log(1 - p), axis=1)


def not_written(*args):
    raise NotImplementedError()


HISTORY = {
    "loss": [200.0, 170.0],
    "val_loss": [190.0, 160.0],
    "kl_loss": [4.0, 5.0],
    "val_kl_loss": [4.5, 6.0],
    "reconstruction_loss": [196.0, 165.0],
    "val_reconstruction_loss": [185.5, 154.0],
}


def test_right_answers_pass_and_say_so(capsys):
    checks.check_reparameterise(reparameterise)
    checks.check_reparameterise(reparameterise, seed=7, shape=(64, 8))
    checks.check_kl_per_image(kl_per_image)
    checks.check_kl_per_image(kl_per_image, seed=3, shape=(32, 20))
    checks.check_kl_share(6.0 / 160.0, HISTORY)
    checks.check_sample_prior(sample_prior)
    checks.check_sample_prior(sample_prior, seed=5, count=3000, latent_dim=5)
    checks.check_reconstruction_loss(reconstruction_loss_per_image)
    checks.check_reconstruction_loss(reconstruction_loss_per_image, seed=9, count=5)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 9 and all(line.startswith("✓ ") for line in printed)


def test_tensorflow_answers_are_accepted():
    from keras import ops

    checks.check_reparameterise(lambda m, v, e: ops.add(m, ops.exp(0.5 * v) * e))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda m, v, e: m + np.exp(v) * e, "variance"),
        (lambda m, v, e: m + v * e, "log σ² itself"),
        (lambda m, v, e: np.exp(0.5 * v) * e, "left out the mean"),
        (lambda m, v, e: m + np.exp(0.5 * v), "left out the noise"),
        (lambda m, v, e: (m + np.exp(0.5 * v)) * e, "multiplied μ by ε"),
        (lambda m, v, e: m + np.exp(0.5 * v) * e + 0.01, "largest difference"),
        (lambda m, v, e: (m + np.exp(0.5 * v) * e)[:, 0], "shape"),
        (lambda m, v, e: None, "forget the `return` line"),
        (not_written, "not written yet"),
        (lambda m, v: m, "raised TypeError"),
    ],
)
def test_reparameterisation_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_reparameterise(wrong)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda m, v: -0.5 * np.mean(1 + v - m**2 - np.exp(v), axis=1), "averaged over the 2 latent"),
        (lambda m, v: np.mean(kl_per_image(m, v)), "batch average"),
        (lambda m, v: -0.5 * (1 + v - m**2 - np.exp(v)), "one value per latent dimension"),
        (lambda m, v: -kl_per_image(m, v), "never negative"),
        (lambda m, v: 2 * kl_per_image(m, v), "factor ½"),
        (lambda m, v: -0.5 * np.sum(1 + v - m**2 - np.exp(0.5 * v), axis=1), "σ²"),
        (lambda m, v: -0.5 * np.sum(1 + v - np.exp(v), axis=1), "μ² term"),
    ],
)
def test_kl_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_kl_per_image(wrong)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (100 * 6.0 / 160.0, "percentage"),
        (5.0 / 170.0, "training figures"),
        (6.0 / 154.0, "reconstruction loss"),
        (1 - 6.0 / 160.0, "reconstruction term's share"),
        (4.5 / 190.0, "first epoch"),
        (0.5, "you returned 0.5000"),
        ("0.04", "one number"),
        (np.array([0.1, 0.2]), "one number"),
    ],
)
def test_kl_share_mistakes_are_named(answer, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_kl_share(answer, HISTORY)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda n, d, seed: np.random.default_rng(seed).random((n, d)), "uniform"),
        (lambda n, d, seed: np.random.default_rng().standard_normal((n, d)), "same seed"),
        (lambda n, d, seed: np.random.default_rng(0).standard_normal((n, d)), "use the seed argument"),
        (lambda n, d, seed: np.random.default_rng(seed).standard_normal((d, n)), "one row per code"),
        (lambda n, d, seed: np.tile(np.random.default_rng(seed).standard_normal(d), (n, 1)), "is the same"),
        (lambda n, d, seed: 2 * np.random.default_rng(seed).standard_normal((n, d)), "standard deviation 1"),
        (lambda n, d, seed: np.repeat(np.random.default_rng(seed).normal(size=(n, 1)), d, 1), "correlated"),
        (lambda n, d, seed: np.random.default_rng(seed).integers(-3, 3, (n, d)), "floating-point"),
    ],
)
def test_prior_sampling_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_sample_prior(wrong)


def _bce(x, p):
    with np.errstate(divide="ignore", invalid="ignore"):  # unclipped on purpose: log(0) where p is 0 or 1
        return -(x * np.log(p) + (1 - x) * np.log(1 - p))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda x, p: np.sum(_bce(x, p), axis=1), "Clip"),
        (lambda x, p: np.mean(_bce(x, np.clip(p, 1e-7, 1 - 1e-7)), axis=1), "averaged over the 784 pixels"),
        (lambda x, p: np.mean(reconstruction_loss_per_image(x, p)), "batch average"),
        (lambda x, p: -reconstruction_loss_per_image(x, p), "negative"),
        (lambda x, p: reconstruction_loss_per_image(p, x), "swapped"),
        (lambda x, p: reconstruction_loss_per_image(x, p) / np.log(2), "base-2"),
        (lambda x, p: -np.sum(x * np.log(np.clip(p, 1e-7, 1)), axis=1), "background pixels"),
    ],
)
def test_reconstruction_loss_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_reconstruction_loss(wrong)


def test_a_failed_check_is_an_assertion_error_so_graders_count_it_as_failed():
    assert issubclass(CheckFailed, AssertionError)


def test_the_checks_numpy_figures_are_the_kits_losses():
    """lab_utils.checks runs where TensorFlow never loads (the grader's workers), so it computes the
    expected KL and reconstruction loss in NumPy; they must stay the losses the VAE trains on."""
    from lab_utils import losses

    rng = np.random.default_rng(3)
    z_mean, z_log_var = rng.normal(0, 1.5, (50, 4)), rng.uniform(-4, 1, (50, 4))
    expected = losses.kl_terms(z_mean, z_log_var)
    np.testing.assert_allclose(checks.kl_terms(z_mean, z_log_var), expected, rtol=1e-6)
    images = (rng.random((20, 784)) < 0.3).astype("float32")
    images[:, ::5] = rng.random((20, 157), dtype="float32")
    probabilities = rng.uniform(0, 1, (20, 784)).astype("float32")
    probabilities[:, :10] = images[:, :10].round()  # exactly 0 or 1: the clipped ends
    np.testing.assert_allclose(
        checks.binary_cross_entropy(images, probabilities),
        np.asarray(losses.reconstruction_loss(images, probabilities)),
        rtol=1e-4,
    )
