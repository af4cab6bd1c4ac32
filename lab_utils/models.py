"""The VAE: a Sampling layer (reparameterisation trick), encoder and decoder builders, and the model."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from lab_utils.data import IMAGE_SIZE, N_PIXELS
from lab_utils.losses import check_likelihood, kl_per_dimension, negative_elbo

PACKAGE = "lab_utils"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """Draw z = z_mean + exp(0.5 * z_log_var) * epsilon with epsilon ~ N(0, I)."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _check_sizes(latent_dim: int, hidden_units: Sequence[int]) -> tuple[int, ...]:
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim={latent_dim!r} must be a positive integer, e.g. 2.")
    units = tuple(hidden_units)
    if not units or any(not isinstance(size, int) or size < 1 for size in units):
        raise ValueError(
            f"hidden_units={hidden_units!r} must be a non-empty sequence of positive integers, "
            "e.g. (512,) for the lab's code or (128, 64) for its pseudocode."
        )
    return units


def _dense_stack(inputs, units: tuple[int, ...]):
    hidden = inputs
    for index, size in enumerate(units, start=1):
        hidden = layers.Dense(size, activation="relu", name=f"hidden_{index}")(hidden)
    return hidden


def build_encoder(
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (512,),
    input_dim: int = N_PIXELS,
    seed: int | None = None,
) -> keras.Model:
    """Return the encoder x -> (z_mean, z_log_var, z): ReLU Dense layers, two linear heads, Sampling."""
    units = _check_sizes(latent_dim, hidden_units)
    inputs = keras.Input(shape=(input_dim,), name="image")
    hidden = _dense_stack(inputs, units)
    z_mean = layers.Dense(latent_dim, name="z_mean")(hidden)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(hidden)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (512,),
    output_dim: int = N_PIXELS,
) -> keras.Model:
    """Return the decoder z -> pixel probabilities: the hidden sizes in reverse, then a sigmoid layer."""
    units = _check_sizes(latent_dim, hidden_units)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    hidden = _dense_stack(inputs, tuple(reversed(units)))
    outputs = layers.Dense(output_dim, activation="sigmoid", name="pixel_probabilities")(hidden)
    return keras.Model(inputs, outputs, name="decoder")


def call_model(model: keras.Model, inputs, training: bool = False):
    """Call a one-input functional `model` on a tensor, in the input structure the model has.

    Keras 3.10 (Colab's) reloads such a model as taking a list of one tensor and warns at a
    bare tensor; newer Keras reloads it as taking the tensor and warns at the list.
    """
    return model([inputs] if isinstance(model.input, list) else inputs, training=training)


def prior_draws(count: int, latent_dim: int, seed=0) -> np.ndarray:
    """`count` codes z ~ N(0, I) of size `latent_dim`, float32; `seed` is an int or a NumPy Generator."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype("float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """Encoder + decoder trained on the negative ELBO; logs loss, reconstruction_loss and kl_loss.

    `likelihood` is how the decoder's pixel probabilities score an image: "bernoulli" (binary
    cross-entropy, the lab's) or "continuous_bernoulli" (a density on grey pixels).
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        beta: float = 1.0,
        likelihood: str = "bernoulli",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta={beta!r} must be >= 0 (1.0 is the plain VAE).")
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.likelihood = check_likelihood(likelihood)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self._compiled_decode = None  # made by the first decode_images call

    conditional = False  # a ConditionalVAE's encoder and decoder also take the digit label

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    @property
    def latent_dim(self) -> int:
        """The size of the latent code z."""
        return int(self.decoder.inputs[0].shape[-1])

    def encode(self, images, labels=None, training=False):
        """Return (z_mean, z_log_var, z) for `images` (`labels` is used by ConditionalVAE only)."""
        return call_model(self.encoder, images, training=training)

    def decode(self, z, labels=None, training=False):
        """Return the pixel probabilities for codes `z` (`labels` is used by ConditionalVAE only)."""
        return call_model(self.decoder, z, training=training)

    def decode_images(self, z, labels=None) -> np.ndarray:
        """Decode codes `z` (n, latent_dim) to (n, 28, 28) images; a ConditionalVAE also needs `labels`.

        One compiled call, so an explorer can redraw at every slider move.
        """
        import tensorflow as tf

        z = np.asarray(z, dtype="float32")
        z = z[None] if z.ndim == 1 else z
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z has shape {z.shape}; this VAE decodes codes of shape (n, {self.latent_dim})."
            )
        if not np.isfinite(z).all():
            raise ValueError(f"z contains NaN or infinite values: {z}.")
        if self.conditional and labels is None:
            raise ValueError("a ConditionalVAE decodes a code as a digit: pass labels, one per code.")
        labels = np.zeros(len(z), "int32") if labels is None else np.asarray(labels, "int32").reshape(-1)
        if len(labels) != len(z):
            raise ValueError(f"got {len(z)} codes but {len(labels)} labels; pass one label per code.")
        if self._compiled_decode is None:
            signature = [tf.TensorSpec((None, self.latent_dim), "float32"), tf.TensorSpec((None,), "int32")]
            self._compiled_decode = tf.function(
                lambda z, labels: self.decode(z, labels if self.conditional else None),
                input_signature=signature,
            )
        pixels = self._compiled_decode(z, labels)
        return np.asarray(pixels).reshape(len(z), IMAGE_SIZE, IMAGE_SIZE)

    def generate(self, count: int, seed: int = 0, labels=None) -> np.ndarray:
        """Decode `count` codes drawn from the prior N(0, I) to images; a ConditionalVAE needs `labels`."""
        return self.decode_images(prior_draws(count, self.latent_dim, seed), labels)

    def call(self, inputs, training=False):
        """Reconstruct images through the posterior mean (deterministic, for display and predict)."""
        images, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        z_mean, _, _ = self.encode(images, labels, training=training)
        return self.decode(z_mean, labels, training=training)

    def compute_losses(self, images, labels, training: bool):
        """A batch's negative ELBO, reconstruction term and KL term: encode, sample z, decode, score."""
        z_mean, z_log_var, z = self.encode(images, labels, training=training)
        reconstructions = self.decode(z, labels, training=training)
        return negative_elbo(images, reconstructions, z_mean, z_log_var, self.beta, self.likelihood)

    def _record(self, images, loss, reconstruction, kl) -> dict:
        """Add a batch's averages to the epoch's, weighted by its size (the last batch may be smaller)."""
        batch_size = ops.shape(images)[0]
        self.loss_tracker.update_state(loss, sample_weight=batch_size)
        self.reconstruction_loss_tracker.update_state(reconstruction, sample_weight=batch_size)
        self.kl_loss_tracker.update_state(kl, sample_weight=batch_size)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        """One Adam step on a batch: gradients of the negative ELBO through the sampled codes."""
        import tensorflow as tf

        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self.compute_losses(images, labels, training=True)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._record(images, loss, reconstruction, kl)

    def test_step(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(images, *self.compute_losses(images, labels, training=False))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "likelihood": self.likelihood,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder=encoder, decoder=decoder, **config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder also see the digit label (one-hot), so it can draw a chosen digit.

    Train it on (images, labels) pairs; its encoder takes [image, one-hot label] and its
    decoder [z, one-hot label].
    """

    conditional = True
    num_classes = 10

    def _one_hot(self, labels):
        if labels is None:
            raise ValueError("a ConditionalVAE needs labels: pass (images, labels), e.g. fit((x, y)).")
        return ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.num_classes)

    def encode(self, images, labels=None, training=False):
        return self.encoder([ops.convert_to_tensor(images), self._one_hot(labels)], training=training)

    def decode(self, z, labels=None, training=False):
        return self.decoder([ops.convert_to_tensor(z), self._one_hot(labels)], training=training)


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupFreeBitsVAE(VAE):
    """A VAE whose training loss has a KL warm-up and/or free bits, two remedies for unused dimensions.

    `kl_warmup_steps` raises the KL weight linearly from 0 to β over the first steps (Bowman et
    al. 2016), driven by the optimizer's step counter; `free_bits` charges each dimension's
    batch-averaged KL at least that many nats (Kingma et al. 2016). Validation and the logged
    `kl_loss` are the plain ELBO's.
    """

    def __init__(self, encoder, decoder, kl_warmup_steps: int = 0, free_bits: float = 0.0, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if not isinstance(kl_warmup_steps, int) or kl_warmup_steps < 0:
            raise ValueError(
                f"kl_warmup_steps={kl_warmup_steps!r} must be a whole number of steps >= 0 (0: none)."
            )
        if free_bits < 0:
            raise ValueError(f"free_bits={free_bits!r} must be >= 0 nats per dimension (0: none).")
        self.kl_warmup_steps = kl_warmup_steps
        self.free_bits = float(free_bits)

    def kl_weight(self):
        """The KL term's weight in the training loss at this step: β, reached linearly over the warm-up."""
        if not self.kl_warmup_steps:
            return self.beta
        done = ops.cast(self.optimizer.iterations + 1, "float32") / self.kl_warmup_steps
        return self.beta * ops.minimum(done, 1.0)

    def compute_losses(self, images, labels, training: bool):
        if not training:
            return super().compute_losses(images, labels, training)
        z_mean, z_log_var, z = self.encode(images, labels, training=True)
        reconstructions = self.decode(z, labels, training=True)
        _, reconstruction, kl = negative_elbo(
            images, reconstructions, z_mean, z_log_var, 1.0, self.likelihood
        )
        charged = ops.sum(ops.maximum(kl_per_dimension(z_mean, z_log_var), self.free_bits))
        return reconstruction + self.kl_weight() * charged, reconstruction, kl

    def get_config(self):
        return {**super().get_config(), "kl_warmup_steps": self.kl_warmup_steps, "free_bits": self.free_bits}


# Its name until issue 30: models saved before then name this class "lab_utils>RemediedVAE".
keras.saving.get_custom_objects()[f"{PACKAGE}>RemediedVAE"] = WarmupFreeBitsVAE


def build_conditional_encoder(
    latent_dim: int = 2, hidden_units: Sequence[int] = (512,), num_classes: int = 10, seed: int | None = None
) -> keras.Model:
    """Return the encoder [x, one-hot y] -> (z_mean, z_log_var, z) of a conditional VAE."""
    units = _check_sizes(latent_dim, hidden_units)
    image = keras.Input(shape=(N_PIXELS,), name="image")
    label = keras.Input(shape=(num_classes,), name="label")
    hidden = _dense_stack(layers.Concatenate(name="image_and_label")([image, label]), units)
    z_mean = layers.Dense(latent_dim, name="z_mean")(hidden)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(hidden)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model([image, label], [z_mean, z_log_var, z], name="encoder")


def build_conditional_decoder(
    latent_dim: int = 2, hidden_units: Sequence[int] = (512,), num_classes: int = 10
) -> keras.Model:
    """Return the decoder [z, one-hot y] -> pixel probabilities of a conditional VAE."""
    units = _check_sizes(latent_dim, hidden_units)
    z = keras.Input(shape=(latent_dim,), name="z")
    label = keras.Input(shape=(num_classes,), name="label")
    hidden = _dense_stack(layers.Concatenate(name="code_and_label")([z, label]), tuple(reversed(units)))
    outputs = layers.Dense(N_PIXELS, activation="sigmoid", name="pixel_probabilities")(hidden)
    return keras.Model([z, label], outputs, name="decoder")


def build_conv_encoder(latent_dim: int = 2, filters: tuple[int, int] = (16, 32), seed: int | None = None):
    """Return a convolutional encoder x (784) -> (z_mean, z_log_var, z): two stride-2 convolutions."""
    _check_sizes(latent_dim, filters)
    inputs = keras.Input(shape=(N_PIXELS,), name="image")
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Conv2D(filters[0], 3, strides=2, padding="same", activation="relu", name="conv_1")(x)
    x = layers.Conv2D(filters[1], 3, strides=2, padding="same", activation="relu", name="conv_2")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name="hidden_1")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_conv_decoder(latent_dim: int = 2, filters: tuple[int, int] = (16, 32)):
    """Return a convolutional decoder z -> 784 pixel probabilities: two stride-2 transposed convolutions."""
    _check_sizes(latent_dim, filters)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(7 * 7 * filters[1], activation="relu", name="hidden_1")(inputs)
    x = layers.Reshape((7, 7, filters[1]))(x)
    x = layers.Conv2DTranspose(filters[1], 3, strides=2, padding="same", activation="relu", name="deconv_1")(
        x
    )
    x = layers.Conv2DTranspose(filters[0], 3, strides=2, padding="same", activation="relu", name="deconv_2")(
        x
    )
    x = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels")(x)
    outputs = layers.Reshape((N_PIXELS,), name="pixel_probabilities")(x)
    return keras.Model(inputs, outputs, name="decoder")


def build_vae(
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (512,),
    beta: float = 1.0,
    learning_rate=1e-3,
    seed: int | None = None,
    architecture: str = "dense",
    likelihood: str = "bernoulli",
    jit_compile: bool | str | None = None,
    steps_per_execution: int = 64,
    kl_warmup_steps: int = 0,
    free_bits: float = 0.0,
) -> VAE:
    """Return a compiled VAE (Adam); dense (512,) with latent 2 is the lab's model.

    `architecture` is "dense" (the lab's), "conv" (convolutional encoder and decoder) or
    "conditional" (a ConditionalVAE: dense, and both networks also see the digit label).
    It trains with a plain `fit`, made fast on a CPU by two `compile` options: XLA
    compilation of the train and test steps (`jit_compile`, which Keras' "auto" leaves off
    on CPU), and `steps_per_execution` steps per call into TensorFlow, which removes most of
    the per-batch Python overhead (logs and callbacks then see every 64th batch).
    `jit_compile=None` means XLA for the dense models, and Keras' "auto" for "conv" (off on a
    CPU, where XLA ran the conv VAE's IWAE figures 2.3× slower and its training no faster).
    `learning_rate` may be a number or a Keras learning-rate schedule; `likelihood` is
    "bernoulli" (the lab's) or "continuous_bernoulli"; `kl_warmup_steps` or `free_bits` make it a
    `WarmupFreeBitsVAE`.
    """
    if architecture == "dense":
        model_class = VAE
        encoder = build_encoder(latent_dim, hidden_units, seed=seed)
        decoder = build_decoder(latent_dim, hidden_units)
    elif architecture == "conv":
        model_class = VAE
        encoder, decoder = build_conv_encoder(latent_dim, seed=seed), build_conv_decoder(latent_dim)
    elif architecture == "conditional":
        model_class = ConditionalVAE
        encoder = build_conditional_encoder(latent_dim, hidden_units, seed=seed)
        decoder = build_conditional_decoder(latent_dim, hidden_units)
    else:
        raise ValueError(f"architecture={architecture!r} is not one of 'dense', 'conv', 'conditional'.")
    remedies = {}
    if kl_warmup_steps or free_bits:
        if model_class is not VAE:
            raise ValueError(
                "kl_warmup_steps and free_bits are for the dense and conv VAEs, not the conditional one."
            )
        model_class = WarmupFreeBitsVAE
        remedies = {"kl_warmup_steps": kl_warmup_steps, "free_bits": free_bits}
    vae = model_class(encoder, decoder, beta=beta, likelihood=likelihood, name="vae", **remedies)
    vae.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        jit_compile=("auto" if architecture == "conv" else True) if jit_compile is None else jit_compile,
        steps_per_execution=steps_per_execution,
    )
    if architecture != "conditional":
        vae.build((None, N_PIXELS))
    else:
        vae([ops.zeros((1, N_PIXELS)), ops.zeros((1,), dtype="int32")])
    return vae
