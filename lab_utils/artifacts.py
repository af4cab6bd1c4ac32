"""Where trained models live, and how they are saved: atomically, beside a record of how they were made."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import keras

from lab_utils.config import MODES, run_mode

ARTIFACTS_VARIABLE = "VAE_LAB_ARTIFACTS"


def artifacts_dir(mode: str | None = None) -> Path:
    """Return the folder for trained models of one run mode, so a fast run never overwrites a full one.

    The root is VAE_LAB_ARTIFACTS if set, else `artifacts/` at the kit's root (a source
    checkout) or in the working directory (an installed kit).
    """
    mode = run_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a run mode; use one of {MODES}.")
    configured = os.environ.get(ARTIFACTS_VARIABLE)
    if configured:
        root = Path(configured).expanduser().resolve()
    else:
        checkout = Path(__file__).resolve().parent.parent
        base = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
        root = base / "artifacts"
    return root / mode


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, so a crash never leaves half a file."""
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    write(temporary)
    os.replace(temporary, path)


def record_path(path: str | os.PathLike) -> Path:
    """The JSON record saved beside the model at `path`: its settings, history and training time."""
    path = Path(path)
    return path.with_name(path.stem + ".record.json")


def load_or_make(
    path: str | os.PathLike,
    settings: dict,
    make: Callable[[], tuple[keras.Model, dict]],
    retrain: bool = False,
) -> tuple[keras.Model, dict]:
    """Return (model, record): loaded from `path` if its record holds the same `settings`, else made.

    `make()` returns a trained model and its record (any JSON-able dict); both are saved
    atomically, the record with `settings` added. `retrain=True` always makes the model anew.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path={str(path)!r} must end in .keras (the Keras model format).")
    settings = json.loads(json.dumps(settings))  # as the record will hold them
    record_file = record_path(path)
    if not retrain and path.is_file() and record_file.is_file():
        saved = json.loads(record_file.read_text())
        if saved.get("settings") == settings:
            print(f"Loaded the trained model from {path} (pass retrain=True to train again).")
            return keras.models.load_model(path, safe_mode=True), saved
        print(f"{path} was trained with other settings ({saved.get('settings')}); training anew.")
    model, record = make()
    record = {**record, "settings": settings}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, model.save)
    write_atomically(record_file, lambda target: target.write_text(json.dumps(record, indent=1)))
    print(f"Saved the trained model to {path}.")
    return model, record
