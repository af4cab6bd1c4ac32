"""lab_utils.latent: the KL split, per-dimension use and the code mixture, on codes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.latent import (
    aggregate_log_density,
    dimension_use,
    fit_code_mixture,
    kl_split,
    prior_log_density,
    sample_mixture,
)


def test_aggregate_density_is_the_mean_of_the_images_gaussians():
    rng = np.random.default_rng(0)
    z_mean, z_log_var, z = (
        rng.normal(size=(30, 3)),
        rng.normal(scale=0.5, size=(30, 3)),
        rng.normal(size=(7, 3)),
    )
    variance = np.exp(z_log_var)
    each = (
        np.exp(-0.5 * ((z[:, None] - z_mean[None]) ** 2 / variance[None]).sum(-1))
        / np.sqrt((2 * np.pi) ** 3 * variance.prod(-1))[None]
    )
    np.testing.assert_allclose(
        aggregate_log_density(z, z_mean, z_log_var, batch_size=4), np.log(each.mean(1))
    )
    np.testing.assert_allclose(
        prior_log_density(z), np.log(np.exp(-0.5 * (z**2).sum(-1)) / (2 * np.pi) ** 1.5)
    )


def test_codes_that_ignore_the_image_carry_no_information():
    z_mean, z_log_var = np.zeros((200, 2)), np.zeros((200, 2))  # q(z|x) = p(z) for every image
    split = kl_split(z_mean, z_log_var)
    assert split["average_kl"] == pytest.approx(0.0)
    assert split["mutual_information"] == pytest.approx(0.0, abs=1e-9)
    assert split["marginal_kl"] == pytest.approx(0.0, abs=1e-9)


def test_codes_far_apart_carry_all_the_information_the_estimate_can_hold():
    n = 50
    z_mean = np.column_stack([np.arange(n) * 100.0 - 2500.0, np.zeros(n)])  # one narrow cloud per image
    split = kl_split(z_mean, np.full((n, 2), np.log(1e-4)))
    assert split["information_ceiling"] == pytest.approx(np.log(n))
    assert split["mutual_information"] == pytest.approx(np.log(n), abs=1e-4)
    assert split["marginal_kl"] == pytest.approx(split["average_kl"] - np.log(n), abs=1e-4)


def test_dimension_use_finds_the_collapsed_dimension():
    rng = np.random.default_rng(1)
    z_mean = np.column_stack([rng.normal(size=500), np.zeros(500)])
    z_log_var = np.column_stack([np.full(500, -4.0), np.zeros(500)])
    use = dimension_use(z_mean, z_log_var)
    assert use["active"].tolist() == [True, False]
    assert use["kl"][1] == pytest.approx(0.0)
    assert use["kl"][0] > 1.0


def test_kl_split_rejects_codes_of_different_shapes():
    with pytest.raises(ValueError, match="encode_means"):
        kl_split(np.zeros((5, 2)), np.zeros((5, 3)))


def test_the_mixture_samples_where_the_codes_are_in_their_proportions_and_shuffled():
    rng = np.random.default_rng(2)
    codes = np.concatenate([rng.normal(-5, 0.3, (300, 2)), rng.normal(5, 0.3, (100, 2))])
    mixture = fit_code_mixture(codes, components=2, seed=0)
    samples = sample_mixture(mixture, 2000, seed=0)
    left = samples[:, 0] < 0
    assert left.mean() == pytest.approx(0.75, abs=0.04)
    assert np.all(np.abs(np.abs(samples[:, 0]) - 5) < 2)  # no sample in the empty middle
    assert 0.6 < left[:1000].mean() < 0.9  # not grouped by component
    np.testing.assert_array_equal(samples, sample_mixture(mixture, 2000, seed=0))


def test_each_seed_draws_different_codes_from_the_mixture_and_the_fit_is_untouched():
    codes = np.random.default_rng(3).normal(size=(200, 2))
    mixture = fit_code_mixture(codes, components=2, seed=0)
    first, second = sample_mixture(mixture, 500, seed=1), sample_mixture(mixture, 500, seed=2)
    # Not the same codes in another order: a new seed is a new draw.
    assert not np.allclose(np.sort(first[:, 0]), np.sort(second[:, 0]))
    np.testing.assert_array_equal(first, sample_mixture(mixture, 500, seed=1))
    assert mixture.random_state == 0  # the fitted mixture is not changed by sampling
