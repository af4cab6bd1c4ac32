"""The codes a trained VAE gives its images: the KL term split, dimensions used, a mixture fitted to them."""

from __future__ import annotations

import copy

import numpy as np

from lab_utils.data import check_images
from lab_utils.losses import kl_terms

LOG_2PI = float(np.log(2 * np.pi))
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: a dimension is active when Cov_x(E_q[z_j]) > 0.01


def encode_means(vae, images) -> tuple[np.ndarray, np.ndarray]:
    """Return (z_mean, z_log_var) of `images` from the VAE's encoder, in batches."""
    z_mean, z_log_var, _ = vae.encoder.predict(check_images(images), batch_size=1000, verbose=0)
    return z_mean, z_log_var


def _check_codes(z_mean, z_log_var) -> tuple[np.ndarray, np.ndarray]:
    z_mean, z_log_var = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape or len(z_mean) < 2:
        raise ValueError(
            f"z_mean {z_mean.shape} and z_log_var {z_log_var.shape} must both be (n, latent_dim), n >= 2: "
            "pass what encode_means returns."
        )
    return z_mean, z_log_var


def aggregate_log_density(z, z_mean, z_log_var, batch_size: int = 1000) -> np.ndarray:
    """log q(z) at each row of `z`; q(z) = (1/n) Σ_n N(z; μ_n, σ_n²) is the aggregate posterior."""
    z_mean, z_log_var = _check_codes(z_mean, z_log_var)
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or z.shape[1] != z_mean.shape[1]:
        raise ValueError(f"z has shape {z.shape}; expected (m, {z_mean.shape[1]}).")
    precision = np.exp(-z_log_var)  # (n, d)
    # log N(z; μ, σ²) = −½ Σ_j [z_j²/σ_j² − 2 z_j μ_j/σ_j² + μ_j²/σ_j² + log σ_j² + log 2π]
    constant = -0.5 * np.sum(z_mean**2 * precision + z_log_var + LOG_2PI, axis=1)  # (n,)
    results = []
    for start in range(0, len(z), batch_size):
        chunk = z[start : start + batch_size]
        log_densities = -0.5 * (chunk**2) @ precision.T + chunk @ (z_mean * precision).T + constant
        peak = log_densities.max(axis=1, keepdims=True)
        results.append(peak[:, 0] + np.log(np.exp(log_densities - peak).mean(axis=1)))
    return np.concatenate(results)


def prior_log_density(z) -> np.ndarray:
    """log N(z; 0, I) for each row of `z`."""
    z = np.asarray(z, np.float64)
    return -0.5 * np.sum(z**2 + LOG_2PI, axis=1)


def kl_split(z_mean, z_log_var, seed: int = 0) -> dict[str, float]:
    """Split the average KL term into I_q(n; z) + KL(q(z) ‖ p(z)) (Hoffman & Johnson 2016), nats per image.

    q(z) is the aggregate posterior of the n encoded images. I_q is estimated as the mean of
    log q(z|x_n) − log q(z) over one code drawn from each q(z|x_n), with log q(z) summed exactly
    over the n components, so it cannot exceed log n; KL(q(z) ‖ p(z)) is the rest of the exact
    average KL.
    """
    z_mean, z_log_var = _check_codes(z_mean, z_log_var)
    average_kl = float(np.mean(np.asarray(kl_terms(z_mean, z_log_var)).sum(axis=1)))
    epsilon = np.random.default_rng(seed).standard_normal(z_mean.shape)
    z = z_mean + np.exp(0.5 * z_log_var) * epsilon
    log_own = -0.5 * np.sum(epsilon**2 + z_log_var + LOG_2PI, axis=1)  # log q(z_n | x_n)
    information = float(np.mean(log_own - aggregate_log_density(z, z_mean, z_log_var)))
    return {
        "average_kl": average_kl,
        "mutual_information": information,
        "marginal_kl": average_kl - information,
        "information_ceiling": float(np.log(len(z_mean))),
    }


def dimension_use(z_mean, z_log_var) -> dict[str, np.ndarray]:
    """Per latent dimension: the average KL term, and the activity Cov_x(E_q[z_j]) (active when > 0.01)."""
    z_mean, z_log_var = _check_codes(z_mean, z_log_var)
    kl = np.asarray(kl_terms(z_mean, z_log_var)).mean(axis=0)
    activity = np.var(z_mean, axis=0)
    return {"kl": kl, "activity": activity, "active": activity > ACTIVE_UNIT_THRESHOLD}


def fit_code_mixture(z_mean, components: int = 10, seed: int = 0):
    """Fit a Gaussian mixture (scikit-learn, full covariances) to codes μ(x): it samples where the data is."""
    from sklearn.mixture import GaussianMixture

    z_mean = np.asarray(z_mean, np.float64)
    if z_mean.ndim != 2 or len(z_mean) < components:
        raise ValueError(
            f"z_mean has shape {z_mean.shape}; fit the mixture to (n, latent_dim) codes, n >= {components}."
        )
    return GaussianMixture(n_components=components, covariance_type="full", random_state=seed).fit(z_mean)


def sample_mixture(mixture, count: int, seed: int = 0) -> np.ndarray:
    """Draw `count` codes from a fitted mixture, shuffled (scikit-learn returns them grouped by component).

    scikit-learn draws with the estimator's `random_state`, so a copy carries `seed`: each seed is
    its own draw, and the fitted mixture is left as it was.
    """
    seeded = copy.copy(mixture)
    seeded.random_state = seed
    codes, _ = seeded.sample(count)
    return np.random.default_rng(seed).permutation(codes).astype("float32")
