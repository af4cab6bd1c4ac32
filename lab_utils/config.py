"""Run settings: fast mode for CI smoke runs, full mode for teaching runs."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vae_lab import RETRAIN_VARIABLE

MODE_VARIABLE = "VAE_LAB_MODE"
MODES = ("fast", "full")


@dataclass(frozen=True)
class RunConfig:
    """Sizes for one run of a notebook; fast mode changes only these, never the code path."""

    mode: str
    train_size: int | None
    epochs: int
    batch_size: int = 256
    seed: int = 42
    retrain: bool = False
    classifier_epochs: int = 2
    iwae_images: int = 1_000
    # `iwae_samples` is K for one model's log p(x) (notebooks 04, 06, 07); `experiment_iwae_samples`
    # is K for each of notebook 05's ten models, chosen with benchmarks/bench_iwae_samples.py
    # (its figures: benchmarks/README.md).
    iwae_samples: int = 1_000
    experiment_iwae_samples: int = 500
    compare_images: int = 10_000

    @property
    def fast(self) -> bool:
        return self.mode == "fast"

    @property
    def copy_check_images(self) -> int:
        """Images of each set searched for their nearest training image (the copying check).

        A fifth of `compare_images`: the search costs a matrix product against all 60,000
        training images per image, and 2,000 images give the mean and the closest 1 % (20 images).
        """
        return self.compare_images // 5


def run_mode() -> str:
    """Return 'fast' or 'full': VAE_LAB_MODE if set, else 'fast' under CI, else 'full'."""
    mode = os.environ.get(MODE_VARIABLE, "").strip().lower()
    if not mode:
        return "fast" if os.environ.get("CI") else "full"
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={mode!r} is not a run mode; set it to one of {MODES} or unset it.")
    return mode


def get_run_config(mode: str | None = None) -> RunConfig:
    """Return the run settings for `mode` (default: `run_mode()`); VAE_LAB_RETRAIN=1 forces training."""
    mode = run_mode() if mode is None else mode
    retrain = os.environ.get(RETRAIN_VARIABLE, "").strip().lower() in ("1", "true", "yes")
    if mode == "fast":
        return RunConfig(
            mode="fast",
            train_size=5_000,
            epochs=3,
            retrain=retrain,
            classifier_epochs=1,
            iwae_images=200,
            iwae_samples=100,
            experiment_iwae_samples=100,
            compare_images=1_000,
        )
    if mode == "full":
        return RunConfig(mode="full", train_size=None, epochs=10, retrain=retrain)
    raise ValueError(f"mode={mode!r} is not a run mode; use one of {MODES}.")
