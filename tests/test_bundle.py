"""Model bundles (`vae-lab bundle`, VAE_LAB_MODELS): trained models taken from a download instead of trained,
and every way a bundle can be bad ending in its message and a model trained as without one."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from lab_utils import trained
from tests.test_trained import CONFIG, codes, lab_on_the_page
from vae_lab import bundle
from vae_lab.cli import main


class _Server(http.server.ThreadingHTTPServer):
    requests: list[str]


def _handler(folder: Path, cut: bool):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):  # noqa: N802 - http.server's name
            self.server.requests.append(self.path)
            if not cut:
                return super().do_GET()
            body = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then the connection closes: a download cut short

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def serve():
    """serve(folder, cut=False) -> (base URL, server) of an HTTP server on this machine for `folder`."""
    servers = []

    def start(folder: Path, cut: bool = False) -> tuple[str, _Server]:
        server = _Server(("127.0.0.1", 0), _handler(folder, cut))
        server.requests = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (rng.random((300, 784)) > 0.7).astype("float32")
    y = (np.arange(300) % 10).astype("uint8")
    return (x[:200], y[:200]), (x[200:], y[200:])


@pytest.fixture(scope="module")
def packed(tmp_path_factory, data):
    """A bundle of three models trained with CONFIG (the lab model, a β-VAE, the judge), and their codes."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAE_LAB_ARTIFACTS", str(root))
        patch.delenv("VAE_LAB_RETRAIN", raising=False)
        patch.delenv("VAE_LAB_MODELS", raising=False)
        made = {
            name: trained.trained_model(name, CONFIG, data, verbose=0) for name in ("lab", "β = 4", "judge")
        }
    out = root / "bundle.zip"
    assert main(["bundle", "--mode", "fast", "--artifacts", str(root), "--out", str(out)]) == 0
    return out, {name: codes(model.model, data[1][0][:4]) for name, model in made.items() if name != "judge"}


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty artifacts folder and cache, VAE_LAB_MODELS unset, nothing remembered of an earlier bundle."""
    monkeypatch.setenv("VAE_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_LAB_RETRAIN", raising=False)
    monkeypatch.delenv("VAE_LAB_MODELS", raising=False)
    trained._bundle.cache_clear()
    yield tmp_path / "artifacts" / "fast"
    trained._bundle.cache_clear()


def test_the_bundle_holds_weights_and_records_only_with_their_checksums(packed):
    out, _ = packed
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = sorted(archive.namelist())
    assert names == [
        "fast/digit_classifier.weights.h5",
        "fast/experiments/β = 4.weights.h5",
        "fast/vae_lab.weights.h5",
        "manifest.json",
    ]
    assert manifest["format"] == bundle.FORMAT and manifest["kit_version"] == bundle.kit_version()
    entry = manifest["models"]["fast/experiments/β = 4"]
    assert entry["keras_version"] == keras.__version__ and entry["record"]["settings"]["beta"] == 4.0
    assert len(entry["sha256"]) == 64 and len(entry["record"]["history"]["loss"]) == CONFIG.epochs


def test_a_served_bundle_is_downloaded_once_and_its_models_load_without_training(
    packed, fresh, serve, monkeypatch, capsys, data
):
    out, expected = packed
    server_url, server = serve(out.parent)
    monkeypatch.setenv("VAE_LAB_MODELS", f"{server_url}/{out.name}")
    beta = trained.trained_model("β = 4", CONFIG, data, verbose=0)
    said = capsys.readouterr().out
    assert "Downloading the model bundle" in said and "100%" in said
    assert "Took the β = 4 model from the model bundle" in said and "Saved the trained model" not in said
    np.testing.assert_allclose(codes(beta.model, data[1][0][:4]), expected["β = 4"], rtol=1e-5)
    assert len(beta.history["loss"]) == CONFIG.epochs and (fresh / "experiments" / "β = 4.keras").is_file()

    judge = trained.trained_model("judge", CONFIG, data, verbose=0)
    assert "Took the judge model" in capsys.readouterr().out and judge.model.name == "digit_classifier"

    # Notebook 02's own fit restores the bundle's lab model and trains no epoch.
    vae, fitted = lab_on_the_page(data)
    said = capsys.readouterr().out
    assert "Took the lab model from the model bundle" in said and "Restored the lab model" in said
    assert "Epoch 1/" not in said and len(fitted.history["loss"]) == CONFIG.epochs
    np.testing.assert_allclose(codes(vae, data[1][0][:4]), expected["lab"], rtol=1e-5)

    trained._bundle.cache_clear()  # a new kernel: the cached download is used, not fetched again
    trained.trained_model("β = 0.5", CONFIG, data, verbose=0)
    said = capsys.readouterr().out
    assert "does not hold it ('β = 0.5', fast mode); training it here." in said
    assert "Saved the trained model" in said and "Downloading" not in said
    assert server.requests == [f"/{out.name}"]


def test_a_model_trained_with_other_settings_is_trained_here(packed, fresh, monkeypatch, capsys, data):
    monkeypatch.setenv("VAE_LAB_MODELS", str(packed[0]))
    longer = CONFIG.__class__(**{**CONFIG.__dict__, "epochs": 3})
    trained.trained_model("β = 4", longer, data, verbose=0)
    said = capsys.readouterr().out
    assert (
        "holds it trained with other settings ('β = 4', fast mode)" in said
        and "Saved the trained model" in said
    )


def _rewrite(source: Path, target: Path, change) -> Path:
    """Copy the bundle at `source` to `target`, `change` editing its {name: bytes} (the manifest a dict)."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["manifest.json"] = json.loads(members["manifest.json"])
    change(members)
    members["manifest.json"] = json.dumps(members["manifest.json"]).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return target


BETA = "fast/experiments/β = 4.weights.h5"


def _flip_a_byte(members):
    data = bytearray(members[BETA])
    data[len(data) // 2] ^= 0xFF
    members[BETA] = bytes(data)


def _escaping(members):
    members["../../outside.weights.h5"] = members.pop(BETA)
    members["manifest.json"]["models"]["fast/experiments/β = 4"]["file"] = "../../outside.weights.h5"


def _older_kit(members):
    members["manifest.json"]["kit_version"] = "0.0.1"


def _a_model_with_code(marker: Path):
    """The β-VAE's weights replaced by a Keras model whose Lambda layer, if deserialised, writes `marker`."""

    def change(members):
        inputs = keras.Input((784,))
        code = eval(f"lambda x: x + (open({str(marker)!r}, 'w').write('ran') * 0)")  # noqa: S307 - the attack
        outputs = keras.layers.Lambda(code)(inputs)
        path = marker.with_name("code.keras")
        keras.Model(inputs, outputs).save(path)
        marker.unlink()  # building the model here ran the lambda once; loading the bundle must not
        members[BETA] = path.read_bytes()
        entry = members["manifest.json"]["models"]["fast/experiments/β = 4"]
        entry["sha256"] = hashlib.sha256(members[BETA]).hexdigest()

    return change


@pytest.mark.parametrize(
    "fault, message",
    [
        ("checksum", "whose sha256 is not the one its manifest records"),
        ("truncated file", "is not a complete zip archive"),
        ("truncated download", "stopped after 3,"),
        ("escaping path", "holds a path that leaves its folder ('../../outside.weights.h5')"),
        ("not a Keras model", "is not the weights of the 'β = 4' model"),
        ("other kit version", "was made by vae-lab 0.0.1; this is vae-lab"),
        ("no network", "Could not download the model bundle"),
        ("missing file", "does not exist: set VAE_LAB_MODELS"),
    ],
)
def test_a_bad_bundle_says_why_and_the_model_is_trained_here(
    fault, message, packed, fresh, serve, tmp_path, monkeypatch, capsys, data
):
    out = packed[0]
    bad = tmp_path / "served" / out.name
    bad.parent.mkdir()
    marker = tmp_path / "code-ran.txt"
    source = str(bad)
    if fault == "checksum":
        _rewrite(out, bad, _flip_a_byte)
    elif fault == "truncated file":
        bad.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    elif fault == "truncated download":
        bad.write_bytes(out.read_bytes())
        source = f"{serve(bad.parent, cut=True)[0]}/{bad.name}"
    elif fault == "escaping path":
        _rewrite(out, bad, _escaping)
    elif fault == "not a Keras model":
        _rewrite(out, bad, _a_model_with_code(marker))
    elif fault == "other kit version":
        _rewrite(out, bad, _older_kit)
    elif fault == "no network":
        source = "http://127.0.0.1:9/" + bad.name  # the discard port: nothing listens there
    elif fault == "missing file":
        source = str(tmp_path / "no-such-bundle.zip")
    monkeypatch.setenv("VAE_LAB_MODELS", source)
    model = trained.trained_model("β = 4", CONFIG, data, verbose=0)
    said = capsys.readouterr().out
    assert message in said, said
    assert "Saved the trained model" in said and model.model.beta == 4.0
    assert not marker.exists(), "the bundle ran code"
    assert not any((tmp_path / "cache").rglob("*.partial")), "a cut download was left in the cache"
    if fault == "escaping path":
        assert not (tmp_path / "outside.weights.h5").exists()
