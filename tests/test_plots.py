"""lab_utils.plots: each helper returns a titled, labelled Figure and rejects bad input clearly."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from matplotlib.figure import Figure

from lab_utils.losses import LOSS_TERMS
from lab_utils.plots import (
    code_grid,
    plot_aggregate_posterior,
    plot_bound_against_samples,
    plot_class_balance,
    plot_digit_bars,
    plot_dimension_kl,
    plot_experiment_rows,
    plot_interpolation,
    plot_latent_manifold,
    plot_latent_scatter,
    plot_loss_curves,
    plot_pixel_histogram,
    plot_shared_regions,
    plot_traversals,
    show_digits_per_class,
    show_image_rows,
    show_prior_samples,
    show_reconstructions,
)

HISTORY = {
    "loss": [200.0, 170.0, 160.0],
    "reconstruction_loss": [195.0, 164.0, 153.0],
    "kl_loss": [5.0, 6.0, 7.0],
    "val_loss": [180.0, 165.0, 161.0],
    "val_reconstruction_loss": [175.0, 159.0, 154.0],
    "val_kl_loss": [5.0, 6.0, 7.0],
}


def test_loss_curves_show_train_and_validation_for_each_term():
    figure = plot_loss_curves(HISTORY)
    assert isinstance(figure, Figure)
    axes = figure.axes
    assert [axis.get_title() for axis in axes] == list(LOSS_TERMS.values())  # the names the tables use
    for axis, key in zip(axes, ("loss", "reconstruction_loss", "kl_loss")):
        assert axis.get_xlabel() == "epoch" and axis.get_ylabel() == "nats per image"
        train, validation = axis.get_lines()
        assert list(train.get_xdata()) == [1, 2, 3]
        assert list(train.get_ydata()) == HISTORY[key]
        assert list(validation.get_ydata()) == HISTORY[f"val_{key}"]
    assert figure.get_suptitle()


def test_loss_curves_without_validation_plot_train_only():
    figure = plot_loss_curves({key: HISTORY[key] for key in ("loss", "reconstruction_loss", "kl_loss")})
    assert all(len(axis.get_lines()) == 1 for axis in figure.axes)


def test_loss_curves_reject_something_that_is_not_a_history():
    with pytest.raises(ValueError, match="'loss' entry"):
        plot_loss_curves([1, 2, 3])


def test_reconstruction_grid_puts_originals_over_reconstructions():
    rng = np.random.default_rng(0)
    originals, reconstructions = rng.random((12, 784)), rng.random((12, 28, 28))
    figure = show_reconstructions(originals, reconstructions, labels=np.arange(12) % 10, n=6)
    axes = np.asarray(figure.axes).reshape(2, 6)
    np.testing.assert_allclose(axes[0, 2].get_images()[0].get_array(), originals[2].reshape(28, 28))
    np.testing.assert_allclose(axes[1, 5].get_images()[0].get_array(), reconstructions[5])
    assert axes[0, 0].get_ylabel() == "original" and axes[1, 0].get_ylabel() == "reconstruction"
    assert axes[0, 3].get_title() == "digit 3"
    assert "reconstructions" in figure.get_suptitle()


def test_reconstruction_grid_errors_name_the_problem():
    with pytest.raises(ValueError, match="originals has shape \\(3, 10\\)"):
        show_reconstructions(np.zeros((3, 10)), np.zeros((3, 784)))
    with pytest.raises(ValueError, match="3 originals but 2 reconstructions"):
        show_reconstructions(np.zeros((3, 784)), np.zeros((2, 784)))


def test_digits_per_class_shows_one_labelled_row_per_digit():
    labels = np.tile(np.arange(10), 4)
    images = np.repeat(labels[:, None] / 10.0, 784, axis=1)
    figure = show_digits_per_class(images, labels, per_class=3)
    axes = np.asarray(figure.axes).reshape(10, 3)
    assert [axes[d, 0].get_ylabel() for d in range(10)] == [f"digit {d}" for d in range(10)]
    assert axes[7, 2].get_images()[0].get_array().mean() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="only 4 images of digit 0"):
        show_digits_per_class(images, labels, per_class=5)


def test_pixel_histogram_counts_every_pixel():
    images = np.zeros((3, 784))
    images[0, :10] = 1.0
    axis = plot_pixel_histogram(images).axes[0]
    heights = [patch.get_height() for patch in axis.patches]
    assert sum(heights) == 3 * 784 and heights[0] == 3 * 784 - 10 and heights[-1] == 10
    assert axis.get_xlabel() and axis.get_ylabel() and "3 images" in axis.get_title()


def test_class_balance_bars_match_the_counts():
    axis = plot_class_balance(np.array([0, 0, 1, 9]), np.array([1])).axes[0]
    heights = [patch.get_height() for patch in axis.patches]
    assert heights[:10] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1] and heights[10:] == [0, 1] + [0] * 8
    assert axis.get_xlabel() == "digit" and axis.get_ylabel() == "number of images"


@pytest.fixture(scope="module")
def vae():
    from lab_utils.models import build_vae

    return build_vae(latent_dim=2, hidden_units=(8,), jit_compile=False)


def test_prior_samples_are_a_grid_of_decoded_codes(vae):
    figure = show_prior_samples(vae, rows=2, columns=3, seed=5)
    picture = figure.axes[0].get_images()[0].get_array()
    assert picture.shape == (56, 84) and "6 new digits" in figure.axes[0].get_title()
    z = np.random.default_rng(5).standard_normal((6, 2))
    np.testing.assert_allclose(picture[28:, 56:], vae.decode_images(z)[5], atol=1e-6)


def test_manifold_decodes_the_quantile_grid_in_reading_order(vae):
    figure = plot_latent_manifold(vae, n=4, quantile_range=(0.1, 0.9))
    picture = figure.axes[0].get_images()[0].get_array()
    corner = NormalDist().inv_cdf(0.9)
    np.testing.assert_allclose(picture[:28, :28], vae.decode_images([[-corner, corner]])[0], atol=1e-5)
    np.testing.assert_allclose(picture[-28:, -28:], vae.decode_images([[corner, -corner]])[0], atol=1e-5)
    assert figure.axes[0].get_xlabel().startswith("z[0]") and figure.axes[0].get_ylabel().startswith("z[1]")
    with pytest.raises(ValueError, match="quantile_range"):
        plot_latent_manifold(vae, quantile_range=(0.0, 1.0))


def test_manifold_ticks_name_the_code_each_tile_decodes(vae):
    n, quantiles = 20, (0.01, 0.99)
    axis = plot_latent_manifold(vae, n=n, quantile_range=quantiles).axes[0]
    values = [NormalDist().inv_cdf(q) for q in np.linspace(*quantiles, n)]
    for ticks, labels in (
        (axis.get_xticks(), axis.get_xticklabels()),
        (axis.get_yticks(), axis.get_yticklabels()),
    ):
        assert len(ticks) >= 3
        for position, label in zip(ticks, labels):
            tile = int(position)  # tile i spans [i, i + 1): its centre carries the label
            assert position == tile + 0.5 and float(label.get_text()) == pytest.approx(
                values[tile], abs=0.006
            )
    # the quantiles are not evenly spaced in z: the tile 3/4 of the way across is far from 3/4 of the range
    assert values[15] < 0.6 * values[-1]


def test_manifold_needs_a_2d_latent_space():
    from lab_utils.models import build_vae

    with pytest.raises(ValueError, match="2-D latent space"):
        plot_latent_manifold(build_vae(latent_dim=3, hidden_units=(8,), jit_compile=False))


def test_latent_scatter_colours_each_digit_with_a_legend():
    z = np.random.default_rng(0).normal(size=(100, 2))
    figure = plot_latent_scatter(z, np.arange(100) % 10)
    axis = figure.axes[0]
    assert len(axis.collections) == 10 and [t.get_text() for t in axis.get_legend().get_texts()] == list(
        "0123456789"
    )
    assert axis.get_xlabel() and axis.get_ylabel() and axis.get_title()
    with pytest.raises(ValueError, match="expected \\(n, >=2\\)"):
        plot_latent_scatter(z[:, :1], np.arange(100))


def test_interpolation_starts_and_ends_at_the_two_codes(vae):
    start, end = np.array([-1.0, 0.5]), np.array([2.0, -1.0])
    originals = np.random.default_rng(0).random((2, 784))
    figure = plot_interpolation(vae, start, end, steps=5, endpoints=originals)
    axes = figure.axes
    assert len(axes) == 7 and axes[0].get_title() == "original A" and axes[-1].get_title() == "original B"
    np.testing.assert_allclose(axes[1].get_images()[0].get_array(), vae.decode_images([start])[0], atol=1e-6)
    np.testing.assert_allclose(axes[5].get_images()[0].get_array(), vae.decode_images([end])[0], atol=1e-6)
    np.testing.assert_allclose(
        axes[3].get_images()[0].get_array(), vae.decode_images([(start + end) / 2])[0], atol=1e-5
    )


def test_overlaid_pixel_histograms_and_digit_bars():
    figure = plot_pixel_histogram({"originals": np.zeros((2, 784)), "generated": np.ones((1, 784))})
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == [
        "originals (2)",
        "generated (1)",
    ]
    bars = plot_digit_bars({"a": range(10), "b": [1] * 10}, "title", "count").axes[0]
    assert [patch.get_height() for patch in bars.patches][:10] == list(range(10))
    with pytest.raises(ValueError, match="ten values"):
        plot_digit_bars({"a": [1, 2]}, "t", "y")


def test_experiment_rows_figure_shows_both_likelihood_figures_and_the_split():
    rows = [
        {"name": "a", "negative_elbo": 150.0, "log_px": -145.0, "reconstruction_loss": 144.0, "kl_loss": 6.0},
        {"name": "b", "negative_elbo": 100.0, "log_px": -96.0, "reconstruction_loss": 75.0, "kl_loss": 25.0},
    ]
    left, right = plot_experiment_rows(rows, "t").axes
    assert [p.get_height() for p in left.patches] == [150.0, 100.0, 145.0, 96.0]
    assert [p.get_height() for p in right.patches] == [144.0, 75.0, 6.0, 25.0]
    assert [t.get_text() for t in left.get_xticklabels()] == [
        "a",
        "b",
    ] and left.get_ylabel() == "nats per image"
    with pytest.raises(ValueError, match="rows is empty"):
        plot_experiment_rows([], "t")


def test_code_grid_runs_row_by_row_from_the_top_left_and_holds_the_prior():
    grid, extent = code_grid(np.array([[0.0, 0.0], [1.0, -1.0]]), points=5)
    assert grid.shape == (25, 2)
    assert extent[0] <= -3 and extent[1] >= 3
    np.testing.assert_allclose(grid[0], [extent[0], extent[3]])  # top left: smallest z[0], largest z[1]
    np.testing.assert_allclose(grid[4], [extent[1], extent[3]])
    with pytest.raises(ValueError, match="2-D codes"):
        code_grid(np.zeros((4, 3)))


def test_aggregate_posterior_maps_show_the_ratio_clipped_and_labelled():
    log_q = np.linspace(-20, 0, 16)
    figure = plot_aggregate_posterior(log_q, np.full(16, -5.0), (-3, 3, -3, 3))
    ratio = figure.axes[1].get_images()[0].get_array()
    assert ratio.shape == (4, 4) and ratio.min() == -5 and ratio.max() == 5
    assert all(axis.get_xlabel() == "z[0]" for axis in figure.axes[:2]) and figure.get_suptitle()
    with pytest.raises(ValueError, match="square grid"):
        plot_aggregate_posterior(np.zeros(15), np.zeros(15), (-3, 3, -3, 3))


def test_aggregate_posterior_leaves_where_the_prior_has_no_mass_out_of_the_blue():
    grid, extent = code_grid(np.zeros((2, 2)), points=9)  # corners beyond |z| = 4
    grid = grid * 6 / np.abs(grid).max()
    log_p = -0.5 * np.sum(grid**2, axis=1) - np.log(2 * np.pi)
    figure = plot_aggregate_posterior(log_p - 20, log_p, extent)  # codes nowhere: all ratios -20
    ratio = figure.axes[1].get_images()[0].get_array()
    far = (np.sum(grid**2, axis=1) > 16).reshape(9, 9)
    assert far.any() and (~far).any()
    assert np.ma.getmaskarray(ratio)[far].all() or np.isnan(np.asarray(ratio)[far]).all()
    assert (np.asarray(ratio)[~far] == -5).all()  # blue only where the prior has mass


def test_shared_regions_shade_only_the_pair_and_scatter_their_codes():
    grid, extent = code_grid(np.zeros((2, 2)), points=4)
    digits = np.array([4, 9, 1, 1] * 4)
    z_mean, labels = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 10
    figure = plot_shared_regions(z_mean, labels, digits, extent, groups=((4, 9),))
    shade = figure.axes[0].get_images()[0].get_array()
    assert (shade[:, 2:, 3] == 0).all() and (shade[:, :2, 3] > 0).all()  # 1s are not shaded
    assert len(figure.axes[0].collections) == 2 and figure.axes[0].get_title().startswith("4s and 9s")


def test_bound_plot_draws_the_bound_against_k_beside_the_elbo():
    figure = plot_bound_against_samples([1, 10, 100], [160.0, 158.0, 157.0], 161.0)
    bound, elbo = figure.axes[0].get_lines()
    assert list(bound.get_xdata()) == [1, 10, 100] and list(elbo.get_ydata()) == [161.0, 161.0]
    assert figure.axes[0].get_xscale() == "log"


def test_dimension_kl_is_sorted_from_the_most_used_dimension_per_model():
    figure = plot_dimension_kl({"a": [0.01, 2.0, 0.5], "b": np.array([1.0, 3.0])})
    first, second = figure.axes[0].get_lines()
    assert list(first.get_xdata()) == [1, 2, 3] and list(first.get_ydata()) == [2.0, 0.5, 0.01]
    assert list(second.get_ydata()) == [3.0, 1.0]
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == ["a", "b"]
    assert figure.axes[0].get_yscale() == "log"


def test_traversal_moves_one_dimension_and_keeps_the_others_at_the_anchor(vae):
    anchor = np.array([0.5, -0.5])
    figure = plot_traversals(vae, anchor, dimensions=[1], values=np.array([-1.0, 2.0]))
    second = figure.axes[1].get_images()[0].get_array()
    np.testing.assert_allclose(second, vae.decode_images([[0.5, 2.0]])[0], atol=1e-6)
    with pytest.raises(ValueError, match="anchor has 3 numbers"):
        plot_traversals(vae, np.zeros(3), dimensions=[0])


def test_image_rows_keep_long_row_labels_apart():
    """07's six rows are labelled like "latent 2 (lab model), mixture on μ(x)": stood on their side
    in a 1.25-inch row, such labels ran into each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    names = [f"latent {d} (lab model), {s}" for d in (2, 8, 20) for s in ("prior N(0, I)", "mixture on μ(x)")]
    figure = show_image_rows([np.zeros((10, 784))] * len(names), names, title="Ten digits")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    first_column = [axis for axis in figure.axes if axis.get_ylabel()]
    boxes = [axis.yaxis.label.get_window_extent(renderer) for axis in first_column]
    assert [axis.get_ylabel().replace("\n", " ") for axis in first_column] == names
    assert all("N(0, I)" in axis.get_ylabel() for axis in first_column[::2])  # not broken inside brackets
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower.y1 <= upper.y0, "row labels overlap"
    for box, axis in zip(boxes, first_column):
        assert (
            box.x1 <= axis.get_window_extent(renderer).x0 and box.x0 >= 0
        )  # beside the row, inside the figure


@pytest.mark.parametrize("deficiency", ["deuteranomaly", "protanomaly", "tritanomaly"])
def test_every_pair_of_digit_colours_stays_apart_for_colour_blind_students(deficiency):
    """The latent scatter's key is colour (and each cloud's digit, written at its centre): simulated at
    full severity, no two digits' colours come closer than 10 in CAM02-UCS (tab10: 1.6 in protanopia)."""
    colorspacious = pytest.importorskip("colorspacious")
    import itertools

    from matplotlib.colors import to_rgb

    from lab_utils.plots import DIGIT_COLOURS

    simulated = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
    seen = colorspacious.cspace_converter(simulated, "sRGB1")
    points = [colorspacious.cspace_convert(np.clip(seen(to_rgb(colour)), 0, 1), "sRGB1", "CAM02-UCS")
              for colour in DIGIT_COLOURS]
    pairs = itertools.combinations(enumerate(points), 2)
    closest = min((np.linalg.norm(a - b), i, j) for (i, a), (j, b) in pairs)
    assert len(DIGIT_COLOURS) == 10 and closest[0] >= 10, f"digits {closest[1:]} are {closest[0]:.1f} apart"


def test_the_latent_scatter_writes_each_digit_at_its_cloud():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    z_mean = np.c_[labels * 1.0, np.zeros(300)] + rng.normal(0, 0.05, (300, 2))
    figure = plot_latent_scatter(z_mean, labels)
    written = {text.get_text(): text.get_position() for text in figure.axes[0].texts}
    assert sorted(written) == [str(digit) for digit in range(10)]
    assert abs(written["7"][0] - 7.0) < 0.1
