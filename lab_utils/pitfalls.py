"""The original lab's mistakes, kept runnable so notebook 02 can show what each one does to the logs."""

from __future__ import annotations

import keras
from keras import ops

from lab_utils.losses import kl_divergence, reconstruction_loss


class VAEWithoutTrackers(keras.Model):
    """Pitfall 3: train_step returns {"loss": loss} with no keras.metrics.Mean tracker (Keras 3)."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def call(self, inputs):
        return self.decoder(self.encoder(inputs)[2])

    def gradient_step(self, images):
        """One Adam step on the batch's mean negative ELBO, written as the original lab wrote it."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(images)
            loss = ops.mean(reconstruction_loss(images, self.decoder(z)) + kl_divergence(z_mean, z_log_var))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return loss

    def train_step(self, data):
        return {"loss": self.gradient_step(data)}


class VAEWithoutTestStep(VAEWithoutTrackers):
    """Pitfall 1: a custom train_step with a loss tracker but no test_step, as in the original lab."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        self.loss_tracker.update_state(self.gradient_step(data))
        return {"loss": self.loss_tracker.result()}


def averaged_kl(z_mean, z_log_var):
    """Pitfall 2: the original lab's KL, averaged over latent dimensions instead of summed."""
    return -0.5 * ops.mean(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
