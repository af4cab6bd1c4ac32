"""The VAE's loss terms per image, in nats: reconstruction (Bernoulli or continuous Bernoulli), KL, sum."""

from __future__ import annotations

from keras import ops

LIKELIHOODS = ("bernoulli", "continuous_bernoulli")

# The terms a kit VAE logs (and with val_ in front, on the validation set), with their names.
LOSS_TERMS = {
    "loss": "negative ELBO (total)",
    "reconstruction_loss": "reconstruction term",
    "kl_loss": "KL(q(z|x) ‖ p(z))",
}


def check_likelihood(likelihood: str) -> str:
    """Return `likelihood` if the kit knows it, else raise a ValueError naming the choices."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r} is not one of {LIKELIHOODS}.")
    return likelihood


def continuous_bernoulli_log_normaliser(probabilities):
    """log C(λ) of the continuous Bernoulli, C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ), with C(½) = 2.

    Near λ = ½ the ratio is 0/0, so a Taylor series takes over there: log C = log 2 + u²/3 +
    13u⁴/90 with u = 1 − 2λ (Loaiza-Ganem & Cunningham 2019).
    """
    lam = ops.clip(probabilities, 1e-6, 1.0 - 1e-6)
    u = 1.0 - 2.0 * lam
    near_half = ops.abs(u) < 1e-2
    safe_u = ops.where(near_half, 0.1, u)  # keeps the unused branch (and its gradient) finite
    exact = ops.log((ops.log1p(safe_u) - ops.log1p(-safe_u)) / safe_u)
    series = ops.log(2.0) + ops.square(u) / 3.0 + 13.0 * ops.square(ops.square(u)) / 90.0
    return ops.where(near_half, series, exact)


def continuous_bernoulli_mean(probabilities):
    """The mean of a continuous Bernoulli with parameter λ: λ/(2λ − 1) + 1/(2 artanh(1 − 2λ)), ½ at λ = ½."""
    lam = ops.clip(probabilities, 1e-6, 1.0 - 1e-6)
    u = 1.0 - 2.0 * lam
    near_half = ops.abs(u) < 1e-2
    safe_u = ops.where(near_half, 0.1, u)
    exact = (1.0 - safe_u) / (-2.0 * safe_u) + 1.0 / (ops.log1p(safe_u) - ops.log1p(-safe_u))
    series = 0.5 - u / 6.0  # the first terms of the same expression around u = 0
    return ops.where(near_half, series, exact)


def reconstruction_loss(images, reconstructions, likelihood: str = "bernoulli"):
    """−log p(x|z) per image, summed over pixels, shape (batch,).

    "bernoulli": the binary cross-entropy. It is a log-likelihood on binary images only; on
    grey pixels it is a cross-entropy with a floor above zero (`metrics.cross_entropy_floor`).
    "continuous_bernoulli": the same cross-entropy minus log C(λ) per pixel, a proper density
    on [0, 1] (it can be negative: a density may exceed 1). On the decoder's own sigmoid output
    Keras takes the cross-entropy from the logits; NumPy probabilities are clipped to 1e-7.
    """
    pixelwise = ops.binary_crossentropy(images, reconstructions)
    if likelihood == "continuous_bernoulli":
        pixelwise = pixelwise - continuous_bernoulli_log_normaliser(reconstructions)
    elif likelihood != "bernoulli":
        check_likelihood(likelihood)
    return ops.sum(ops.reshape(pixelwise, (ops.shape(pixelwise)[0], -1)), axis=1)


def kl_terms(z_mean, z_log_var):
    """KL(q(z_j|x) || N(0, 1)) = ½(μ² + σ² − log σ² − 1) per image and latent dimension, shape (batch, d)."""
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) summed over latent dimensions, per image, shape (batch,)."""
    return ops.sum(kl_terms(z_mean, z_log_var), axis=1)


def kl_per_dimension(z_mean, z_log_var):
    """KL(q(z_j|x) || N(0, 1)) of each latent dimension, averaged over the batch, shape (latent_dim,)."""
    return ops.mean(kl_terms(z_mean, z_log_var), axis=0)


def negative_elbo(
    images, reconstructions, z_mean, z_log_var, beta: float = 1.0, likelihood: str = "bernoulli"
):
    """Return (loss, reconstruction, kl), each averaged over the batch; loss = reconstruction + beta * kl."""
    reconstruction = ops.mean(reconstruction_loss(images, reconstructions, likelihood))
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    return reconstruction + beta * kl, reconstruction, kl
