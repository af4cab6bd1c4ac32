"""The VAE: a Sampling layer (reparameterisation trick), encoder and decoder builders, and the model."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from lab_utils.data import N_PIXELS
from lab_utils.losses import negative_elbo

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


def build_encoder(
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (512,),
    input_dim: int = N_PIXELS,
    seed: int | None = None,
) -> keras.Model:
    """Return the encoder x -> (z_mean, z_log_var, z): ReLU Dense layers, two linear heads, Sampling."""
    units = _check_sizes(latent_dim, hidden_units)
    inputs = keras.Input(shape=(input_dim,), name="image")
    hidden = inputs
    for index, size in enumerate(units, start=1):
        hidden = layers.Dense(size, activation="relu", name=f"hidden_{index}")(hidden)
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
    hidden = inputs
    for index, size in enumerate(reversed(units), start=1):
        hidden = layers.Dense(size, activation="relu", name=f"hidden_{index}")(hidden)
    outputs = layers.Dense(output_dim, activation="sigmoid", name="pixel_probabilities")(hidden)
    return keras.Model(inputs, outputs, name="decoder")


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """Encoder + decoder trained on the negative ELBO; logs loss, reconstruction_loss and kl_loss."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta={beta!r} must be >= 0 (1.0 is the plain VAE).")
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs, training=False):
        """Reconstruct images through the posterior mean (deterministic, for display and predict)."""
        z_mean, _, _ = self.encoder(inputs, training=training)
        return self.decoder(z_mean, training=training)

    def _compute_losses(self, images, training: bool):
        z_mean, z_log_var, z = self.encoder(images, training=training)
        reconstructions = self.decoder(z, training=training)
        return negative_elbo(images, reconstructions, z_mean, z_log_var, self.beta)

    def _record(self, loss, reconstruction, kl) -> dict:
        self.loss_tracker.update_state(loss)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self._compute_losses(images, training=True)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._record(loss, reconstruction, kl)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(*self._compute_losses(images, training=False))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder=encoder, decoder=decoder, **config)


def build_vae(
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (512,),
    beta: float = 1.0,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    jit_compile: bool = True,
    steps_per_execution: int = 64,
) -> VAE:
    """Return a compiled VAE (Adam) with the given sizes; (512,) and latent 2 is the lab's model.

    It trains with a plain `fit`, made fast on a CPU by two `compile` options: XLA
    compilation of the train and test steps (`jit_compile`, which Keras' "auto" leaves off
    on CPU), and `steps_per_execution` steps per call into TensorFlow, which removes most of
    the per-batch Python overhead (logs and callbacks then see every 64th batch).
    """
    vae = VAE(
        build_encoder(latent_dim, hidden_units, seed=seed),
        build_decoder(latent_dim, hidden_units),
        beta=beta,
        name="vae",
    )
    vae.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    vae.build((None, N_PIXELS))
    return vae
