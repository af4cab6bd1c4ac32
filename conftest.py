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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a notebook cell that writes to stderr: students read red text as breakage."""
    result = yield
    outputs = (item.test_outputs or []) if _is_notebook_cell(item) else []
    stderr = "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")
    if stderr:
        pytest.fail(f"the cell wrote to stderr:\n{stderr}", pytrace=False)
    return result
