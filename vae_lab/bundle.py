"""A model bundle: the trained models of one run mode in one archive, so students need not train them.

`vae-lab bundle` packs every model saved under `artifacts/<mode>/` (the registry's models, the
judge included) into `vae-lab-models-<kit version>-<mode>.zip`: per model its weights alone (an
HDF5 file of arrays, Adam's state left out) and, in `manifest.json`, its record (the settings it
was trained with, its history and training time), the file's sha256 and size, and the Keras
version that trained it. No model config, no code: the kit builds each model from its own recipe
and loads the arrays into it, so a bundle made with one Keras 3 loads in another (a whole
`.keras` file saved by Keras 3.15 does not load in Colab's 3.10).

`VAE_LAB_MODELS=<file or http(s) URL>` makes `lab_utils.trained` look there before training
(`open_bundle`): a URL is downloaded once into the user's cache, with a progress line. Whatever
is wrong with a bundle is a `BundleError` whose message names the bundle and the fix; the
caller then trains as it would without one.

No TensorFlow here (the `vae-lab` command imports this module); h5py, which Keras brings, packs.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import platformdirs

FORMAT = 1  # the manifest's layout; a bundle of another format is refused
MANIFEST = "manifest.json"
WEIGHTS_SUFFIX = ".weights.h5"


class BundleError(Exception):
    """A bundle that cannot be used; the message names it, says why and what to do."""


def kit_version() -> str:
    """This kit's version, as its package metadata has it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vae-lab")
    except PackageNotFoundError:  # a checkout used without installing it
        found = re.search(
            r'^version = "([^"]+)"', (Path(__file__).parent.parent / "pyproject.toml").read_text(), re.M
        )
        return found.group(1) if found else "unknown"


def default_name(mode: str) -> str:
    return f"vae-lab-models-{kit_version()}-{mode}.zip"


def _saved_models(folder: Path) -> list[Path]:
    """The models saved in a run mode's folder: `*.keras` files with their record, outside checkpoints."""
    return sorted(
        path
        for path in folder.rglob("*.keras")
        if not any(
            part.endswith("_checkpoints") or part.startswith(".") for part in path.relative_to(folder).parts
        )
        and path.with_name(path.stem + ".record.json").is_file()
    )


def _weights_without_optimizer(model_file: Path) -> bytes:
    """The weights from a `.keras` file (a zip holding `model.weights.h5`), Adam's state left out."""
    import h5py  # Keras' own dependency

    with zipfile.ZipFile(model_file) as archive:
        saved = io.BytesIO(archive.read("model.weights.h5"))
    kept = io.BytesIO()
    with h5py.File(saved, "r") as source, h5py.File(kept, "w") as target:
        for name in source:
            if name != "optimizer":
                source.copy(source[name], target, name=name)
    return kept.getvalue()


def _keras_version(model_file: Path) -> str:
    with zipfile.ZipFile(model_file) as archive:
        return str(json.loads(archive.read("metadata.json")).get("keras_version", "unknown"))


def pack(folder: Path, out: Path) -> dict:
    """Pack the models saved in `folder` (a run mode's artifacts folder, e.g. artifacts/full) into `out`.

    Returns the manifest. The archive is written through a temporary file, so a crash leaves no
    half bundle under its name.
    """
    folder = Path(folder)
    models = _saved_models(folder)
    if not models:
        raise BundleError(
            f"there are no trained models in {folder}: run the notebooks in that mode first "
            f"(`make run` for full mode)."
        )
    manifest = {"format": FORMAT, "kit_version": kit_version(), "mode": folder.name, "models": {}}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for model in models:
            key = f"{folder.name}/{model.relative_to(folder).with_suffix('').as_posix()}"
            weights = _weights_without_optimizer(model)
            archive.writestr(key + WEIGHTS_SUFFIX, weights)
            manifest["models"][key] = {
                "file": key + WEIGHTS_SUFFIX,
                "sha256": hashlib.sha256(weights).hexdigest(),
                "bytes": len(weights),
                "keras_version": _keras_version(model),
                "record": json.loads(model.with_name(model.stem + ".record.json").read_text()),
            }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    os.replace(partial, out)
    return manifest


@dataclass(frozen=True)
class Entry:
    """One model of a bundle, as its manifest describes it."""

    key: str
    file: str
    sha256: str
    record: dict


def _escapes(name: str) -> bool:
    """Whether an archive path could leave the folder it is unpacked in (or is not a plain relative path)."""
    path = PurePosixPath(name)
    return (
        not name
        or "\\" in name
        or "\0" in name
        or path.is_absolute()
        or ".." in path.parts
        or re.match(r"^[A-Za-z]:", name) is not None
    )


class Bundle:
    """An opened, checked bundle: its manifest read, its paths safe, its kit version this kit's."""

    def __init__(self, path: Path, shown: str):
        self.path, self.shown = path, shown
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                escaping = [name for name in names if _escapes(name)]
                if escaping:
                    raise BundleError(
                        f"The model bundle {shown} holds a path that leaves its folder ({escaping[0]!r}); "
                        "it is not used. Ask for a bundle made by `vae-lab bundle`."
                    )
                manifest = json.loads(archive.read(MANIFEST))
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise BundleError(
                f"The model bundle {shown} is not a complete zip archive ({reason(error)}): a download cut "
                "short or a damaged copy. Download it again, or unset VAE_LAB_MODELS."
            ) from None
        except (KeyError, ValueError):
            raise BundleError(
                f"The model bundle {shown} has no readable {MANIFEST}: it was not made by `vae-lab bundle`."
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise BundleError(
                f"The model bundle {shown} is of another format ({found}; this kit reads format {FORMAT}). "
                "Ask for the bundle of this kit's version."
            )
        if manifest.get("kit_version") != kit_version():
            raise BundleError(
                f"The model bundle {shown} was made by vae-lab {manifest.get('kit_version')}; this is "
                f"vae-lab {kit_version()}. Use the bundle made for this version (or unset VAE_LAB_MODELS)."
            )
        self.entries: dict[str, Entry] = {}
        for key, described in (manifest.get("models") or {}).items():
            if _escapes(str(described.get("file", ""))) or described.get("file") not in names:
                raise BundleError(
                    f"The model bundle {shown} names a file it does not hold, or one outside its folder "
                    f"({described.get('file')!r}); it is not used."
                )
            self.entries[key] = Entry(
                key, described["file"], str(described.get("sha256")), described.get("record") or {}
            )

    def entry(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def weights(self, entry: Entry) -> bytes:
        """The entry's weights file, checked against the manifest's sha256."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read(entry.file)
        except (zipfile.BadZipFile, OSError, EOFError) as error:  # CRC errors are BadZipFile
            raise BundleError(
                f"The model bundle {self.shown} could not give {entry.file} ({reason(error)})."
            ) from None
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise BundleError(
                f"The model bundle {self.shown} holds a {entry.file} whose sha256 is not the one its "
                "manifest records: the file was changed or damaged. Download the bundle again."
            )
        return data


def reason(error: BaseException) -> str:
    """The first line of an error's message (at most 200 characters), or its type's name."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return text or type(error).__name__


def cache_folder() -> Path:
    """Where downloaded bundles are kept: the user's cache folder for the kit."""
    return Path(platformdirs.user_cache_dir("vae-lab")) / "models"


def open_bundle(source: str) -> Bundle:
    """Open the bundle at `source` (a file, or an http(s) URL downloaded once into `cache_folder()`)."""
    if not re.match(r"^https?://", source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise BundleError(
                f"The model bundle {source} does not exist: set VAE_LAB_MODELS to a bundle file or URL, "
                "or unset it."
            )
        return Bundle(path, source)
    name = re.sub(
        r"[^A-Za-z0-9_.-]", "_", PurePosixPath(urllib.request.urlparse(source).path).name or "bundle.zip"
    )
    cached = cache_folder() / f"{hashlib.sha256(source.encode()).hexdigest()[:12]}-{name}"
    if cached.is_file():
        try:
            return Bundle(cached, source)
        except BundleError as error:
            print(f"{error} Removed the cached copy; downloading it again.")
            cached.unlink()
    download(source, cached)
    return Bundle(cached, source)


def download(url: str, target: Path) -> None:
    """Download `url` to `target` through a temporary file, with a progress line (`lab_utils.progress`)."""
    from lab_utils.progress import Progress  # only where the kit's notebooks run: it starts TensorFlow

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    received = expected = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as file:
            expected = int(response.headers.get("Content-Length") or 0)
            progress = Progress(max(expected, 1), f"Downloading the model bundle ({expected / 1e6:.0f} MB)")
            while chunk := response.read(1 << 20):
                file.write(chunk)
                received += len(chunk)
                progress.update(min(received, expected - 1) if expected else 0)
        if expected and received != expected:
            raise http.client.IncompleteRead(b"", expected - received)
        progress.update(progress.total)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        if received:
            print()  # ends the progress line
            of = f" of {expected:,}" if expected else ""
            raise BundleError(
                f"The download of the model bundle {url} stopped after {received:,}{of} bytes "
                f"({reason(error)}). Run the cell again to download it again."
            ) from None
        why = getattr(error, "reason", None) or reason(error)
        raise BundleError(
            f"Could not download the model bundle {url} ({why}): check the address and your connection, "
            "or unset VAE_LAB_MODELS."
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
