"""Where trained models live, and how they are saved: atomically, under a lock, with a record of each."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

import keras
import platformdirs

from lab_utils.config import MODES, run_mode
from vae_lab.locks import held_lock  # the kit's one file lock (vae_lab imports no TensorFlow)

ARTIFACTS_VARIABLE = "VAE_LAB_ARTIFACTS"


def artifacts_dir(mode: str | None = None) -> Path:
    """Return the folder for trained models of one run mode, so a fast run never overwrites a full one.

    The root is VAE_LAB_ARTIFACTS if set, else `artifacts/` at the kit's root (a source
    checkout) or in the working directory (an installed kit); where that folder cannot be
    written, the user's data folder (platformdirs), said once.
    """
    mode = run_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a run mode; use one of {MODES}.")
    configured = os.environ.get(ARTIFACTS_VARIABLE)
    if configured:
        return Path(configured).expanduser().resolve() / mode
    checkout = Path(__file__).resolve().parent.parent
    base = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
    return _writable_root(base / "artifacts") / mode


def shown_path(path: str | os.PathLike) -> str:
    """`path` as a message shows it: relative to the kit's folder (or the working one), else from ~.

    Stored in a notebook's output, an absolute path names the machine that made the run and
    means nothing to the student or instructor who reads it.
    """
    path = Path(path)
    checkout = Path(__file__).resolve().parent.parent
    for base in (checkout if (checkout / "pyproject.toml").is_file() else None, Path.cwd()):
        if base is not None and path.is_relative_to(base.resolve()):
            return str(path.relative_to(base.resolve()))
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


@functools.cache
def _writable_root(preferred: Path) -> Path:
    """`preferred` if this user can create and write it, else the user's data folder for the kit."""
    existing = next(folder for folder in (preferred, *preferred.parents) if folder.exists())
    if os.access(existing, os.W_OK | os.X_OK):
        return preferred
    fallback = Path(platformdirs.user_data_dir("vae-lab")) / "artifacts"
    print(
        f"{shown_path(preferred)} is not writable; trained models go to {shown_path(fallback)} "
        f"(set {ARTIFACTS_VARIABLE} to choose)."
    )
    return fallback


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, so a crash never leaves half a file."""
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    write(temporary)
    os.replace(temporary, path)


def record_path(path: str | os.PathLike) -> Path:
    """The JSON record saved beside the model at `path`: its settings, history and training time."""
    path = Path(path)
    return path.with_name(path.stem + ".record.json")


def cached_model(
    path: str | os.PathLike,
    settings: dict,
    train: Callable[[], tuple[keras.Model, dict]],
    retrain: bool = False,
    fetch: Callable[[], bool] | None = None,
) -> tuple[keras.Model, dict]:
    """Return (model, record): loaded from `path` if its record holds the same `settings`, else trained.

    `train()` returns a trained model and its record (any JSON-able dict); both are saved
    atomically, the record with `settings` added. `retrain=True` always trains the model anew.
    `fetch()`, asked before training, may put the model at `path` from elsewhere (a model bundle)
    and return True; it is then loaded like a saved one.
    One process at a time works on a path: another one waits for it, then loads what it saved.
    A file that cannot be read is moved aside (`*.damaged`), never deleted, and the model trained anew.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path={str(path)!r} must end in .keras (the Keras model format).")
    settings = json.loads(json.dumps(settings))  # as the record will hold them
    path.parent.mkdir(parents=True, exist_ok=True)
    with held_lock(f"{path}.lock", f"Another run is training {path.name}; waiting for it to finish..."):
        saved = None if retrain else _load_if_current(path, settings)
        if saved is None and not retrain and fetch is not None and fetch():
            saved = _load_if_current(path, settings)
        if saved is not None:
            return saved
        print(f"Training {shown_path(path)}{' anew, as asked' if retrain else ''}.", flush=True)
        model, record = train()
        record = {**record, "settings": settings}
        save_with_record(path, model, record)
        return model, record


def save_with_record(path: Path, model: keras.Model, record: dict, said: bool = True) -> None:
    """Save `model` to `path` and `record` (JSON) beside it, each atomically, and (`said`) say where."""
    write_atomically(path, model.save)
    write_atomically(record_path(path), lambda target: target.write_text(json.dumps(record, indent=1)))
    if said:
        print(f"Saved the trained model to {shown_path(path)}.")


def _load_if_current(path: Path, settings: dict) -> tuple[keras.Model, dict] | None:
    """The model at `path` and its record if they were made with `settings`; None if it must be made."""
    record_file = record_path(path)
    if not (path.is_file() and record_file.is_file()):
        return None
    try:
        saved = json.loads(record_file.read_text())
        if not isinstance(saved, dict):
            raise ValueError(f"a record is a JSON object, not {type(saved).__name__}")
    except (OSError, ValueError) as error:
        move_aside(record_file, error)
        return None
    if saved.get("settings") != settings:
        print(f"{shown_path(path)} was trained with other settings ({saved.get('settings')}); training anew.")
        return None
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for a damaged or foreign file
        move_aside(path, error)
        return None
    print(f"Loaded the trained model from {shown_path(path)}.")
    return model, saved


def move_aside(path: Path, error: Exception, then: str = "training anew", into: Path | None = None) -> Path:
    """Rename an unreadable file to `<name>.damaged` (`.damaged.2`, ...), say so, and return the new path.

    The new name is in the same folder, or in `into` (for a folder that is deleted later).
    """
    folder = path.parent if into is None else into
    target, number = folder / (path.name + ".damaged"), 1
    while target.exists():
        number += 1
        target = folder / f"{path.name}.damaged.{number}"
    os.replace(path, target)
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    shown = target.name if into is None else shown_path(target)
    print(f"{shown_path(path)} could not be read ({reason}); moved it to {shown} and {then}.")
    return target
