"""ipywidgets explorers of a trained VAE: latent sliders, interpolation, reconstructions, samplers compared.

Each explorer decodes with `VAE.decode_images`, one compiled call per update (not
`model.predict`, whose per-call set-up costs tens of milliseconds), and shows PNG images in
`widgets.Image`.
`update()` does the work of one slider move and returns what it drew, so it can be tested
and timed without a browser.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import keras
import numpy as np
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from lab_utils.data import IMAGE_SIZE, check_images
from lab_utils.judge import read_digits
from lab_utils.latent import encode_means, sample_mixture
from lab_utils.losses import kl_divergence, reconstruction_loss
from lab_utils.models import prior_draws
from lab_utils.plots import plot_latent_scatter

SCALE = 6  # each MNIST pixel becomes SCALE x SCALE screen pixels


def to_png(pixels: np.ndarray, scale: int = SCALE) -> bytes:
    """Encode a grey image in [0, 1] (ink = 1) as PNG bytes, dark ink on white, scaled up."""
    grey = np.asarray(np.round(255 * (1 - np.clip(pixels, 0, 1))), dtype=np.uint8)
    picture = Image.fromarray(grey, mode="L")
    picture = picture.resize((grey.shape[1] * scale, grey.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _check_index(index, count: int, name: str = "index") -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ValueError(f"{name}={index!r} is out of range; pick an image index from 0 to {count - 1}.")
    return int(index)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def snapshot(widget: widgets.Widget) -> bytes:
    """A PNG of the pictures a widget shows now (each `widgets.Image` in it), side by side on white."""
    found, stack = [], [widget]
    while stack:
        current = stack.pop(0)
        if isinstance(current, widgets.Image) and current.value:
            found.append(Image.open(io.BytesIO(current.value)).convert("RGB"))
        stack[:0] = list(getattr(current, "children", ()))
    if not found:
        raise ValueError("this widget shows no picture to take a snapshot of.")
    gap = 12
    width = sum(picture.width for picture in found) + gap * (len(found) - 1)
    sheet = Image.new("RGB", (width, max(picture.height for picture in found)), "white")
    left = 0
    for picture in found:
        sheet.paste(picture, (left, 0))
        left += picture.width + gap
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


class _Explorer:
    """An explorer shows as its ipywidgets container, as a cell's value or through `display()`."""

    widget: widgets.Widget

    def _ipython_display_(self):
        """The widget and, in the same output, a PNG of what it shows now (`snapshot`).

        JupyterLab and Colab draw the live widget; what cannot run it (`vae-lab html`, a
        repository's notebook view, a PDF) shows the picture instead of nothing. The bundle is
        the one ipywidgets 7 and 8 display, with the picture added.
        """
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        picture = base64.b64encode(snapshot(self.widget)).decode("ascii")
        display({"text/plain": repr(self.widget)[:110], WIDGET_VIEW: view, "image/png": picture}, raw=True)
        displayed = getattr(self.widget, "_handle_displayed", None)  # ipywidgets 7: on_displayed callbacks
        if displayed is not None:
            displayed()


class _ScatterBackground:
    """A latent scatter rendered once; a marker is drawn on a copy for every update."""

    def __init__(self, z_mean, labels):
        figure = plot_latent_scatter(z_mean, labels, title="Slider position (red) among the test codes")
        figure.set_size_inches(5.0, 4.0)
        figure.set_dpi(80)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        self.picture = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
        self.axis = figure.axes[0]
        self.height = self.picture.height

    def png_with_marker(self, x: float, y: float) -> bytes:
        column, row = self.axis.transData.transform((x, y))
        row = self.height - row  # matplotlib counts pixels from the bottom
        picture = self.picture.copy()
        draw = ImageDraw.Draw(picture)
        draw.ellipse((column - 6, row - 6, column + 6, row + 6), outline=(220, 0, 0), width=3)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


class LatentExplorer(_Explorer):
    """A slider per latent dimension and the digit they decode to, updated as the sliders move.

    For a 2-D latent space the slider position is also marked on the scatter of the
    images' codes. For more dimensions, the first `n_sliders` dimensions get sliders and
    the rest stay at the code of `images[anchor_index]`. The sliders run over ±`limit`
    (default: wide enough for 99.5 % of the images' codes, at least ±3).
    """

    def __init__(
        self,
        vae,
        images=None,
        labels=None,
        anchor_index: int = 0,
        n_sliders: int = 4,
        limit: float | None = None,
        step: float = 0.05,
    ):
        self.vae = vae
        latent_dim = vae.latent_dim
        self.anchor = np.zeros(latent_dim, dtype="float32")
        self.codes = None
        if images is not None:
            images = check_images(images)
            self.codes, _ = encode_means(vae, images)
            self.anchor = self.codes[_check_index(anchor_index, len(images), "anchor_index")].copy()
        if limit is None:  # reach the codes the images use, and at least 3 prior standard deviations
            spread = 0.0 if self.codes is None else float(np.percentile(np.abs(self.codes), 99.5))
            limit = max(3.0, float(np.ceil(spread * 2) / 2))
        if limit <= 0 or step <= 0:
            raise ValueError(f"limit={limit} and step={step} must both be positive.")
        n_sliders = latent_dim if latent_dim <= 2 else min(n_sliders, latent_dim)
        self.sliders = [
            widgets.FloatSlider(
                value=float(np.clip(self.anchor[i], -limit, limit)),
                min=-limit,
                max=limit,
                step=step,
                description=f"z[{i}]",
                continuous_update=True,
                readout_format=".2f",
            )
            for i in range(n_sliders)
        ]
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="168px", height="168px"))
        self.scatter = None
        self._background = None
        if latent_dim == 2 and self.codes is not None and labels is not None:
            self._background = _ScatterBackground(self.codes, labels)
            self.scatter = widgets.Image(format="png")
        held = "" if n_sliders == latent_dim else f" (z[{n_sliders}:] held at image {anchor_index}'s code)"
        title = widgets.HTML(
            f"<b>Latent explorer</b>: move the sliders to decode a point of the latent space{held}"
        )
        for slider in self.sliders:
            slider.observe(self._on_slider, names="value")
        panels = [widgets.VBox([*self.sliders, self.image])]
        if self.scatter is not None:
            panels.append(self.scatter)
        self.widget = widgets.VBox([title, widgets.HBox(panels)])
        self.current = self.update()

    def code(self) -> np.ndarray:
        """Return the latent code the sliders point at."""
        z = self.anchor.copy()
        z[: len(self.sliders)] = [slider.value for slider in self.sliders]
        return z

    def update(self, values=None) -> np.ndarray:
        """Decode `values` (default: the sliders' values), refresh the images, return the decoded digit."""
        if values is None:
            z = self.code()
        else:
            z = np.asarray(values, dtype="float32")
            if z.shape != (len(self.sliders),):
                raise ValueError(
                    f"values has shape {z.shape}; give one value per slider: ({len(self.sliders)},)."
                )
            z = np.concatenate([z, self.anchor[len(self.sliders) :]])
        self.current = self.vae.decode_images(z)[0]
        self.image.value = to_png(self.current)
        if self._background is not None:
            self.scatter.value = self._background.png_with_marker(float(z[0]), float(z[1]))
        return self.current

    def _on_slider(self, change) -> None:
        self.update()


class InterpolationExplorer(_Explorer):
    """Two images A and B (by index, or by digit) and a slider t: decodes z = (1 − t)·z_A + t·z_B."""

    def __init__(self, vae, images, labels=None, start: int = 0, end: int = 1):
        self.vae = vae
        self.images = check_images(images)
        self.labels = None if labels is None else np.asarray(labels)
        self.codes, _ = encode_means(vae, self.images)
        last = len(self.images) - 1
        self.start = widgets.BoundedIntText(
            value=_check_index(start, len(self.images), "start"), min=0, max=last
        )
        self.end = widgets.BoundedIntText(value=_check_index(end, len(self.images), "end"), min=0, max=last)
        self.start.description, self.end.description = "image A", "image B"
        self.t = widgets.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.02, description="t", readout_format=".2f"
        )
        self.strip = widgets.Image(format="png")
        controls = [self.start, self.end]
        if self.labels is not None:
            self.start_digit = widgets.Dropdown(options=list(range(10)), value=None, description="A: digit")
            self.end_digit = widgets.Dropdown(options=list(range(10)), value=None, description="B: digit")
            self.start_digit.observe(lambda change: self.pick_digit("start", change["new"]), names="value")
            self.end_digit.observe(lambda change: self.pick_digit("end", change["new"]), names="value")
            controls = [
                widgets.VBox([self.start, self.start_digit]),
                widgets.VBox([self.end, self.end_digit]),
            ]
        for control in (self.start, self.end, self.t):
            control.observe(self._on_change, names="value")
        caption = widgets.HTML("<b>Interpolation explorer</b>: image A | decoded z at t | image B")
        self.widget = widgets.VBox([caption, widgets.HBox(controls), self.t, self.strip])
        self.current = self.update()

    def pick_digit(self, which: str, digit) -> None:
        """Point end `which` ('start' or 'end') at the first image of `digit` (after the current one)."""
        if digit is None:
            return
        if self.labels is None:
            raise ValueError("pick_digit needs labels; pass labels= to InterpolationExplorer.")
        if which not in ("start", "end"):
            raise ValueError(f"which={which!r} must be 'start' or 'end'.")
        matches = np.flatnonzero(self.labels == digit)
        if len(matches) == 0:
            raise ValueError(f"no image with label {digit!r}; labels run from 0 to 9.")
        current = getattr(self, which).value
        later = matches[matches > current]
        getattr(self, which).value = int(later[0] if len(later) else matches[0])

    def update(self, t: float | None = None) -> np.ndarray:
        """Decode the code at `t` (default: the slider) between images A and B; return the decoded digit."""
        t = self.t.value if t is None else t
        if not 0.0 <= t <= 1.0:
            raise ValueError(
                f"t={t!r} is out of range; interpolation runs from t=0 (image A) to t=1 (image B)."
            )
        a, b = self.start.value, self.end.value
        z = (1 - t) * self.codes[a] + t * self.codes[b]
        self.current = self.vae.decode_images(z)[0]
        strip = np.concatenate(
            [
                self.images[a].reshape(IMAGE_SIZE, IMAGE_SIZE),
                self.current,
                self.images[b].reshape(IMAGE_SIZE, IMAGE_SIZE),
            ],
            axis=1,
        )
        self.strip.value = to_png(strip)
        return self.current

    def _on_change(self, change) -> None:
        self.update()


class ReconstructionBrowser(_Explorer):
    """An index slider over images: the original, its reconstruction, z_mean and the two loss terms."""

    def __init__(self, vae, images, labels=None):
        self.vae = vae
        self.images = check_images(images)
        self.labels = None if labels is None else np.asarray(labels)
        self.codes, self.log_variances = encode_means(vae, self.images)
        self.kl = keras.ops.convert_to_numpy(kl_divergence(self.codes, self.log_variances))
        self.index = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image")
        self.pair = widgets.Image(format="png")
        self.facts = widgets.HTML()
        self.index.observe(lambda change: self.update(), names="value")
        caption = widgets.HTML(
            "<b>Reconstruction browser</b>: original (left) and reconstruction from z_mean"
        )
        self.widget = widgets.VBox([caption, self.index, widgets.HBox([self.pair, self.facts])])
        self.update()

    def update(self, index: int | None = None) -> dict:
        """Show image `index` (default: the slider's) and return its reconstruction and figures."""
        index = self.index.value if index is None else _check_index(index, len(self.images))
        original = self.images[index]
        reconstruction = self.vae.decode_images(self.codes[index])[0]
        bce = float(reconstruction_loss(original[None], reconstruction.reshape(1, -1))[0])
        z_mean, kl = self.codes[index], float(self.kl[index])
        result = {
            "index": index,
            "label": None if self.labels is None else int(self.labels[index]),
            "reconstruction": reconstruction,
            "z_mean": z_mean,
            "reconstruction_loss": bce,
            "kl_loss": kl,
        }
        self.pair.value = to_png(
            np.concatenate([original.reshape(IMAGE_SIZE, IMAGE_SIZE), reconstruction], axis=1)
        )
        shown_code = ", ".join(f"{value:.2f}" for value in z_mean[:8]) + (", …" if len(z_mean) > 8 else "")
        label = "" if result["label"] is None else f"digit {result['label']}<br>"
        self.facts.value = (
            f"<div style='padding-left:1em'>{label}z_mean = ({shown_code})<br>"
            f"reconstruction loss: {bce:.1f} nats<br>KL: {kl:.2f} nats<br>"
            f"their sum: {bce + kl:.1f} nats (decoded from z_mean, not the −ELBO,<br>"
            "which averages the reconstruction over codes drawn from q(z|x))</div>"
        )
        return result


class ConditionalGenerator(_Explorer):
    """Pick a digit: a conditional VAE draws new images of it from z ~ N(0, I); "new samples" redraws."""

    def __init__(self, vae, count: int = 8, seed: int = 0):
        if not getattr(vae, "conditional", False):
            raise ValueError(
                "ConditionalGenerator needs a ConditionalVAE (build_vae(architecture='conditional'))."
            )
        if count < 1:
            raise ValueError(f"count={count} must be at least 1.")
        self.vae, self.count = vae, count
        self.rng = np.random.default_rng(seed)
        self.digit = widgets.ToggleButtons(options=list(range(10)), value=0, description="digit")
        self.digit.style.button_width = "2.5em"
        self.redraw = widgets.Button(description="new samples", icon="refresh")
        self.strip = widgets.Image(format="png")
        self.digit.observe(lambda change: self.update(), names="value")
        self.redraw.on_click(lambda button: self.new_samples())
        caption = widgets.HTML(
            "<b>Conditional generator</b>: the same codes z, decoded as the digit you pick"
        )
        self.widget = widgets.VBox([caption, widgets.HBox([self.digit, self.redraw]), self.strip])
        self.new_samples()

    def new_samples(self) -> np.ndarray:
        """Draw new codes from the prior and redraw."""
        self.z = prior_draws(self.count, self.vae.latent_dim, self.rng)
        return self.update()

    def update(self, digit: int | None = None) -> np.ndarray:
        """Decode the current codes as `digit` (default: the selected one); return the images."""
        digit = self.digit.value if digit is None else digit
        if digit not in range(10):
            raise ValueError(f"digit={digit!r} must be one of 0-9.")
        self.current = self.vae.decode_images(self.z, np.full(self.count, digit))
        self.strip.value = to_png(np.concatenate(list(self.current), axis=1), scale=4)
        return self.current


PRIOR, MIXTURE = "prior N(0, I)", "mixture on μ(x)"


def _shares_png(shares: np.ndarray, data_shares: np.ndarray | None, title: str) -> bytes:
    """A bar per digit (its share of the generated images), with the data's shares as black ticks."""
    figure = Figure(figsize=(4.8, 2.8), dpi=80)
    axis = figure.add_subplot()
    digits = np.arange(10)
    axis.bar(digits, 100 * shares, color="tab:blue", label="generated")
    if data_shares is not None:
        axis.scatter(digits, 100 * data_shares, marker="_", s=300, color="black", label="test images")
        axis.legend(loc="upper right", ncol=2, fontsize=8, frameon=False)
    axis.set_xticks(digits)
    axis.set_xlabel("digit (the judge's reading)")
    axis.set_ylabel("share (%)")
    axis.set_ylim(0, max(30.0, 125 * float(shares.max())))  # head-room for the legend
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


class SamplerExplorer(_Explorer):
    """Pick a model and a sampler (the prior, or a mixture fitted to the codes); the digit shares redraw.

    Each choice decodes `count` codes and reads them with the classifier. "new draw" draws new
    codes (seed + the number of presses); the same model, sampler and draw always give the same
    codes, so switching back and forth compares like with like. `mixtures[name]` is
    `latent.fit_code_mixture`'s fit to that model's codes; `data_labels` (e.g. the test labels)
    adds the data's label shares.
    """

    def __init__(
        self,
        classifier,
        models: dict,
        mixtures: dict,
        count: int = 1000,
        seed: int = 0,
        data_labels=None,
        shown: int = 12,
    ):
        if not models or set(models) != set(mixtures):
            raise ValueError(
                f"models {sorted(models)} and mixtures {sorted(mixtures)} must name the same models, "
                "one fitted mixture per model."
            )
        if count < 1 or not 1 <= shown <= count:
            raise ValueError(f"count={count} and shown={shown}: need 1 <= shown <= count.")
        self.classifier, self.models, self.mixtures = classifier, dict(models), dict(mixtures)
        self.count, self.seed, self.shown, self.draw = count, seed, shown, 0
        self.data_shares = None
        if data_labels is not None:
            self.data_shares = np.bincount(np.asarray(data_labels), minlength=10) / len(data_labels)
        self._results: dict[tuple, dict] = {}
        self.model = widgets.Dropdown(options=list(self.models), description="model")
        self.sampler = widgets.ToggleButtons(options=[PRIOR, MIXTURE], description="sampler")
        self.redraw = widgets.Button(description="new draw", icon="refresh")
        self.chart = widgets.Image(format="png")
        self.strip = widgets.Image(format="png")
        self.facts = widgets.HTML()
        self.model.observe(lambda change: self.update(), names="value")
        self.sampler.observe(lambda change: self.update(), names="value")
        self.redraw.on_click(lambda button: self.new_draw())
        caption = widgets.HTML(
            f"<b>Sampler explorer</b>: {count:,} codes from the sampler, decoded and read by the judge"
        )
        self.widget = widgets.VBox(
            [
                caption,
                widgets.HBox([self.model, self.redraw]),
                self.sampler,
                widgets.HBox([self.chart, self.facts]),
                self.strip,
            ]
        )
        self.update()

    def codes(self, model: str, sampler: str) -> np.ndarray:
        """The codes the current draw decodes for `model` and `sampler`."""
        seed = self.seed + self.draw
        if sampler == PRIOR:
            return prior_draws(self.count, self.models[model].latent_dim, seed)
        return sample_mixture(self.mixtures[model], self.count, seed=seed)

    def new_draw(self) -> dict:
        """Draw new codes for every model and sampler, and redraw."""
        self.draw += 1
        return self.update()

    def update(self, model: str | None = None, sampler: str | None = None) -> dict:
        """Show `model` with `sampler` (default: the selected ones); return shares, confidence and images."""
        model = self.model.value if model is None else model
        sampler = self.sampler.value if sampler is None else sampler
        if model not in self.models:
            raise ValueError(f"model={model!r} is not one of {list(self.models)}.")
        if sampler not in (PRIOR, MIXTURE):
            raise ValueError(f"sampler={sampler!r} must be {PRIOR!r} or {MIXTURE!r}.")
        key = (model, sampler, self.draw)
        if key not in self._results:
            images = self.models[model].decode_images(self.codes(model, sampler))
            digits, confidence = read_digits(self.classifier, images.reshape(len(images), -1))
            self._results[key] = {
                "model": model,
                "sampler": sampler,
                "draw": self.draw,
                "shares": np.bincount(digits, minlength=10) / len(images),
                "mean_confidence": float(confidence.mean()),
                "images": images[: self.shown],
            }
        result = self._results[key]
        shares = result["shares"]
        self.chart.value = _shares_png(shares, self.data_shares, f"{model}, {sampler}, draw {self.draw}")
        self.strip.value = to_png(np.concatenate(list(result["images"]), axis=1), scale=3)
        commonest = np.argsort(shares)[::-1][:3]
        rarest = np.argsort(shares)[:3]
        self.facts.value = (
            "<div style='padding-left:1em'>"
            f"commonest: {', '.join(f'{d}s {shares[d]:.1%}' for d in commonest)}<br>"
            f"rarest: {', '.join(f'{d}s {shares[d]:.1%}' for d in rarest)}<br>"
            f"judge's mean confidence: {result['mean_confidence']:.2f}</div>"
        )
        return result
