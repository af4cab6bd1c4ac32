"""lab_utils.config: one switch for fast (CI) and full (teaching) runs, kept apart on disk."""

from __future__ import annotations

import pytest

from lab_utils.artifacts import artifacts_dir
from lab_utils.config import get_run_config, run_mode


def test_full_mode_is_the_default_for_students(monkeypatch):
    monkeypatch.delenv("VAE_LAB_MODE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert run_mode() == "full"
    config = get_run_config()
    assert config.train_size is None and config.epochs == 10 and not config.fast


def test_ci_means_fast_unless_the_mode_is_set(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("VAE_LAB_MODE", raising=False)
    assert run_mode() == "fast"
    monkeypatch.setenv("VAE_LAB_MODE", "full")
    assert run_mode() == "full"


def test_fast_mode_changes_only_sizes():
    fast, full = get_run_config("fast"), get_run_config("full")
    assert fast.train_size < 60_000 and fast.epochs < full.epochs
    assert (fast.batch_size, fast.seed) == (full.batch_size, full.seed)


def test_unknown_mode_is_named(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MODE", "turbo")
    with pytest.raises(ValueError, match="VAE_LAB_MODE='turbo'"):
        run_mode()


def test_fast_and_full_artifacts_never_share_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LAB_ARTIFACTS", str(tmp_path))
    assert artifacts_dir("fast") == tmp_path / "fast"
    assert artifacts_dir("full") == tmp_path / "full"


def test_retrain_switch(monkeypatch):
    monkeypatch.delenv("VAE_LAB_RETRAIN", raising=False)
    assert not get_run_config("full").retrain
    monkeypatch.setenv("VAE_LAB_RETRAIN", "1")
    assert get_run_config("fast").retrain
