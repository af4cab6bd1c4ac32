"""The VAE's loss terms, per image in nats: Bernoulli reconstruction, KL to the prior, and their sum."""

from __future__ import annotations

from keras import ops

# The terms a kit VAE logs (and with val_ in front, on the validation set), with their names.
LOSS_TERMS = {
    "loss": "negative ELBO (total)",
    "reconstruction_loss": "reconstruction −log p(x|z)",
    "kl_loss": "KL(q(z|x) ‖ p(z))",
}


def reconstruction_loss(images, reconstructions):
    """Binary cross-entropy summed over pixels: -log p(x|z) per image, shape (batch,)."""
    pixelwise = ops.binary_crossentropy(images, reconstructions)
    return ops.sum(ops.reshape(pixelwise, (ops.shape(pixelwise)[0], -1)), axis=1)


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) summed over latent dimensions, per image, shape (batch,)."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)


def negative_elbo(images, reconstructions, z_mean, z_log_var, beta: float = 1.0):
    """Return (loss, reconstruction, kl), each averaged over the batch; loss = reconstruction + beta * kl."""
    reconstruction = ops.mean(reconstruction_loss(images, reconstructions))
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    return reconstruction + beta * kl, reconstruction, kl
