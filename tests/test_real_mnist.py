"""The lab model on real MNIST (from MNIST_DIR): validation losses are real figures."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae

pytestmark = pytest.mark.mnist


def test_one_epoch_on_2000_images_logs_a_real_val_loss(real_mnist):
    (x_train, _), (x_test, _) = real_mnist
    set_seed(0)
    vae = build_vae(latent_dim=2, hidden_units=(512,))
    history = train_vae(vae, x_train[:2000], x_test, epochs=1, batch_size=256, verbose=0)
    logs = {key: values[0] for key, values in history.items()}
    assert logs["val_loss"] > 100  # nats per image; the original lab printed 0.0000
    assert logs["val_loss"] == pytest.approx(logs["val_reconstruction_loss"] + logs["val_kl_loss"], rel=1e-5)
    assert logs["val_kl_loss"] > 0
    # an untrained model is at about 784 * log 2 = 543 nats; one epoch must beat it
    assert logs["val_loss"] < 543
    assert np.isfinite(list(logs.values())).all()


def test_fast_default_path_learns_like_plain_fit(real_mnist):
    (x_train, _), (x_test, _) = real_mnist
    final = {}
    for name, options in {"plain": {"jit_compile": False, "steps_per_execution": 1}, "fast": {}}.items():
        set_seed(1)
        vae = build_vae(latent_dim=2, hidden_units=(512,), **options)
        history = train_vae(vae, x_train[:6000], x_test[:2000], epochs=3, seed=1, verbose=0)
        final[name] = history["val_loss"][-1]
    # The two paths draw different noise, so they end apart: by up to 2.2 % over 20 seeds on
    # 2026-12-03. Plain fit with a third of the steps (2 epochs, not 3) ends 7 % higher (212.7 vs 198.8).
    assert final["fast"] == pytest.approx(final["plain"], rel=0.04)
