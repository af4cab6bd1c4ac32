"""lab_utils.data: where MNIST is read from, what it looks like, and every way a file can be bad."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from lab_utils import data
from lab_utils.data import MNISTDataError, binarise, load_mnist, make_dataset, read_idx
from tests.conftest import write_idx


def test_idx_folder_loads_as_normalised_float_images(fake_mnist_dir):
    (x_train, y_train), (x_test, y_test) = load_mnist(fake_mnist_dir, verify=False)
    assert x_train.shape == (12, 784) and x_test.shape == (5, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    raw = read_idx(fake_mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(x_train, raw.reshape(12, 784).astype("float32") / 255)
    np.testing.assert_array_equal(y_test, read_idx(fake_mnist_dir / "t10k-labels-idx1-ubyte.gz"))


def test_flatten_false_keeps_28_by_28(fake_mnist_dir):
    (x_train, _), (x_test, _) = load_mnist(fake_mnist_dir, flatten=False, verify=False)
    assert x_train.shape == (12, 28, 28) and x_test.shape == (5, 28, 28)


def test_mnist_dir_environment_variable_is_used(fake_mnist_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(fake_mnist_dir))
    (x_train, _), _ = load_mnist(verify=False)
    assert len(x_train) == 12


def test_path_argument_wins_over_environment(fake_mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "elsewhere"))
    (x_train, _), _ = load_mnist(fake_mnist_dir, verify=False)
    assert len(x_train) == 12


def test_keras_npz_file_and_folder_load(fake_mnist_dir, tmp_path):
    (x_train, y_train), (x_test, y_test) = load_mnist(fake_mnist_dir, flatten=False, verify=False)
    npz = tmp_path / "npz" / "mnist.npz"
    npz.parent.mkdir()
    np.savez(
        npz,
        x_train=(x_train * 255).round().astype("uint8"),
        y_train=y_train,
        x_test=(x_test * 255).round().astype("uint8"),
        y_test=y_test,
    )
    for location in (npz, npz.parent):
        (a, b), (c, d) = load_mnist(location, verify=False)
        np.testing.assert_allclose(a, x_train.reshape(12, 784), atol=1e-6)
        np.testing.assert_array_equal(d, y_test)


def test_npz_checksum_is_verified(fake_mnist_dir, tmp_path):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=np.zeros((1, 28, 28), "uint8"))
    with pytest.raises(MNISTDataError, match="not the Keras mnist.npz"):
        load_mnist(npz)


def test_missing_folder_names_it_and_says_how_to_fix(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(MNISTDataError, match="does not exist") as error:
        load_mnist(missing)
    assert str(missing) in str(error.value) and "MNIST_DIR" in str(error.value)


def test_missing_file_is_named(fake_mnist_dir):
    (fake_mnist_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MNISTDataError, match="t10k-labels-idx1-ubyte.gz is missing"):
        load_mnist(fake_mnist_dir, verify=False)


def test_truncated_file_is_named(fake_mnist_dir):
    target = fake_mnist_dir / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:200])
    with pytest.raises(MNISTDataError, match="train-images-idx3-ubyte.gz is truncated"):
        load_mnist(fake_mnist_dir, verify=False)


def test_data_shorter_than_its_header_declares_is_caught(fake_mnist_dir):
    target = fake_mnist_dir / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(MNISTDataError, match="declares shape .12, 28, 28."):
        load_mnist(fake_mnist_dir, verify=False)


def test_not_gzip_is_caught(fake_mnist_dir):
    (fake_mnist_dir / "train-labels-idx1-ubyte.gz").write_text("<html>404 Not Found</html>")
    with pytest.raises(MNISTDataError, match="train-labels-idx1-ubyte.gz is truncated or is not a gzip"):
        load_mnist(fake_mnist_dir, verify=False)


def test_wrong_magic_number_is_named(fake_mnist_dir):
    write_idx(fake_mnist_dir / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)), magic=1234)
    with pytest.raises(MNISTDataError, match="magic number 1234, expected 2051"):
        load_mnist(fake_mnist_dir, verify=False)


def test_swapped_images_and_labels_are_caught(fake_mnist_dir):
    images = fake_mnist_dir / "train-images-idx3-ubyte.gz"
    labels = fake_mnist_dir / "train-labels-idx1-ubyte.gz"
    images_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_bytes)
    with pytest.raises(MNISTDataError, match="swapped"):
        load_mnist(fake_mnist_dir, verify=False)


def test_checksum_mismatch_is_reported_with_both_sums(fake_mnist_dir):
    with pytest.raises(MNISTDataError, match="not the published") as error:
        load_mnist(fake_mnist_dir)  # random images: well-formed IDX, wrong sha256
    assert data.IDX_FILES["train-images-idx3-ubyte.gz"] in str(error.value)


def test_no_internet_gives_a_clear_error(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception(  # what keras.utils.get_file raises when the host cannot be reached
            "URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
            "mnist.npz: None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(MNISTDataError, match="Keras download failed") as error:
        load_mnist()
    assert "MNIST_DIR" in str(error.value)


def test_make_dataset_batches_and_shuffles_reproducibly(random_images):
    batches = list(make_dataset(random_images, batch_size=100, seed=3).as_numpy_iterator())
    assert [len(batch) for batch in batches] == [100, 100, 56]
    again = list(make_dataset(random_images, batch_size=100, seed=3).as_numpy_iterator())
    np.testing.assert_array_equal(batches[0], again[0])
    assert not np.array_equal(batches[0], random_images[:100])
    ordered = next(make_dataset(random_images, batch_size=100, shuffle=False).as_numpy_iterator())
    np.testing.assert_array_equal(ordered, random_images[:100])


def test_make_dataset_reshuffles_every_epoch_and_keeps_every_image_once(random_images):
    dataset = make_dataset(random_images, batch_size=100, seed=3)
    first, second = (np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(2))
    assert not np.array_equal(first, second)
    every_image = sorted(image.tobytes() for image in random_images)
    for epoch in (first, second):  # each epoch is a permutation of the images
        assert sorted(image.tobytes() for image in epoch) == every_image


def test_batches_cover_the_images_with_a_smaller_last_batch(random_images):
    dataset = make_dataset(random_images, batch_size=30, seed=5)
    assert dataset.cardinality() == 9  # Keras' progress bar knows the epoch's length: 256 = 8 x 30 + 16
    assert [batch.shape for batch in dataset.as_numpy_iterator()] == [(30, 784)] * 8 + [(16, 784)]


def test_labels_stay_with_their_images(random_images):
    labels = np.arange(len(random_images))
    for images, digits in make_dataset(random_images, 64, seed=1, labels=labels).as_numpy_iterator():
        assert len(images) == len(digits) == 64
        np.testing.assert_array_equal(images, random_images[digits])


def test_make_dataset_rejects_bad_batch_size(random_images):
    with pytest.raises(ValueError, match="batch_size=0"):
        make_dataset(random_images, batch_size=0)


@pytest.mark.mnist
def test_real_mnist_has_the_published_sizes_and_checksums(real_mnist_dir):
    (x_train, y_train), (x_test, y_test) = load_mnist(real_mnist_dir)  # verify=True
    assert x_train.shape == (60_000, 784) and x_test.shape == (10_000, 784)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train).tolist()[:2] == [5923, 6742]
    assert np.bincount(y_test).sum() == 10_000


@pytest.mark.mnist
def test_real_file_with_one_flipped_byte_fails_its_checksum(real_mnist_dir, tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(real_mnist_dir, copy)
    target = copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MNISTDataError, match="t10k-labels-idx1-ubyte.gz has sha256"):
        load_mnist(copy)


def test_binarise_is_reproducible_for_a_fixed_test_set_and_keeps_the_grey_as_its_mean():
    grey = np.random.default_rng(7).random((2000, 784), dtype="float32")
    once, again, other = binarise(grey, seed=0), binarise(grey, seed=0), binarise(grey, seed=1)
    np.testing.assert_array_equal(once, again)  # the same test set every run
    assert set(np.unique(once)) == {0.0, 1.0} and not np.array_equal(once, other)
    assert once.mean() == pytest.approx(grey.mean(), abs=2e-3)  # P(pixel = 1) is its grey value
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarise(grey * 255)


def test_dynamic_binarisation_draws_fresh_pixels_every_epoch_and_keeps_labels():
    grey = np.full((64, 784), 0.5, dtype="float32")
    grey[:, :10] = 0.0  # pixels that are never ink
    labels = np.arange(64)

    def epoch(dataset):  # one pass, images put back in label order
        images, digits = (np.concatenate(part) for part in zip(*dataset.as_numpy_iterator()))
        return images[np.argsort(digits)]

    dataset = make_dataset(grey, batch_size=32, seed=2, labels=labels, binarise=True)
    first, second = epoch(dataset), epoch(dataset)
    assert set(np.unique(first)) == {0.0, 1.0} and not first[:, :10].any()
    assert 0.45 < first[:, 10:].mean() < 0.55
    assert (first != second).mean() > 0.4  # a new draw each epoch, not one binarised copy
    again = make_dataset(grey, batch_size=32, seed=2, labels=labels, binarise=True)
    np.testing.assert_array_equal(epoch(again), first)  # the same seed repeats the draws
