"""This run's sizes as named constants, for a notebook's one setup line.

`from lab_utils.sizes import SEED, TEST_IMAGES` reads as the lesson's quantities; the values
come from the run mode (`config.get_run_config`): full mode for teaching, fast mode for CI.
"""

from lab_utils.config import get_run_config

_RUN = get_run_config()

MODE = _RUN.mode  # "full" or "fast"
SEED = _RUN.seed  # every seeded step: weights, shuffling, sampling
EPOCHS = _RUN.epochs
BATCH_SIZE = _RUN.batch_size
TRAIN_IMAGES = 60_000 if _RUN.train_size is None else _RUN.train_size  # the first ones of MNIST's 60,000
TEST_IMAGES = _RUN.compare_images  # the test images compared, judged and encoded
COPY_CHECK_IMAGES = _RUN.copy_check_images  # of each set, searched for their nearest training image
IWAE_IMAGES = _RUN.iwae_images  # test images for the IWAE estimate of log p(x)
IWAE_SAMPLES = _RUN.iwae_samples  # K, its samples per image
