"""Applies to every test, nbval's notebook cells included (tests/conftest.py holds the fixtures)."""

import os

import pytest


def _is_notebook_cell(item) -> bool:
    return type(item).__module__.startswith("nbval")


def pytest_collection_modifyitems(items):
    """Start nbval's kernels without PYTEST_CURRENT_TEST, so they forward what C++ code writes to stderr.

    ipykernel captures file descriptors 1 and 2 (where TensorFlow's C++ logs go) only when it
    does not find that variable; students' kernels always capture them.
    """
    for notebook in {item.parent for item in items if _is_notebook_cell(item)}:
        start_kernel = notebook.setup

        def setup(start_kernel=start_kernel):
            running = os.environ.pop("PYTEST_CURRENT_TEST", None)
            try:
                start_kernel()
            finally:
                if running is not None:
                    os.environ["PYTEST_CURRENT_TEST"] = running

        notebook.setup = setup


@pytest.fixture(autouse=True)
def _no_model_bundle(monkeypatch):
    """The unit tests choose their own models: a bundle given to a stack's notebooks (VAE_LAB_MODELS) is
    not theirs. (nbval's notebook cells are not pytest functions: they keep it.)"""
    monkeypatch.delenv("VAE_LAB_MODELS", raising=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a notebook cell that writes to stderr: students read red text as breakage.

    With VAE_LAB_TEST_NO_TRAINING=1 (a stack whose notebooks take their models from a bundle), a cell
    that trains and saves a model fails too: every model was to come from the bundle.
    """
    result = yield
    outputs = (item.test_outputs or []) if _is_notebook_cell(item) else []
    stderr = "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")
    if stderr:
        pytest.fail(f"the cell wrote to stderr:\n{stderr}", pytrace=False)
    stdout = "".join(output.get("text", "") for output in outputs if output.get("name") == "stdout")
    if os.environ.get("VAE_LAB_TEST_NO_TRAINING") == "1" and "Saved the trained model" in stdout:
        pytest.fail(f"the cell trained a model the bundle was to give:\n{stdout[-2000:]}", pytrace=False)
    return result
