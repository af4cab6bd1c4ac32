"""Figures of a trained VAE and of image sets, in nats per image: ELBO terms, an IWAE bound, distances."""

from __future__ import annotations

import keras
import numpy as np

from lab_utils.data import check_images
from lab_utils.latent import LOG_2PI, dimension_use, encode_means
from lab_utils.losses import kl_divergence, reconstruction_loss
from lab_utils.progress import Progress


def evaluate_elbo(vae, images, labels=None, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Return the negative ELBO and its two terms on `images`, in nats per image (one z sample each).

    The codes' noise ε comes from a generator seeded with `seed`, so the same model on the same
    images gives the same figure in every run and notebook (Keras' `evaluate` draws it from the
    model's own generator, whose state depends on every call before: the figure moved 0.2 nats).
    The negative ELBO is reconstruction + KL whatever the model's β (a β-VAE's training loss
    weighs the KL differently, so it is not the ELBO). `labels` for a ConditionalVAE.
    """
    images = check_images(images)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    rng = np.random.default_rng(seed)
    reconstruction, kl = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = None if labels is None else np.asarray(labels[start : start + batch_size])
        z_mean, z_log_var, _ = vae.encode(x, y)
        z_mean, z_log_var = np.asarray(z_mean), np.asarray(z_log_var)
        z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape, dtype=np.float32)
        reconstruction.append(np.asarray(reconstruction_loss(x, vae.decode(z, y), vae.likelihood)))
        kl.append(np.asarray(kl_divergence(z_mean, z_log_var)))
    terms = {
        "reconstruction_loss": float(np.concatenate(reconstruction).mean()),
        "kl_loss": float(np.concatenate(kl).mean()),
    }
    return {"negative_elbo": terms["reconstruction_loss"] + terms["kl_loss"], **terms}


def dimension_rows(models: dict, images, seed: int = 0) -> dict[str, dict]:
    """Per named model: the −ELBO's terms on `images` (`evaluate_elbo`) and each latent dimension's
    KL and activity (`latent.dimension_use`), one row each for `reports.dimension_table`."""
    return {
        name: {**evaluate_elbo(model, images, seed=seed), **dimension_use(*encode_means(model, images))}
        for name, model in models.items()
    }


def cross_entropy_floor(images) -> np.ndarray:
    """The least Bernoulli cross-entropy any decoder can reach on each image: Σ_i H(x_i), in nats.

    A pixel that is exactly 0 or 1 costs nothing when the decoder predicts it exactly; a grey
    pixel x costs its binary entropy −x log x − (1 − x) log(1 − x) even at p = x. This floor is
    one reason the figure on grey MNIST is a cross-entropy, not a log-likelihood (Loaiza-Ganem &
    Cunningham 2019, "The continuous Bernoulli").
    """
    x = check_images(images).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(x * np.log(x) + (1 - x) * np.log1p(-x))
    return np.nan_to_num(entropy, nan=0.0).sum(axis=1)  # 0 · log 0 = 0


def no_latent_baseline(train_images, images) -> np.ndarray:
    """The Bernoulli cross-entropy of `images` under the best model without a latent code, in nats.

    Without a code, the best single Bernoulli per pixel is that pixel's mean over the training
    images; a VAE's code is worth what it gains below this, not below 784 · log 2.
    """
    mean = np.clip(check_images(train_images, "train_images").astype("float64").mean(axis=0), 1e-7, 1 - 1e-7)
    x = check_images(images).astype("float64")
    return -(x @ np.log(mean) + (1 - x) @ np.log1p(-mean))


def importance_log_likelihood(
    vae,
    images,
    labels=None,
    samples: int = 1000,
    images_per_batch: int | None = None,
    seed: int = 0,
    progress: bool = False,
    proposal=None,
) -> np.ndarray:
    """Estimate log p(x) per image with the importance-weighted (IWAE) bound over `samples` codes.

    log p(x) ≈ logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K, with z_k ~ q(z|x).
    Its expectation is a lower bound on log p(x) that tightens as K grows (one draw can land
    above it); with K = 1 it is a single-sample estimate of the ELBO. Pixels are scored by the
    model's likelihood: a Bernoulli decoder on binary images and a continuous Bernoulli one give
    log-likelihoods; a Bernoulli decoder on grey MNIST gives only a likelihood-shaped score (see
    `cross_entropy_floor`). `labels` are needed
    by a ConditionalVAE (then it is log p(x | y)). `proposal`, a (z_mean, z_log_var) pair with
    one row per image (e.g. from `refine_posterior`), replaces the encoder's q(z|x) as the
    distribution the codes are drawn from. Returns one value (nats) per image.
    """
    import tensorflow as tf

    images = check_images(images)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} must be a positive integer (K=1000 is the usual choice).")
    labels = np.zeros(len(images), "int32") if labels is None else np.asarray(labels, "int32")
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    conditional, latent_dim, likelihood = vae.conditional, vae.latent_dim, vae.likelihood
    if proposal is not None:
        proposal = tuple(np.asarray(part, "float32") for part in proposal)
        if any(part.shape != (len(images), latent_dim) for part in proposal):
            raise ValueError(
                f"proposal must be (z_mean, z_log_var), each of shape ({len(images)}, {latent_dim}); "
                f"got {[part.shape for part in proposal]}."
            )
    per_batch = images_per_batch or max(1, 20_000 // samples)

    @tf.function(jit_compile=vae.jit_compile)  # as the model was compiled (build_vae: XLA unless conv)
    def log_weights(x, y, epsilon, given_mean, given_log_var):
        if proposal is None:
            z_mean, z_log_var, _ = vae.encode(x, y if conditional else None)
        else:
            z_mean, z_log_var = given_mean, given_log_var
        z = z_mean[None] + tf.exp(0.5 * z_log_var)[None] * epsilon  # (K, B, d)
        repeated_y = tf.reshape(tf.broadcast_to(y[None], (samples, *y.shape)), (-1,))
        probabilities = vae.decode(tf.reshape(z, (-1, latent_dim)), repeated_y if conditional else None)
        repeated_x = tf.reshape(tf.broadcast_to(x[None], (samples, *x.shape)), (-1, x.shape[-1]))
        log_px_given_z = -tf.reshape(
            reconstruction_loss(repeated_x, probabilities, likelihood), (samples, -1)
        )
        log_pz = -0.5 * tf.reduce_sum(tf.square(z) + LOG_2PI, axis=-1)
        log_qz = -0.5 * tf.reduce_sum(tf.square(epsilon) + LOG_2PI + z_log_var[None], axis=-1)
        return tf.reduce_logsumexp(log_px_given_z + log_pz - log_qz, axis=0) - np.log(samples)

    rng = np.random.default_rng(seed)
    given = proposal or (np.zeros((len(images), latent_dim), "float32"),) * 2  # unused without a proposal
    estimates = []
    bar = Progress(len(images), f"IWAE, K = {samples:,}, {len(images):,} images") if progress else None
    for start in range(0, len(images), per_batch):
        batch = [part[start : start + per_batch] for part in (images, labels, *given)]
        if len(batch[0]) < per_batch:  # keep one compiled shape: pad, then drop the padding
            batch = [
                np.concatenate([part, np.repeat(part[-1:], per_batch - len(part), axis=0)]) for part in batch
            ]
        epsilon = rng.standard_normal((samples, per_batch, latent_dim), dtype=np.float32)
        estimates.append(
            log_weights(
                *map(tf.constant, batch[:2]), tf.constant(epsilon), *map(tf.constant, batch[2:])
            ).numpy()
        )
        if bar is not None:
            bar.update(min(start + per_batch, len(images)))
    return np.concatenate(estimates)[: len(images)]


def _unconditional(vae, what: str) -> None:
    if vae.conditional:
        raise ValueError(f"{what} works on an unconditional VAE; this one is a ConditionalVAE.")


def posterior_elbo(vae, images, z_mean, z_log_var, samples: int = 1000, seed: int = 0) -> np.ndarray:
    """The ELBO of each image (nats) under the Gaussian q(z|x) = N(z_mean, exp(z_log_var)) given for it.

    The reconstruction term is averaged over `samples` codes drawn from q, the KL term is exact.
    Pass the encoder's output (`latent.encode_means`) or a refined one (`refine_posterior`).
    """
    import tensorflow as tf

    _unconditional(vae, "posterior_elbo")
    images = check_images(images)
    z_mean, z_log_var = np.asarray(z_mean, "float32"), np.asarray(z_log_var, "float32")
    epsilon = np.random.default_rng(seed).standard_normal((samples, *z_mean.shape), dtype=np.float32)
    per_call = max(1, 20_000 // len(images))  # draws decoded together, about 20,000 codes per call
    reconstruction = np.zeros(len(images))
    for start in range(0, samples, per_call):
        draws = epsilon[start : start + per_call]
        z = (z_mean[None] + np.exp(0.5 * z_log_var)[None] * draws).reshape(-1, z_mean.shape[1])
        losses = reconstruction_loss(
            np.tile(images, (len(draws), 1)), vae.decode(tf.constant(z)), vae.likelihood
        )
        reconstruction += np.asarray(losses).reshape(len(draws), -1).sum(axis=0)
    return -(reconstruction / samples + np.asarray(kl_divergence(z_mean, z_log_var)))


def refine_posterior(
    vae, images, steps: int = 200, samples: int = 8, learning_rate: float = 0.01, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Improve each image's q(z|x) by Adam steps on its own ELBO, starting from the encoder's output.

    The encoder amortises inference: one network gives every image its q(z|x). What a q fitted
    to each image alone gains in ELBO is the amortisation gap (Cremer et al. 2018, "Inference
    suboptimality in variational autoencoders"). Returns the refined (z_mean, z_log_var).
    """
    import tensorflow as tf

    _unconditional(vae, "refine_posterior")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer, e.g. 200.")
    images = tf.constant(check_images(images))
    z_mean, z_log_var, _ = vae.encode(images)
    mean, log_var = tf.Variable(z_mean), tf.Variable(z_log_var)
    optimizer = keras.optimizers.Adam(learning_rate)
    repeated = tf.tile(images, (samples, 1))

    @tf.function
    def step(step_seed):
        with tf.GradientTape() as tape:
            epsilon = tf.random.stateless_normal((samples, *mean.shape), seed=step_seed)
            z = tf.reshape(mean[None] + tf.exp(0.5 * log_var)[None] * epsilon, (-1, mean.shape[-1]))
            reconstruction = reconstruction_loss(repeated, vae.decode(z), vae.likelihood)
            # summed over images: each image's parameters get the gradient of its own ELBO
            loss = tf.reduce_sum(reconstruction) / samples + tf.reduce_sum(kl_divergence(mean, log_var))
        optimizer.apply(tape.gradient(loss, [mean, log_var]), [mean, log_var])

    for index in range(steps):
        step(tf.constant([seed, index]))
    return mean.numpy(), log_var.numpy()


def reconstruction_error_per_digit(vae, images, labels) -> dict[int, float]:
    """Mean reconstruction loss (nats per image, reconstructing from z_mean) of each digit class."""
    images, labels = check_images(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    reconstructions = vae.predict(images, batch_size=1000, verbose=0)
    losses = np.asarray(reconstruction_loss(images, reconstructions, vae.likelihood))
    return {digit: float(losses[labels == digit].mean()) for digit in range(10) if np.any(labels == digit)}


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, any features).

    d² = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½), computed with symmetric
    eigendecompositions.
    """
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two (n, d) feature arrays with the same d and n >= 2; got {a.shape} and {b.shape}."
        )
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(middle, 0, None)).sum()
    return max(0.0, float(np.sum((mean_a - mean_b) ** 2) + trace_term))  # no rounding below zero


def nearest_training_images(samples, train_images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the index of the closest training image (Euclidean, pixels) and that distance."""
    samples, train_images = check_images(samples, "samples"), check_images(train_images, "train_images")
    train_norms = np.einsum("ij,ij->i", train_images, train_images)
    indices, distances = [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        squared = (
            np.einsum("ij,ij->i", chunk, chunk)[:, None] - 2 * chunk @ train_images.T + train_norms[None]
        )
        best = squared.argmin(axis=1)
        indices.append(best)
        distances.append(np.sqrt(np.clip(squared[np.arange(len(chunk)), best], 0, None)))
    return np.concatenate(indices), np.concatenate(distances)


def memorisation_gap(vae, train_images, heldout_images, samples: int = 10, seed: int = 0) -> dict[str, float]:
    """How much better `vae` scores images it was trained on than images it has not seen (nats per image).

    Each image's negative ELBO (encoder's q, `samples` codes) on `train_images` and on
    `heldout_images`; `gap` is held-out minus training, with its standard error. A model that
    memorises fits its training images far better than unseen ones, whether or not its output
    is blurred, so this check can fire where distances to the nearest training image cannot
    (van den Burg & Williams 2021, "On memorization in probabilistic deep generative models",
    measure memorisation the same way, image by image).
    """
    _unconditional(vae, "memorisation_gap")
    scores = []
    for name, images in (("train_images", train_images), ("heldout_images", heldout_images)):
        images = check_images(images, name)
        if len(images) < 2:
            raise ValueError(
                f"{name} holds {len(images)} image(s); the gap's standard error needs 2 or more."
            )
        z_mean, z_log_var = encode_means(vae, images)
        scores.append(-posterior_elbo(vae, images, z_mean, z_log_var, samples=samples, seed=seed))
    train, heldout = scores
    return {
        "train": float(train.mean()),
        "heldout": float(heldout.mean()),
        "gap": float(heldout.mean() - train.mean()),
        "standard_error": float(np.sqrt(train.var(ddof=1) / len(train) + heldout.var(ddof=1) / len(heldout))),
        "train_images": len(train),
        "heldout_images": len(heldout),
    }


def likelihood_figures(
    vae, images, labels=None, samples: int = 1000, seed: int = 0, progress: bool = False
) -> dict:
    """The negative ELBO, its two terms and the IWAE estimate of −log p(x), all on the same `images`.

    Nats per image. A bound and an estimate compared on different images differ by the
    images as much as by the bound, so this is the one way the kit puts them side by side.
    `standard_error` is the IWAE mean's, over the images (n ≥ 2).
    """
    elbo = evaluate_elbo(vae, images, labels)
    log_px = importance_log_likelihood(vae, images, labels, samples=samples, seed=seed, progress=progress)
    return {
        **elbo,
        "negative_log_px": float(-log_px.mean()),
        "standard_error": float(log_px.std(ddof=1) / np.sqrt(len(log_px)))
        if len(log_px) > 1
        else float("nan"),
        "images": len(log_px),
        "samples": samples,
    }
