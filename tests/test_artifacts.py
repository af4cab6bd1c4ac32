"""lab_utils.artifacts under real faults: two runs at once, damaged files, a killed run, a read-only kit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lab_utils.artifacts import ARTIFACTS_VARIABLE as VARIABLE
from lab_utils.artifacts import artifacts_dir, record_path, shown_path
from lab_utils.models import build_vae
from lab_utils.training import train_or_load

REPO = Path(__file__).resolve().parent.parent

# A child process that trains (or loads) a tiny VAE at PATH, pausing PAUSE seconds per epoch.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import keras, numpy as np
    import lab_utils.training as training
    from lab_utils.models import build_vae

    path, epochs, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    go = sys.argv[4] if len(sys.argv) > 4 else None

    class Pause(keras.callbacks.Callback):  # a slow epoch, so that the other process finds it running
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(pause)
            deadline = time.monotonic() + 300
            while go and not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.1)  # hold the lock until the test has seen the other process wait

    fit = training.train_vae
    training.train_vae = lambda *args, **kwargs: fit(*args, **kwargs, callbacks=[Pause()])
    images = (np.random.default_rng(0).random((256, 784)) > 0.7).astype("float32")
    build = lambda: build_vae(latent_dim=2, hidden_units=(8,), seed=0, jit_compile=False)
    result = training.train_or_load(build, path, images, epochs=epochs, batch_size=64, seed=0, verbose=2)
    print("HISTORY", len(result.history["loss"]), result.history["loss"][-1], flush=True)
    """
)


def _start(path: Path, epochs: int, pause: float, go: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(path), str(epochs), str(pause), *([str(go)] if go else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_second_process_waits_for_the_first_then_loads_its_model(tmp_path):
    path = tmp_path / "vae.keras"
    go = tmp_path / "go"  # the first run holds its lock after each epoch until this file exists
    first = _start(path, epochs=4, pause=0.5, go=go)
    log = tmp_path / "vae_checkpoints" / "history.csv"
    _wait_for(lambda: log.is_file(), 120, "the first run to finish an epoch")
    second = _start(path, epochs=4, pause=0.5)
    seen = []
    for line in second.stdout:  # however slowly it starts, the second run must find the lock held
        seen.append(line)
        if "waiting for it to finish" in line:
            break
    go.touch()
    outputs = [first.communicate(timeout=300)[0], "".join(seen) + second.communicate(timeout=300)[0]]
    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    trained = [output for output in outputs if "Saved the trained model" in output]
    waited = [output for output in outputs if "waiting for it to finish" in output]
    assert len(trained) == 1 and len(waited) == 1, outputs
    assert "Loaded the trained model" in waited[0] and "Epoch 1/4" not in waited[0]
    histories = [line for output in outputs for line in output.splitlines() if line.startswith("HISTORY")]
    assert len(histories) == 2 and histories[0] == histories[1]  # both got the one model that was saved
    assert histories[0].split()[1] == "4"


def _train(path: Path, random_images, epochs: int = 1):
    def build():
        return build_vae(latent_dim=2, hidden_units=(8,), seed=0, jit_compile=False)

    return train_or_load(build, path, random_images, epochs=epochs, batch_size=64, seed=0, verbose=0)


@pytest.mark.parametrize(
    "damage",
    ["truncated", "empty", "foreign"],
)
def test_a_damaged_model_is_moved_aside_and_trained_again(damage, random_images, tmp_path, capsys):
    path = tmp_path / "vae.keras"
    _train(path, random_images)
    good = path.read_bytes()
    damaged = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "foreign": b"\x89PNG\r\n\x1a\n not a model",
    }[damage]
    path.write_bytes(damaged)
    capsys.readouterr()
    result = _train(path, random_images)
    said = capsys.readouterr().out
    assert f"{path} could not be read" in said and "moved it to vae.keras.damaged" in said
    assert (tmp_path / "vae.keras.damaged").read_bytes() == damaged  # kept as it was, for the user to see
    assert "Saved the trained model" in said and len(result.history["loss"]) == 1
    assert result.model.predict(random_images[:2], verbose=0).shape == (2, 784)
    _train(path, random_images)
    assert "Loaded the trained model" in capsys.readouterr().out


def test_a_damaged_record_is_moved_aside_and_a_second_damage_does_not_overwrite_the_first(
    random_images, tmp_path, capsys
):
    path = tmp_path / "vae.keras"
    _train(path, random_images)
    for damage in ('{"settings": {"epochs"', "[1, 2]"):
        record_path(path).write_text(damage)
        _train(path, random_images)
    said = capsys.readouterr().out
    assert said.count("could not be read") == 2
    assert (tmp_path / "vae.record.json.damaged").read_text() == '{"settings": {"epochs"'
    assert (tmp_path / "vae.record.json.damaged.2").read_text() == "[1, 2]"
    assert json.loads(record_path(path).read_text())["settings"]["epochs"] == 1


def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path, random_images, capsys):
    path = tmp_path / "vae.keras"
    run = _start(path, epochs=6, pause=1.0)
    log = tmp_path / "vae_checkpoints" / "history.csv"
    _wait_for(lambda: log.is_file() and len(log.read_text().splitlines()) >= 3, 120, "two finished epochs")
    run.send_signal(signal.SIGKILL)  # as a kernel killed mid-run: no clean-up at all
    run.wait(timeout=30)
    finished = len(log.read_text().splitlines()) - 1
    assert 2 <= finished < 6 and not path.exists()

    def build():
        return build_vae(latent_dim=2, hidden_units=(8,), seed=0, jit_compile=False)

    images = (np.random.default_rng(0).random((256, 784)) > 0.7).astype("float32")  # the child's images
    result = train_or_load(build, path, images, epochs=6, batch_size=64, seed=0, verbose=2)
    said = capsys.readouterr().out
    assert "Epoch 1/6" not in said and "Epoch 6/6" in said  # only the unfinished epochs ran
    assert len(result.history["loss"]) == 6 and path.is_file()


def _can_mount_read_only() -> bool:
    """Whether this user may make a mount namespace (root may), for a read-only view of the kit."""
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-m", "true"]).returncode == 0


@pytest.mark.skipif(not _can_mount_read_only(), reason="needs unshare -m (root) for a read-only mount")
def test_a_read_only_kit_keeps_its_models_in_the_users_data_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    script = "from lab_utils.artifacts import artifacts_dir; print(artifacts_dir('fast'))"
    # The kit's folder is mounted read-only, as a system-wide install or a read-only share would be.
    read_only = f"mount --bind {REPO} {REPO} && mount -o remount,bind,ro {REPO}"
    command = f'{read_only} && exec {sys.executable} -c "{script}"'
    environment = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    environment.pop(VARIABLE, None)
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *said, folder = done.stdout.strip().splitlines()
    assert folder == str(home / "data" / "vae-lab" / "artifacts" / "fast")
    fallback = Path(folder).parent
    assert fallback == home / "data" / "vae-lab" / "artifacts"
    assert said == [  # paths as the kit shows them: from the kit's folder, or from ~
        "artifacts is not writable; trained models go to ~/data/vae-lab/artifacts "
        f"(set {VARIABLE} to choose)."
    ]


def test_a_writable_checkout_keeps_artifacts_beside_the_kit(monkeypatch):
    monkeypatch.delenv("VAE_LAB_ARTIFACTS", raising=False)
    assert artifacts_dir("fast") == REPO / "artifacts" / "fast"


def test_messages_show_paths_relative_to_the_kit_or_home_not_the_machines(
    tmp_path, monkeypatch, capsys, random_images
):
    """Stored in a notebook, "Saved the trained model to /home/runner/…" named the machine of the run."""
    kit = Path(__file__).resolve().parent.parent
    assert shown_path(kit / "artifacts" / "full" / "vae_lab.keras") == "artifacts/full/vae_lab.keras"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert shown_path(tmp_path / "home" / "models" / "a.keras") == "~/models/a.keras"
    assert shown_path("/opt/elsewhere/a.keras") == "/opt/elsewhere/a.keras"
    monkeypatch.chdir(tmp_path)
    _train(tmp_path / "runs" / "vae.keras", random_images)
    assert "Saved the trained model to runs/vae.keras." in capsys.readouterr().out
