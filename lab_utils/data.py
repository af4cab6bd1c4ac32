"""Load MNIST (a path, MNIST_DIR, or the Keras cache/download), verify it, and batch it with tf.data."""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

ENV_VARIABLE = "MNIST_DIR"
IMAGE_SIZE = 28
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE

# The published sha256 sums of the four original files (also in shared/data/mnist/SHA256SUMS).
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
NPZ_NAME = "mnist.npz"
# The sum Keras checks for its own mnist.npz download.
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

FIX_HINT = (
    "Point the kit at a good copy: pass path=... to load_mnist(), or set MNIST_DIR to a folder "
    "holding the four original IDX .gz files (train-images-idx3-ubyte.gz, ...) or a Keras mnist.npz."
)


class MNISTDataError(RuntimeError):
    """MNIST could not be found, read or verified; the message says which file and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Read one gzip-compressed IDX file (images or labels) into a uint8 array, checking its header."""
    path = Path(path)
    if not path.is_file():
        raise MNISTDataError(f"MNIST file {path} is missing. {FIX_HINT}")
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise MNISTDataError(
            f"MNIST file {path} is truncated or is not a gzip file ({err}). "
            f"Delete it and copy or download it again. {FIX_HINT}"
        ) from err
    if len(raw) < 8:
        raise MNISTDataError(f"MNIST file {path} is too short to hold an IDX header. {FIX_HINT}")
    magic = int.from_bytes(raw[0:4], "big")
    if magic == IMAGES_MAGIC:
        header_size, count_fields = 16, 3
    elif magic == LABELS_MAGIC:
        header_size, count_fields = 8, 1
    else:
        raise MNISTDataError(
            f"MNIST file {path} has magic number {magic}, expected {IMAGES_MAGIC} (images) or "
            f"{LABELS_MAGIC} (labels): it is not an IDX file. {FIX_HINT}"
        )
    if len(raw) < header_size:
        raise MNISTDataError(f"MNIST file {path} has a cut-off IDX header. {FIX_HINT}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(count_fields))
    expected_bytes = int(np.prod(shape))
    if len(raw) - header_size != expected_bytes:
        raise MNISTDataError(
            f"MNIST file {path} declares shape {shape} ({expected_bytes} bytes of data) but holds "
            f"{len(raw) - header_size}: the file is truncated or corrupt. {FIX_HINT}"
        )
    if expected_sha256 is not None:
        actual = _sha256(path)
        if actual != expected_sha256:
            raise MNISTDataError(
                f"MNIST file {path} has sha256 {actual}, not the published {expected_sha256}: "
                f"it is not the original file. {FIX_HINT}"
            )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _load_idx_folder(folder: Path, verify: bool) -> tuple:
    arrays = {name: read_idx(folder / name, IDX_FILES[name] if verify else None) for name in IDX_FILES}
    x_train, y_train = arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"]
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1:
            raise MNISTDataError(
                f"MNIST {split} files in {folder} are swapped or mislabelled: images have shape "
                f"{images.shape}, labels {labels.shape}. {FIX_HINT}"
            )
        if len(images) != len(labels):
            raise MNISTDataError(
                f"MNIST {split} files in {folder} disagree: {len(images)} images but "
                f"{len(labels)} labels. {FIX_HINT}"
            )
    return (x_train, y_train), (x_test, y_test)


def _load_npz(path: Path, verify: bool) -> tuple:
    if verify and _sha256(path) != NPZ_SHA256:
        raise MNISTDataError(
            f"{path} is not the Keras mnist.npz (its sha256 differs from {NPZ_SHA256}). {FIX_HINT}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise MNISTDataError(f"{path} could not be read as a Keras mnist.npz ({err}). {FIX_HINT}") from err
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _load_from(location: Path, verify: bool, origin: str) -> tuple:
    if location.is_file() and location.suffix == ".npz":
        return _load_npz(location, verify)
    if not location.exists():
        raise MNISTDataError(f"MNIST folder {location} (from {origin}) does not exist. {FIX_HINT}")
    if not location.is_dir():
        raise MNISTDataError(f"{location} (from {origin}) is neither a folder nor a .npz file. {FIX_HINT}")
    if (location / NPZ_NAME).is_file() and not (location / next(iter(IDX_FILES))).exists():
        return _load_npz(location / NPZ_NAME, verify)
    return _load_idx_folder(location, verify)


def _download_with_keras() -> tuple:
    import keras

    try:
        return keras.datasets.mnist.load_data()
    except Exception as err:  # Keras raises a bare Exception for network failures.
        raise MNISTDataError(
            f"MNIST is not on this machine and the Keras download failed ({err}). "
            f"On a machine without internet: {FIX_HINT}"
        ) from err


def _normalise(images: np.ndarray, labels: np.ndarray, flatten: bool) -> tuple:
    images = images.astype("float32") / 255.0
    if flatten:
        images = images.reshape(len(images), -1)
    return images, labels.astype("uint8")


def load_mnist(path: str | os.PathLike | None = None, flatten: bool = True, verify: bool = True) -> tuple:
    """Return MNIST as ((x_train, y_train), (x_test, y_test)): float32 pixels in [0, 1], uint8 labels.

    Images are flattened to 784 values unless `flatten=False` (then 28x28). MNIST is read
    from `path`, else from the folder or file in the MNIST_DIR environment variable, else
    through `keras.datasets.mnist` (its cache, or a download). `verify` checks the
    published sha256 sums.
    """
    if path is not None:
        train, test = _load_from(Path(path).expanduser(), verify, origin="the path argument")
    elif os.environ.get(ENV_VARIABLE):
        location = Path(os.environ[ENV_VARIABLE]).expanduser()
        train, test = _load_from(location, verify, origin=f"${ENV_VARIABLE}")
    else:
        train, test = _download_with_keras()
    return _normalise(*train, flatten), _normalise(*test, flatten)


def check_images(images, name: str = "images") -> np.ndarray:
    """Return `images` as float32 (n, 784) after checking their shape and range; (n, 28, 28) is flattened."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3 and images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        images = images.reshape(len(images), N_PIXELS)
    if images.ndim != 2 or images.shape[1] != N_PIXELS:
        raise ValueError(
            f"{name} has shape {images.shape}; expected images of shape (n, {N_PIXELS}) or (n, 28, 28), "
            "as load_mnist() returns them."
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty; pass at least one image.")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise ValueError(
            f"{name} has pixel values in [{low}, {high}]; scale them to [0, 1] (divide uint8 images "
            "by 255) for the Bernoulli decoder."
        )
    return images


def binarise(images, seed: int = 0) -> np.ndarray:
    """Return a binary copy of grey `images`: each pixel is 1 with probability equal to its grey value.

    With a fixed `seed` the copy is the same every time, as a test set must be.
    """
    images = check_images(images)
    return (np.random.default_rng(seed).random(images.shape, dtype="float32") < images).astype("float32")


def make_dataset(
    images: np.ndarray,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int | None = None,
    labels: np.ndarray | None = None,
    binarise: bool = False,
):
    """Return a tf.data pipeline of image batches, or (images, labels) batches if `labels` is given.

    Each epoch draws a new order of the image indices and gathers each batch from one tensor
    of images; autotune is off because its per-epoch teardown stalls epochs on a 2-core CPU.
    With `binarise`, every batch is a fresh binary draw of its grey images (dynamic
    binarisation: a pixel is 1 with probability equal to its grey value).
    """
    import tensorflow as tf

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be a positive integer.")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels; pass one label per image.")
    count = len(images)
    if count == 0:
        raise ValueError("images is empty; pass at least one image.")
    if shuffle:  # a new seed, hence a new order, every time the dataset is iterated: every epoch
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        order = seeds.map(
            lambda draw: tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype="int64"), seed=tf.stack([draw, 0])
            )
        )
    else:
        order = tf.data.Dataset.from_tensors(tf.range(count, dtype="int64"))
    batches = order.flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
    batches = batches.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    pixels = tf.constant(np.asarray(images, dtype="float32"))

    def gather(batch, draw):
        grey = tf.gather(pixels, batch)
        if not binarise:
            return grey
        noise = tf.random.stateless_uniform(tf.shape(grey), seed=tf.stack([draw, 1]))
        return tf.cast(noise < grey, "float32")

    draws = tf.data.Dataset.random(seed=None if seed is None else seed + 1, rerandomize_each_iteration=True)
    batches = tf.data.Dataset.zip((batches, draws))
    if labels is None:
        dataset = batches.map(gather)
    else:
        digits = tf.constant(np.asarray(labels, dtype="int32"))
        dataset = batches.map(lambda batch, draw: (gather(batch, draw), tf.gather(digits, batch)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(2).with_options(options)
