"""Self-checks for the notebooks' "Your turn" exercises: each says in plain words what is wrong.

A check calls the student's function on inputs it makes from `seed`, compares the answer with
the kit's own implementation, and on a mismatch raises `CheckFailed` naming the likely mistake
(the variance instead of the standard deviation, a mean where a sum belongs, ...). The
notebooks' graded cells call the same checks, with other seeds and shapes as hidden tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

# The checks run in the grader's workers, which never import TensorFlow or Keras: so the expected
# values are computed here in NumPy, and tests/test_checks.py holds them equal to lab_utils.losses.


def kl_terms(z_mean, z_log_var) -> np.ndarray:
    """½(μ² + σ² − log σ² − 1) per image and latent dimension, as `losses.kl_terms`, in NumPy."""
    z_mean, z_log_var = np.asarray(z_mean, "float64"), np.asarray(z_log_var, "float64")
    return 0.5 * (z_mean**2 + np.exp(z_log_var) - 1.0 - z_log_var)


def binary_cross_entropy(images, probabilities) -> np.ndarray:
    """−log p(x|z) per image for a Bernoulli decoder, as `losses.reconstruction_loss`, in NumPy:
    as Keras computes it, in float32, the probabilities clipped to [1e-7, 1 − 1e-7]."""
    images = np.asarray(images, "float32")
    epsilon = np.float32(1e-7)
    p = np.clip(np.asarray(probabilities, "float32"), epsilon, np.float32(1) - epsilon)
    pixelwise = images * np.log(p) + (np.float32(1) - images) * np.log(np.float32(1) - p)
    return -pixelwise.astype("float64").reshape(len(images), -1).sum(axis=1)


class CheckFailed(AssertionError):
    """An exercise's answer is wrong; the message says what to change."""


def _answer(function: Callable, *args, **kwargs) -> np.ndarray:
    """Call the student's function and return its answer as a NumPy array, explaining failures."""
    name = getattr(function, "__name__", "your function")
    try:
        answer = function(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not written yet: replace `raise NotImplementedError()` in its cell with your code, "
            "run that cell, then run this check again."
        ) from None
    except Exception as error:
        raise CheckFailed(
            f"calling {name} raised {type(error).__name__}: {error} (see the traceback above)."
        ) from error
    if answer is None:
        raise CheckFailed(f"{name} returned None: did you forget the `return` line?")
    return np.asarray(answer)


def _check_shape(answer: np.ndarray, expected: np.ndarray, name: str, what: str) -> None:
    if answer.shape != expected.shape:
        raise CheckFailed(
            f"{name} returned an array of shape {answer.shape}; it should have shape {expected.shape}: "
            f"{what}."
        )
    if not np.all(np.isfinite(answer)):
        raise CheckFailed(f"{name} returned {int(np.sum(~np.isfinite(answer)))} NaN or infinite values.")


def _matches(answer: np.ndarray, candidate, tolerance: float = 1e-4) -> bool:
    candidate = np.asarray(candidate, dtype="float64")
    same_shape = answer.shape == candidate.shape
    return same_shape and bool(np.allclose(answer, candidate, rtol=tolerance, atol=tolerance))


def _diagnose(
    answer: np.ndarray,
    expected: np.ndarray,
    mistakes: Sequence[tuple[np.ndarray, str]],
    name: str,
    tolerance: float = 1e-4,
) -> None:
    """Raise CheckFailed naming the first known mistake the answer matches, or where it is off."""
    if _matches(answer, expected, tolerance):
        return
    for wrong, hint in mistakes:
        if _matches(answer, wrong, tolerance):
            raise CheckFailed(f"{name}: {hint}")
    error = np.abs(answer - expected)
    wrong = int(np.sum(error > tolerance * (1 + np.abs(expected))))
    worst = np.unravel_index(np.argmax(error), error.shape)
    raise CheckFailed(
        f"{name} is off at {wrong} of {expected.size} values; the largest difference is at index "
        f"{tuple(int(i) for i in worst)}: you returned {answer[worst]:.4f}, the right value is "
        f"{expected[worst]:.4f}."
    )


def _passed(message: str) -> None:
    print(f"✓ {message}")


def check_reparameterise(function: Callable, seed: int = 0, shape: tuple[int, int] = (1000, 2)) -> None:
    """Check `function(z_mean, z_log_var, epsilon)` returns z = μ + exp(½·log σ²)·ε, element by element."""
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(0.0, 2.0, shape)
    z_log_var = rng.uniform(-3.0, 1.5, shape)
    epsilon = rng.standard_normal(shape)
    answer = _answer(function, z_mean, z_log_var, epsilon)
    name = getattr(function, "__name__", "your function")
    expected = z_mean + np.exp(0.5 * z_log_var) * epsilon
    _check_shape(answer, expected, name, "one z for every entry of z_mean")
    mistakes = [
        (
            z_mean + np.exp(z_log_var) * epsilon,
            "you scaled ε by the variance σ² = exp(log σ²); the trick scales it by the standard deviation "
            "σ = exp(½·log σ²).",
        ),
        (
            z_mean + z_log_var * epsilon,
            "you scaled ε by log σ² itself; first turn the log-variance into the standard deviation, "
            "σ = exp(½·log σ²).",
        ),
        (
            z_mean + 0.5 * z_log_var * epsilon,
            "you scaled ε by ½·log σ²; take the exponential: σ = exp(½·log σ²).",
        ),
        (np.exp(0.5 * z_log_var) * epsilon, "you left out the mean: z = μ + σ·ε, not σ·ε."),
        (
            z_mean + np.exp(0.5 * z_log_var),
            "you left out the noise ε: without it z is always μ + σ and nothing is sampled.",
        ),
        (
            (z_mean + np.exp(0.5 * z_log_var)) * epsilon,
            "you multiplied μ by ε as well; only σ is scaled by the noise: z = μ + σ·ε.",
        ),
    ]
    _diagnose(answer, expected, mistakes, name)
    _passed(f"{name} is right on {expected.size:,} random (μ, log σ², ε) values.")


def check_kl_per_image(function: Callable, seed: int = 0, shape: tuple[int, int] = (500, 2)) -> None:
    """Check `function(z_mean, z_log_var)` returns KL(q(z|x) ‖ N(0, I)) per image, summed over dimensions."""
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(0.0, 1.5, shape)
    z_log_var = rng.uniform(-4.0, 1.0, shape)
    answer = _answer(function, z_mean, z_log_var)
    name = getattr(function, "__name__", "your function")
    per_dimension = kl_terms(z_mean, z_log_var)
    expected = per_dimension.sum(axis=1)
    if answer.shape == () and np.isclose(answer, expected.mean(), rtol=1e-4):
        raise CheckFailed(
            f"{name} returned one number, the batch average; return one KL value per image, shape "
            f"{expected.shape}: sum over the latent axis only (axis=1) and leave the batch axis alone."
        )
    if _matches(answer, per_dimension):
        raise CheckFailed(
            f"{name} returned one value per latent dimension, shape {answer.shape}; add them up over the "
            f"latent axis (axis=1) to get one KL value per image, shape {expected.shape}."
        )
    _check_shape(answer, expected, name, "one KL value per image (row)")
    mistakes = [
        (
            per_dimension.mean(axis=1),
            f"you averaged over the {shape[1]} latent dimensions (pitfall 2 of the original lab); the KL "
            "of a diagonal Gaussian is a sum over them.",
        ),
        (
            -expected,
            "your KL is the negative of the right one: KL is never negative, so check the sign before ½.",
        ),
        (2 * expected, "your KL is twice the right one: the formula has a factor ½ in front of the sum."),
        (
            -0.5 * np.sum(1.0 + z_log_var - z_mean**2 - np.exp(0.5 * z_log_var), axis=1),
            "you used σ (exp(½·log σ²)) where the formula has σ² = exp(log σ²).",
        ),
        (
            -0.5 * np.sum(1.0 + z_log_var - np.exp(z_log_var), axis=1),
            "you forgot the μ² term: the KL also grows as the mean moves away from 0.",
        ),
    ]
    _diagnose(answer, expected, mistakes, name)
    _passed(f"{name} gives the right KL, in nats, for {len(expected):,} images of {shape[1]} dimensions.")


def check_kl_share(kl_share: float, history: Mapping[str, Sequence[float]]) -> None:
    """Check `kl_share` is the KL term's fraction of the final test-set loss, from the training history."""
    if isinstance(kl_share, bool | str) or np.ndim(kl_share) != 0:
        kind = type(kl_share).__name__
        raise CheckFailed(f"kl_share should be one number (a float), not the {kind} {kl_share!r}.")
    history = getattr(history, "history", history)
    kl, total = history["val_kl_loss"][-1], history["val_loss"][-1]
    expected = kl / total
    mistakes = [
        (100 * expected, "you gave a percentage; give the fraction (for example 0.05 for 5 %)."),
        (
            history["kl_loss"][-1] / history["loss"][-1],
            "you used the training figures (kl_loss / loss); the question is about the test set "
            "(the val_ figures).",
        ),
        (
            kl / history["val_reconstruction_loss"][-1],
            "you divided by the reconstruction loss; divide by the total test loss, val_loss.",
        ),
        (1 - expected, "you gave the reconstruction term's share; the question asks for the KL term's."),
        (
            history["val_kl_loss"][0] / history["val_loss"][0],
            "you used the first epoch's figures; take the last epoch's, index [-1].",
        ),
    ]
    _diagnose(np.asarray(float(kl_share)), np.asarray(expected), mistakes, "kl_share")
    _passed(f"kl_share = {float(kl_share):.4f}: the KL term is {expected:.1%} of the final test loss.")


def check_sample_prior(function: Callable, seed: int = 0, count: int = 4000, latent_dim: int = 2) -> None:
    """Check `function(count, latent_dim, seed)` draws `count` codes from N(0, I), reproducibly per seed."""
    name = getattr(function, "__name__", "your function")
    codes = _answer(function, count, latent_dim, seed)
    if codes.shape != (count, latent_dim):
        raise CheckFailed(
            f"{name}({count}, {latent_dim}, seed={seed}) returned shape {codes.shape}; it should be "
            f"({count}, {latent_dim}): one row per code, one column per latent dimension."
        )
    if not np.issubdtype(codes.dtype, np.floating) or not np.all(np.isfinite(codes)):
        raise CheckFailed(f"{name} should return finite floating-point numbers, not {codes.dtype} values.")
    if not np.array_equal(codes, _answer(function, count, latent_dim, seed)):
        raise CheckFailed(
            f"{name} returned different codes for the same seed; make a generator from the seed "
            "(np.random.default_rng(seed)) and draw from it, so a run can be repeated."
        )
    if np.array_equal(codes, _answer(function, count, latent_dim, seed + 1)):
        raise CheckFailed(f"{name} gave equal codes for seeds {seed} and {seed + 1}: use the seed argument.")
    if np.allclose(codes, codes[0]):
        raise CheckFailed(f"every code {name} returned is the same; draw a new one for each row.")
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    if codes.min() >= 0 and codes.max() <= 1:
        raise CheckFailed(
            "all codes lie in [0, 1]: that is a uniform distribution (rng.random); the prior is the "
            "standard normal N(0, I): use rng.standard_normal."
        )
    tolerance = 5 / np.sqrt(count)
    if np.any(np.abs(mean) > tolerance) or np.any(np.abs(std - 1) > tolerance):
        raise CheckFailed(
            f"the codes have mean {np.round(mean, 2).tolist()} and standard deviation "
            f"{np.round(std, 2).tolist()} per dimension; codes from the prior N(0, I) have mean 0 and "
            "standard deviation 1 in every dimension."
        )
    if latent_dim > 1:
        correlation = np.corrcoef(codes, rowvar=False)[np.triu_indices(latent_dim, 1)]
        if np.any(np.abs(correlation) > tolerance):
            raise CheckFailed(
                f"the latent dimensions are correlated (largest |r| = {np.abs(correlation).max():.2f}); "
                "under the prior N(0, I) each dimension is drawn independently."
            )
    _passed(
        f"{name} draws reproducible codes from N(0, I): mean {np.round(mean, 2).tolist()}, "
        f"standard deviation {np.round(std, 2).tolist()} over {count:,} codes."
    )


def check_reconstruction_loss(function: Callable, seed: int = 0, count: int = 20) -> None:
    """Check `function(originals, reconstructions)` returns the Bernoulli loss per image (sum over pixels)."""
    rng = np.random.default_rng(seed)
    originals = (rng.random((count, 784)) < 0.2).astype("float32")
    originals[:, ::7] = rng.random((count, 112), dtype="float32")  # grey edge pixels
    reconstructions = rng.uniform(0.02, 0.98, (count, 784)).astype("float32")
    confident = rng.random((count, 784)) < 0.1  # the sigmoid rounds to exactly 0 or 1 in float32
    binary = (originals == 0) | (originals == 1)
    reconstructions[confident & binary] = originals[confident & binary]
    answer = _answer(function, originals, reconstructions)
    name = getattr(function, "__name__", "your function")
    expected = binary_cross_entropy(originals, reconstructions)
    if not np.all(np.isfinite(answer)):
        raise CheckFailed(
            f"{name} returned NaN or infinite losses: where the decoder says exactly 0 or 1, log(0) is "
            "-inf. Clip the reconstructions to [1e-7, 1 - 1e-7] (np.clip) before taking logarithms."
        )
    if answer.shape == () and np.isclose(answer, expected.mean(), rtol=1e-3):
        raise CheckFailed(f"{name} returned the batch average; return one loss per image, {expected.shape}.")
    _check_shape(answer, expected, name, "one loss per image, summed over its 784 pixels")
    x, p, q = originals, np.clip(reconstructions, 1e-7, 1 - 1e-7), np.clip(originals, 1e-7, 1 - 1e-7)
    mistakes = [
        (
            expected / 784,
            "you averaged over the 784 pixels; the loss of an image is the sum over its pixels.",
        ),
        (
            -expected,
            "your loss is the negative of the right one: the loss is −[x·log p + (1 − x)·log(1 − p)].",
        ),
        (
            -np.sum(p * np.log(q) + (1 - p) * np.log(1 - q), axis=1),
            "you swapped the originals and the reconstructions: the pixel x multiplies log p, where p is the "
            "decoder's output.",
        ),
        (expected / np.log(2), "you used base-2 logarithms; nats need the natural logarithm, np.log."),
        (expected / np.log(10), "you used base-10 logarithms; nats need the natural logarithm, np.log."),
        (
            -np.sum(x * np.log(p), axis=1),
            "you left out the (1 − x)·log(1 − p) term: the background pixels count too.",
        ),
    ]
    _diagnose(answer, expected, mistakes, name, tolerance=1e-3)
    _passed(
        f"{name} gives the right loss, in nats, for {count} images (including pixels the decoder gets "
        "exactly right)."
    )
