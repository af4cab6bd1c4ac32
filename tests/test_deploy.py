"""deploy/: the hub image's pins agree with the kit; the Kubernetes objects validate (kubernetes-validate).

The one-machine hub config is run for real by tests/test_hub.py (`make test-hub`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

KIT = Path(__file__).resolve().parent.parent
DEPLOY = KIT / "deploy"
KUBERNETES_VERSION = "1.32"  # Zero to JupyterHub 4.4 needs 1.28 or newer; a current managed cluster's


def pins() -> dict[str, str]:
    found = {}
    for line in (DEPLOY / "image" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            found[canonicalize_name(name)] = version.strip()
    return found


def test_the_image_pins_every_package_the_kit_needs_within_its_declared_ranges(pyproject):
    pinned = pins()
    project = pyproject["project"]
    needed = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    needed += [line for line in project["optional-dependencies"]["instructor"] if "vae-lab" not in line]
    for line in needed:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned in deploy/image/requirements.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (line, pinned[name])
    for hub_side in ("jupyterhub", "jupyterhub-idle-culler"):
        assert hub_side in pinned
    assert "vae-lab" not in pinned  # postBuild installs the kit from its release tag


def validate(resource: dict) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{resource['kind']} {resource['metadata']['name']}: {error.message}")


def test_the_exchange_volume_claim_validates():
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "exchange.yaml").read_text()))
    assert [document["kind"] for document in documents] == ["PersistentVolumeClaim"]
    for document in documents:
        validate(document)
    assert documents[0]["spec"]["accessModes"] == ["ReadWriteMany"]  # every user's pod mounts it


def test_the_hub_values_put_valid_volumes_limits_and_the_exchange_in_each_users_pod():
    values = yaml.safe_load((DEPLOY / "kubernetes" / "config.yaml").read_text())
    user = values["singleuser"]
    # the parts of a user's pod config.yaml writes, as the pod Zero to JupyterHub makes of them
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-student"},
        "spec": {
            "volumes": user["storage"]["extraVolumes"],
            "containers": [
                {
                    "name": "notebook",
                    "image": f"{user['image']['name']}:{user['image']['tag']}",
                    "volumeMounts": user["storage"]["extraVolumeMounts"],
                    "env": [{"name": name, "value": value} for name, value in user["extraEnv"].items()],
                    "resources": {
                        "requests": {
                            "memory": user["memory"]["guarantee"],
                            "cpu": str(user["cpu"]["guarantee"]),
                        },
                        "limits": {"memory": user["memory"]["limit"], "cpu": str(user["cpu"]["limit"])},
                    },
                }
            ],
        },
    }
    validate(pod)
    mounted = {mount["mountPath"] for mount in user["storage"]["extraVolumeMounts"]}
    assert user["extraEnv"]["VAE_LAB_EXCHANGE"] in mounted
    claims = {volume["persistentVolumeClaim"]["claimName"] for volume in user["storage"]["extraVolumes"]}
    exchange = yaml.safe_load((DEPLOY / "kubernetes" / "exchange.yaml").read_text())
    assert exchange["metadata"]["name"] in claims
    postbuild = (DEPLOY / "image" / "postBuild").read_text()
    for name in ("MNIST_DIR", "VAE_LAB_MODELS"):  # files postBuild puts in the image
        relative = user["extraEnv"][name].split("/share/vae-lab/", 1)[1].split("/")[0]
        assert f"$share/{relative}" in postbuild, name
    assert values["cull"]["enabled"] and values["prePuller"]["continuous"]["enabled"]
    assert values["scheduling"]["userPlaceholder"]["enabled"]
    assert user["networkPolicy"]["egressAllowRules"]["nonPrivateIPs"] is False  # no internet in a pod
