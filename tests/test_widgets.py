"""lab_utils.widgets without a browser: moving a control changes the picture, and matches a direct decode."""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

from lab_utils.latent import encode_means, fit_code_mixture, sample_mixture
from lab_utils.models import build_vae
from lab_utils.widgets import (
    MIXTURE,
    PRIOR,
    ConditionalGenerator,
    InterpolationExplorer,
    LatentExplorer,
    ReconstructionBrowser,
    SamplerExplorer,
    to_png,
)


@pytest.fixture
def trained(trained_vae):
    return trained_vae


def _direct(vae, z) -> np.ndarray:
    """Decode one code with a plain Keras call, to check the explorers' compiled decoding against."""
    return np.asarray(vae.decoder(np.asarray(z, "float32")[None])).reshape(28, 28)


def _png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_png_is_dark_ink_on_white_and_scaled():
    pixels = np.zeros((28, 28))
    pixels[0, 0] = 1.0
    picture = _png_pixels(to_png(pixels, scale=3))
    assert picture.shape == (84, 84)
    assert picture[0, 0] == 0 and picture[2, 2] == 0 and picture[3, 3] == 255


def test_moving_a_latent_slider_redraws_the_decoded_digit(trained):
    vae, images, labels = trained
    explorer = LatentExplorer(vae, images, labels)
    assert len(explorer.sliders) == 2 and explorer.scatter is not None
    before_image, before_scatter = explorer.image.value, explorer.scatter.value
    explorer.sliders[0].value = 2.5
    explorer.sliders[1].value = -1.5
    assert explorer.image.value != before_image and explorer.scatter.value != before_scatter
    np.testing.assert_allclose(explorer.current, _direct(vae, [2.5, -1.5]), atol=1e-6)
    np.testing.assert_array_equal(
        _png_pixels(explorer.image.value)[::6, ::6], _png_pixels(to_png(explorer.current))[::6, ::6]
    )


def test_latent_explorer_for_more_dimensions_holds_the_rest_at_the_anchor_code():
    rng = np.random.default_rng(1)
    images = (rng.random((20, 784)) > 0.7).astype("float32")
    vae = build_vae(latent_dim=6, hidden_units=(16,), seed=0, jit_compile=False)
    explorer = LatentExplorer(vae, images, anchor_index=3, n_sliders=4)
    anchor = np.asarray(vae.encoder(images[3:4])[0])[0]
    assert len(explorer.sliders) == 4 and explorer.scatter is None
    explorer.sliders[2].value = 1.0
    expected = anchor.copy()
    expected[:4] = [slider.value for slider in explorer.sliders]
    np.testing.assert_allclose(explorer.code(), expected, atol=1e-6)
    np.testing.assert_allclose(explorer.current, _direct(vae, expected), atol=1e-6)


def test_latent_explorer_rejects_bad_values(trained):
    vae, images, labels = trained
    explorer = LatentExplorer(vae)
    with pytest.raises(ValueError, match="one value per slider"):
        explorer.update([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="anchor_index=99"):
        LatentExplorer(vae, images, anchor_index=99)
    with pytest.raises(ValueError, match="shape \\(5, 10\\)"):
        LatentExplorer(vae, np.zeros((5, 10)))


def test_interpolation_slider_decodes_the_mixed_code(trained):
    vae, images, labels = trained
    explorer = InterpolationExplorer(vae, images, labels, start=0, end=7)
    before = explorer.strip.value
    explorer.t.value = 0.8
    assert explorer.strip.value != before
    z_a, z_b = (np.asarray(vae.encoder(images[i : i + 1])[0])[0] for i in (0, 7))
    np.testing.assert_allclose(explorer.current, _direct(vae, 0.2 * z_a + 0.8 * z_b), atol=1e-5)
    explorer.end_digit.value = 3  # pick image B by digit
    assert labels[explorer.end.value] == 3
    with pytest.raises(ValueError, match="t=1.5 is out of range"):
        explorer.update(1.5)
    with pytest.raises(ValueError, match="end=60 is out of range"):
        InterpolationExplorer(vae, images, end=60)


def test_reconstruction_browser_shows_the_loss_terms_of_each_image(trained):
    vae, images, labels = trained
    browser = ReconstructionBrowser(vae, images, labels)
    before = browser.pair.value
    browser.index.value = 5
    assert browser.pair.value != before and "digit 5" in browser.facts.value
    result = browser.update(5)
    z_mean, z_log_var, _ = (np.asarray(t)[0] for t in vae.encoder(images[5:6]))
    np.testing.assert_allclose(result["reconstruction"], _direct(vae, z_mean), atol=1e-5)
    expected_kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var)
    assert result["kl_loss"] == pytest.approx(expected_kl, rel=1e-4)
    assert f"{result['reconstruction_loss']:.1f} nats" in browser.facts.value
    with pytest.raises(ValueError, match="index=-1 is out of range"):
        browser.update(-1)


def test_slider_range_reaches_the_codes_the_images_use(trained):
    vae, images, labels = trained
    explorer = LatentExplorer(vae, images, labels)
    reach = np.percentile(np.abs(explorer.codes), 99.5)
    assert explorer.sliders[0].max >= max(3.0, reach) and explorer.sliders[0].min == -explorer.sliders[0].max
    assert LatentExplorer(vae, limit=1.5).sliders[1].max == 1.5
    with pytest.raises(ValueError, match="limit=-1"):
        LatentExplorer(vae, limit=-1)


def test_conditional_generator_draws_the_picked_digit():
    rng = np.random.default_rng(2)
    images, labels = (rng.random((40, 784)) > 0.7).astype("float32"), np.arange(40) % 10
    cvae = build_vae(latent_dim=2, hidden_units=(16,), architecture="conditional", seed=0, jit_compile=False)
    cvae.fit(images, labels, epochs=1, batch_size=20, verbose=0)
    generator = ConditionalGenerator(cvae, count=4, seed=1)
    before = generator.strip.value
    generator.digit.value = 6
    assert generator.strip.value != before
    expected = np.asarray(cvae.decode(generator.z, np.full(4, 6))).reshape(4, 28, 28)
    np.testing.assert_allclose(generator.current, expected, atol=1e-6)
    old_codes = generator.z.copy()
    generator.redraw.click()
    assert not np.array_equal(generator.z, old_codes)
    with pytest.raises(ValueError, match="digit=12"):
        generator.update(12)
    with pytest.raises(ValueError, match="needs a ConditionalVAE"):
        ConditionalGenerator(build_vae(hidden_units=(8,), jit_compile=False))


def _reader(seed: int = 0):
    """A stand-in judge: a softmax over 10 digits of random weights (no training, no XLA)."""
    import keras

    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(
                10,
                activation="softmax",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=seed),
            ),
        ]
    )


def _sampler_explorer(trained, count=60):
    vae, images, labels = trained
    wide = build_vae(latent_dim=3, hidden_units=(8,), seed=1, jit_compile=False)
    models = {"lab": vae, "latent 3": wide}
    mixtures = {
        name: fit_code_mixture(encode_means(model, images)[0], components=2, seed=0)
        for name, model in models.items()
    }
    return SamplerExplorer(_reader(), models, mixtures, count=count, seed=4, data_labels=labels, shown=5)


def _shares(reader, vae, z) -> np.ndarray:
    predicted = reader.predict(vae.decode_images(z).reshape(len(z), -1), verbose=0).argmax(axis=1)
    return np.bincount(predicted, minlength=10) / len(z)


def test_sampler_explorer_reads_the_digits_of_the_picked_model_and_sampler(trained):
    explorer = _sampler_explorer(trained)
    vae = explorer.models["lab"]
    prior_codes = np.random.default_rng(4).standard_normal((60, 2)).astype("float32")
    first = explorer.update()
    assert (first["model"], first["sampler"], first["draw"]) == ("lab", PRIOR, 0)
    np.testing.assert_allclose(first["shares"], _shares(explorer.classifier, vae, prior_codes))
    assert first["images"].shape == (5, 28, 28)
    chart, strip = explorer.chart.value, explorer.strip.value

    explorer.sampler.value = MIXTURE  # as a click on the toggle does
    mixture_codes = sample_mixture(explorer.mixtures["lab"], 60, seed=4)
    shown = explorer.update()
    np.testing.assert_allclose(shown["shares"], _shares(explorer.classifier, vae, mixture_codes))
    np.testing.assert_allclose(shown["images"], vae.decode_images(mixture_codes[:5]), atol=1e-6)
    assert explorer.chart.value != chart and explorer.strip.value != strip

    explorer.model.value = "latent 3"
    assert explorer.update()["images"].shape == (5, 28, 28)
    assert explorer.codes("latent 3", PRIOR).shape == (60, 3)

    explorer.model.value, explorer.sampler.value = "lab", PRIOR
    assert explorer.update() is first  # the same draw again: the same codes, not a new sample
    explorer.redraw.click()
    assert explorer.draw == 1
    again = explorer.update()
    assert again["draw"] == 1 and not np.allclose(again["images"], first["images"])
    np.testing.assert_allclose(
        again["shares"],
        _shares(
            explorer.classifier, vae, np.random.default_rng(5).standard_normal((60, 2)).astype("float32")
        ),
    )


def test_sampler_explorer_names_a_bad_choice(trained):
    explorer = _sampler_explorer(trained, count=10)
    with pytest.raises(ValueError, match="model='latent 9'"):
        explorer.update(model="latent 9")
    with pytest.raises(ValueError, match="sampler='uniform'"):
        explorer.update(sampler="uniform")
    vae = trained[0]
    with pytest.raises(ValueError, match="one fitted mixture per model"):
        SamplerExplorer(_reader(), {"lab": vae}, {}, count=10)
    with pytest.raises(ValueError, match="shown=20"):
        SamplerExplorer(_reader(), {"lab": vae}, {"lab": explorer.mixtures["lab"]}, count=10, shown=20)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _explorers(trained) -> dict:
    vae, images, labels = trained
    cvae = build_vae(latent_dim=2, hidden_units=(8,), architecture="conditional", seed=0, jit_compile=False)
    return {
        "latent": LatentExplorer(vae, images, labels),
        "interpolation": InterpolationExplorer(vae, images, labels),
        "reconstruction": ReconstructionBrowser(vae, images, labels),
        "conditional": ConditionalGenerator(cvae, count=2),
        "sampler": _sampler_explorer(trained, count=10),
    }


@pytest.mark.parametrize("how", ["cell value", "display()"])
def test_every_explorer_displays_as_its_widget(trained, how):
    """IPython's display machinery shows the widget view on ipywidgets 7 (Colab) and 8 alike."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    for name, explorer in _explorers(trained).items():
        shell.user_ns["explorer"] = explorer
        with capture_output() as captured:
            if how == "cell value":
                shell.run_cell("explorer", store_history=False).raise_error()
            else:
                display(explorer)
        views = [output.data[WIDGET_VIEW] for output in captured.outputs if WIDGET_VIEW in output.data]
        assert [view["model_id"] for view in views] == [explorer.widget.model_id], (name, captured.stdout)
        assert not captured.stderr, (name, captured.stderr)
        assert "Error" not in captured.stdout, (name, captured.stdout)  # IPython prints a display's error
        # beside the view, a picture of the explorer now, for what cannot run a widget (an HTML export)
        output = next(output for output in captured.outputs if WIDGET_VIEW in output.data)
        picture = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"])))
        shown = [item for item in _all_children(explorer.widget) if isinstance(item, widgets.Image)]
        assert picture.width >= max(Image.open(io.BytesIO(item.value)).width for item in shown), name


def _all_children(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_children(child)
