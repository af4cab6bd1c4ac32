"""Every figure the notebooks show; each helper returns its matplotlib Figure."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke
from matplotlib.ticker import MaxNLocator

from lab_utils.data import IMAGE_SIZE
from lab_utils.losses import LOSS_TERMS


def plot_loss_curves(
    history: Mapping[str, Sequence[float]], title: str = "VAE training: train vs validation loss"
) -> Figure:
    """Plot train and validation curves of the total loss and of each loss term, per epoch."""
    if not isinstance(history, Mapping) or "loss" not in history:
        raise ValueError(
            f"history must be the history dict training returns, with a 'loss' entry; got {history!r:.80}."
        )
    epochs = range(1, len(history["loss"]) + 1)
    figure = Figure(figsize=(13, 3.6), layout="constrained")
    axes = figure.subplots(1, len(LOSS_TERMS))
    for axis, (key, label) in zip(axes, LOSS_TERMS.items()):
        axis.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], marker="s", label="validation (test set)")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel("nats per image")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return figure


def _as_images(images, name: str) -> np.ndarray:
    images = np.asarray(images, dtype="float32")
    if images.ndim == 2 and images.shape[1] == IMAGE_SIZE * IMAGE_SIZE:
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if images.ndim != 3:
        raise ValueError(f"{name} has shape {images.shape}; expected (n, 784) or (n, 28, 28) images.")
    return images


def _wrapped(label: str, width: int) -> str:
    """`label` on lines of about `width` characters, never broken inside brackets ("N(0, I)")."""
    depth, protected = 0, []
    for character in label:
        depth += (character == "(") - (character == ")")
        protected.append("\u00a0" if character == " " and depth > 0 else character)
    return "\n".join(textwrap.wrap("".join(protected), width)).replace("\u00a0", " ")


def show_image_rows(
    rows: Sequence, row_labels: Sequence[str], title: str, column_labels: Sequence[str] = ()
) -> Figure:
    """Show equal-length rows of 28x28 images in a grid, one labelled row per set."""
    rows = [_as_images(row, label) for row, label in zip(rows, row_labels)]
    if len(rows) != len(row_labels):
        raise ValueError(f"got {len(rows)} image rows but {len(row_labels)} row labels.")
    n = len(rows[0])
    if n == 0 or any(len(row) != n for row in rows):
        raise ValueError(
            f"every row needs the same, non-zero number of images; got {[len(r) for r in rows]}."
        )
    # Row labels read across, wrapped to the left of their row: a long label standing on its
    # side would run into the next row's.
    labels = [label if "\n" in label else _wrapped(label, 20) for label in row_labels]
    lines = max(label.count("\n") + 1 for label in labels)
    figure = Figure(figsize=(1.1 * n + 2.0, max(1.25, 0.25 * lines) * len(rows) + 0.6), layout="constrained")
    axes = np.asarray(figure.subplots(len(rows), n, squeeze=False))
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            axis = axes[r, c]
            axis.imshow(row[c], cmap="gray_r", vmin=0.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and column_labels:
                axis.set_title(str(column_labels[c]), fontsize=9)
    figure.suptitle(title)
    return figure


def show_reconstructions(originals, reconstructions, labels: Sequence[int] = (), n: int = 10) -> Figure:
    """Show `n` originals (top row) over their reconstructions (bottom row)."""
    if n < 1:
        raise ValueError(f"n={n} must be at least 1.")
    originals, reconstructions = (
        _as_images(originals, "originals"),
        _as_images(reconstructions, "reconstructions"),
    )
    if len(originals) != len(reconstructions):
        raise ValueError(
            f"got {len(originals)} originals but {len(reconstructions)} reconstructions; "
            "pass one per original."
        )
    n = min(n, len(originals))
    column_labels = [f"digit {int(label)}" for label in labels[:n]] if len(labels) else ()
    return show_image_rows(
        [originals[:n], reconstructions[:n]],
        ["original", "reconstruction"],
        title="Test images (top) and their VAE reconstructions (bottom)",
        column_labels=column_labels,
    )


def show_digits_per_class(images, labels, per_class: int = 10) -> Figure:
    """Show the first `per_class` images of each digit 0-9, one row per digit."""
    images, labels = _as_images(images, "images"), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    rows = []
    for digit in range(10):
        examples = images[labels == digit][:per_class]
        if len(examples) < per_class:
            raise ValueError(
                f"only {len(examples)} images of digit {digit}; pass more data or lower per_class."
            )
        rows.append(examples)
    return show_image_rows(
        rows, [f"digit {d}" for d in range(10)], title=f"{per_class} MNIST digits of each class"
    )


def plot_pixel_histogram(images, bins: int = 51) -> Figure:
    """Histogram of pixel intensities (log count); pass a dict {name: images} to overlay several sets."""
    sets = images if isinstance(images, Mapping) else {"images": images}
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axis = figure.subplots()
    for name, values in sets.items():
        values = np.asarray(values, dtype="float32").ravel()
        count = len(values) // (IMAGE_SIZE * IMAGE_SIZE)
        style = {"histtype": "step", "linewidth": 2} if len(sets) > 1 else {"color": "tab:blue"}
        axis.hist(values, bins=bins, range=(0.0, 1.0), label=f"{name} ({count:,})", **style)
    axis.set_yscale("log")
    if len(sets) > 1:
        axis.legend()
        axis.set_title("Pixel intensities of each set of images")
    else:
        axis.set_title(f"Pixel intensities of {count:,} images")
    axis.set_xlabel("pixel intensity after scaling to [0, 1]")
    axis.set_ylabel("number of pixels (log scale)")
    axis.grid(alpha=0.3)
    return figure


def plot_digit_bars(values_by_set: Mapping[str, Sequence[float]], title: str, ylabel: str) -> Figure:
    """Grouped bar chart with one bar per digit 0-9 for each named set of ten values."""
    if not values_by_set or any(len(values) != 10 for values in values_by_set.values()):
        raise ValueError("values_by_set must map each set's name to ten values, one per digit 0-9.")
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axis = figure.subplots()
    width = 0.8 / len(values_by_set)
    digits = np.arange(10)
    for position, (name, values) in enumerate(values_by_set.items()):
        axis.bar(digits - 0.4 + width * (position + 0.5), values, width=width, label=name)
    axis.set_xticks(digits)
    axis.set_title(title)
    axis.set_xlabel("digit")
    axis.set_ylabel(ylabel)
    axis.legend()
    return figure


def plot_class_balance(y_train, y_test) -> Figure:
    """Bar chart of how many training and test images each digit has."""
    counts = {
        f"{name} ({len(labels):,} images)": np.bincount(np.asarray(labels, dtype="int64"), minlength=10)
        for name, labels in (("train", y_train), ("test", y_test))
    }
    return plot_digit_bars(counts, "Images per digit class", "number of images")


def _image_grid(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Tile (rows * columns, 28, 28) images into one (rows * 28, columns * 28) picture."""
    return (
        images.reshape(rows, columns, IMAGE_SIZE, IMAGE_SIZE)
        .swapaxes(1, 2)
        .reshape(rows * IMAGE_SIZE, columns * IMAGE_SIZE)
    )


def show_prior_samples(vae, rows: int = 6, columns: int = 12, seed: int = 0) -> Figure:
    """Decode rows x columns codes drawn from the prior z ~ N(0, I): new digits the model makes up."""
    figure = Figure(figsize=(columns * 0.8, rows * 0.8 + 0.5), layout="constrained")
    axis = figure.subplots()
    axis.imshow(_image_grid(vae.generate(rows * columns, seed), rows, columns), cmap="gray_r", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(
        f"{rows * columns} new digits decoded from z ~ N(0, I) (latent dimension {vae.latent_dim})"
    )
    return figure


def plot_latent_manifold(vae, n: int = 20, quantile_range: tuple[float, float] = (0.05, 0.95)) -> Figure:
    """Decode an n x n grid of 2-D codes at evenly spaced Normal quantiles, in one batched call."""
    if vae.latent_dim != 2:
        raise ValueError(
            f"plot_latent_manifold needs a 2-D latent space; this VAE has latent_dim={vae.latent_dim}."
        )
    low, high = quantile_range
    if not 0 < low < high < 1:
        raise ValueError(f"quantile_range={quantile_range} must satisfy 0 < low < high < 1.")
    normal = NormalDist()
    values = np.array([normal.inv_cdf(q) for q in np.linspace(low, high, n)], dtype="float32")
    z1, z2 = np.meshgrid(values, values[::-1])  # z2 grows upwards, like the y axis
    images = vae.decode_images(np.column_stack([z1.ravel(), z2.ravel()]))
    figure = Figure(figsize=(8, 8), layout="constrained")
    axis = figure.subplots()
    axis.imshow(_image_grid(images, n, n), cmap="gray_r", vmin=0, vmax=1, extent=(0, n, 0, n))
    # The tiles sit at Normal quantiles, not evenly in z: each tick names the code of its tile's centre.
    tiles = sorted({*range(0, n, max(1, n // 5)), n - 1})
    labels = [f"{values[tile]:.2f}" for tile in tiles]
    axis.set_xticks([tile + 0.5 for tile in tiles], labels)
    axis.set_yticks([tile + 0.5 for tile in tiles], labels)
    axis.set_xlabel("z[0] (at the tile's centre)")
    axis.set_ylabel("z[1] (at the tile's centre)")
    axis.set_title(f"The learned 2-D manifold: decoded codes at Normal quantiles {low:.2f}–{high:.2f}")
    return figure


# A colour per digit: Paul Tol's "muted" scheme and black. Every pair of digits stays apart (a
# CAM02-UCS distance of at least 11) in simulated deuteranopia, protanopia and tritanopia
# (tests/test_plots.py), where tab10's closest pair fell to 1.6; each cloud also carries its digit.
DIGIT_COLOURS = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE")
DIGIT_COLOURS += ("#882255", "#44AA99", "#999933", "#AA4499", "#000000")


def write_digits(axis, z_mean, labels, digits) -> None:
    """Write each digit at the median of its codes, outlined in white: a key that needs no colour."""
    for digit in digits:
        points = z_mean[labels == digit]
        if len(points):
            x, y = np.median(points[:, :2], axis=0)
            axis.text(x, y, str(digit), ha="center", va="center", fontsize=14, fontweight="bold",
                      color=DIGIT_COLOURS[digit], path_effects=[withStroke(linewidth=3, foreground="white")])


def plot_latent_scatter(z_mean, labels, title: str = "Test images in latent space (z_mean)") -> Figure:
    """Scatter the first two latent coordinates of encoded images, coloured by digit, with a legend."""
    z_mean, labels = np.asarray(z_mean), np.asarray(labels)
    if z_mean.ndim != 2 or z_mean.shape[1] < 2 or len(z_mean) != len(labels):
        raise ValueError(
            f"z_mean has shape {z_mean.shape} and labels {labels.shape}; expected (n, >=2) and (n,)."
        )
    figure = Figure(figsize=(7, 6), layout="constrained")
    axis = figure.subplots()
    for digit in range(10):
        points = z_mean[labels == digit]
        axis.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5, color=DIGIT_COLOURS[digit], label=str(digit))
    write_digits(axis, z_mean, labels, range(10))
    axis.legend(title="digit", markerscale=4, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axis.set_xlabel("z[0]")
    axis.set_ylabel("z[1]")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    return figure


def plot_interpolation(vae, z_start, z_end, steps: int = 10, endpoints=None) -> Figure:
    """Decode `steps` codes on the line from z_start to z_end, framed by the two originals if given."""
    if steps < 2:
        raise ValueError(f"steps={steps} must be at least 2.")
    z_start, z_end = np.asarray(z_start, "float32").ravel(), np.asarray(z_end, "float32").ravel()
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    images = vae.decode_images((1 - weights) * z_start + weights * z_end)
    column_labels = [f"t={w:.2f}" for w in weights.ravel()]
    if endpoints is not None:
        first, last = _as_images(endpoints, "endpoints")
        images = np.concatenate([first[None], images, last[None]])
        column_labels = ["original A", *column_labels, "original B"]
    return show_image_rows(
        [images],
        ["A → B"],
        title="Interpolation in latent space: z = (1 − t)·z_A + t·z_B",
        column_labels=column_labels,
    )


def plot_experiment_rows(rows: Sequence[Mapping], title: str) -> Figure:
    """Two panels for an experiment table: likelihood figures per model, and the loss split into its terms."""
    if not rows:
        raise ValueError("rows is empty; run at least one experiment first.")
    names = [row["name"] for row in rows]
    positions = np.arange(len(rows))
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.bar(positions - 0.2, [row["negative_elbo"] for row in rows], width=0.4, label="test −ELBO")
    left.bar(positions + 0.2, [-row["log_px"] for row in rows], width=0.4, label="−log p(x), IWAE")
    left.set_title("Likelihood figures (lower is better)")
    left.set_ylabel("nats per image")
    reconstruction = [row["reconstruction_loss"] for row in rows]
    right.bar(positions, reconstruction, label="reconstruction")
    right.bar(positions, [row["kl_loss"] for row in rows], bottom=reconstruction, label="KL")
    right.set_title("Test −ELBO split into its two terms")
    right.set_ylabel("nats per image")
    for axis in (left, right):
        axis.set_xticks(positions, names)
        axis.set_xlabel("model")
        axis.legend()
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(title)
    return figure


TRAVERSAL_VALUES = tuple(np.linspace(-3, 3, 9))


def _code_extent(z_mean, margin: float = 0.5) -> tuple[float, float, float, float]:
    """A square window over 2-D codes that also holds the prior's 3σ disc."""
    z_mean = np.asarray(z_mean)
    if z_mean.ndim != 2 or z_mean.shape[1] != 2:
        raise ValueError(f"z_mean has shape {z_mean.shape}; this figure needs 2-D codes (latent_dim=2).")
    half = max(3.0, float(np.percentile(np.abs(z_mean), 99.5))) + margin
    return (-half, half, -half, half)


def code_grid(z_mean, points: int = 120) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An even grid of 2-D codes (row by row, z[1] growing upwards) over the window `_code_extent` picks."""
    extent = _code_extent(z_mean)
    xs = np.linspace(extent[0], extent[1], points)
    ys = np.linspace(extent[3], extent[2], points)  # first row on top
    z1, z2 = np.meshgrid(xs, ys)
    return np.column_stack([z1.ravel(), z2.ravel()]).astype("float32"), extent


def _prior_circles(axis) -> None:
    angles = np.linspace(0, 2 * np.pi, 200)
    for radius in (1, 2, 3):
        axis.plot(radius * np.cos(angles), radius * np.sin(angles), color="black", lw=0.8, ls="--", alpha=0.7)


def plot_aggregate_posterior(log_q, log_p, extent) -> Figure:
    """Maps over a 2-D code grid: the aggregate posterior log q(z), and log q(z)/p(z) (holes: deep blue)."""
    log_q, log_p = np.asarray(log_q), np.asarray(log_p)
    side = int(round(np.sqrt(log_q.size)))
    if log_q.shape != log_p.shape or side * side != log_q.size:
        raise ValueError(
            f"log_q {log_q.shape} and log_p {log_p.shape} must be the same square grid (code_grid)."
        )
    figure = Figure(figsize=(12, 5), layout="constrained")
    left, right = figure.subplots(1, 2)
    shown = left.imshow(
        np.maximum(log_q, log_q.max() - 12).reshape(side, side), extent=extent, cmap="viridis"
    )
    figure.colorbar(shown, ax=left, label="log q(z) (nats)")
    left.set_title("Where the codes are: aggregate posterior q(z)")
    far = log_p < log_p.max() - 8  # |z| > 4: the prior has almost no mass there either
    ratio = np.where(far, np.nan, np.clip(log_q - log_p, -5, 5)).reshape(side, side)
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="lightgrey")
    shown = right.imshow(ratio, extent=extent, cmap=colours, vmin=-5, vmax=5)
    figure.colorbar(shown, ax=right, label="log q(z) − log p(z) (nats, clipped at ±5)")
    right.set_title(
        "Red: more codes than the prior expects; blue: fewer (deep blue, below −2.3: a hole)\n"
        "(grey: |z| > 4, where the prior has almost no mass)"
    )
    for axis in (left, right):
        _prior_circles(axis)
        axis.set_xlabel("z[0]")
        axis.set_ylabel("z[1]")
    figure.suptitle("Aggregate posterior against the prior N(0, I) (dashed: 1σ, 2σ, 3σ circles of the prior)")
    return figure


def plot_shared_regions(z_mean, labels, grid_digits, extent, groups=((4, 9), (3, 5, 8))) -> Figure:
    """Per group of digits: their codes over a map of where the decoder draws each (as the judge reads it)."""
    z_mean, labels, grid_digits = np.asarray(z_mean), np.asarray(labels), np.asarray(grid_digits)
    side = int(round(np.sqrt(grid_digits.size)))
    if side * side != grid_digits.size or len(z_mean) != len(labels):
        raise ValueError(
            "grid_digits must cover a square code_grid, and z_mean and labels must have one row per image."
        )
    digit_map = grid_digits.reshape(side, side)
    figure = Figure(figsize=(6 * len(groups), 5.5), layout="constrained")
    for axis, group in zip(np.atleast_1d(figure.subplots(1, len(groups))), groups):
        shade = np.zeros((side, side, 4))
        for digit in group:
            shade[digit_map == digit] = matplotlib.colors.to_rgba(DIGIT_COLOURS[digit])
        shade[..., 3] = np.where(np.isin(digit_map, group), 0.35, 0.0)
        axis.imshow(shade, extent=extent)
        for digit in group:
            points = z_mean[labels == digit]
            label = f"codes of {digit}s"
            axis.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5, color=DIGIT_COLOURS[digit], label=label)
        write_digits(axis, z_mean, labels, group)
        _prior_circles(axis)
        axis.set_xlim(extent[:2])
        axis.set_ylim(extent[2:])
        axis.set_xlabel("z[0]")
        axis.set_ylabel("z[1]")
        axis.legend(markerscale=4, loc="upper right")
        names = ", ".join(f"{digit}s" for digit in group[:-1]) + f" and {group[-1]}s"
        axis.set_title(f"{names}: codes (dots); shade: where the decoder draws each")
    return figure


def plot_bound_against_samples(
    samples: Sequence[int], negative_bounds: Sequence[float], negative_elbo: float
) -> Figure:
    """The IWAE bound's −log p(x) estimate against its number of samples K, beside the −ELBO, same images."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axis = figure.subplots()
    axis.plot(samples, negative_bounds, marker="o", label="−IWAE bound (K samples)")
    axis.axhline(negative_elbo, color="grey", ls="--", label="−ELBO (closed-form KL)")
    axis.set_xscale("log")
    axis.set_xlabel("K, importance samples per image (log scale)")
    axis.set_ylabel("nats per image (lower is tighter)")
    axis.set_title("How tight is the bound? The same test images, K = 1 … " + f"{max(samples):,}")
    axis.grid(alpha=0.3)
    axis.legend()
    return figure


def plot_dimension_kl(kl_by_model: Mapping[str, Sequence[float]]) -> Figure:
    """Each model's average KL per latent dimension, sorted from the most used down, on a log scale."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axis = figure.subplots()
    for name, kl in kl_by_model.items():
        values = np.sort(np.asarray(kl, dtype=float))[::-1]
        axis.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("latent dimension, sorted from the most used")
    axis.set_ylabel("average KL of the dimension (nats, log scale)")
    axis.set_title("How much each dimension is used")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    return figure


def plot_traversals(
    vae, anchor, dimensions: Sequence[int], values: Sequence[float] = TRAVERSAL_VALUES
) -> Figure:
    """Decode codes that move one latent dimension at a time through `values`, the others held at `anchor`."""
    values = np.asarray(values, "float32")
    anchor = np.asarray(anchor, "float32").ravel()
    if anchor.size != vae.latent_dim:
        raise ValueError(f"anchor has {anchor.size} numbers; this VAE's codes have {vae.latent_dim}.")
    rows = []
    for dimension in dimensions:
        codes = np.repeat(anchor[None], len(values), axis=0)
        codes[:, dimension] = values
        rows.append(vae.decode_images(codes))
    return show_image_rows(
        rows,
        [f"z[{dimension}]" for dimension in dimensions],
        title=f"Traversals (latent {vae.latent_dim}): one dimension moves, the others stay at the anchor",
        column_labels=[f"{value:+.1f}" for value in values],
    )
