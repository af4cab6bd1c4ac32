"""JupyterHub for a class on one machine (a VM, up to about 100 students): local Linux users.

Run as root from the image environment (deploy/image), e.g. with that environment's `jupyterhub -f
deploy/one-machine/jupyterhub_config.py`, in a folder only root can read (the hub writes its database
and cookie secret there). Students and instructors log in with their Linux account and
password; who may log in is set by two Linux groups:

    groupadd vae-lab-students; groupadd vae-lab-instructors
    useradd --create-home -K HOME_MODE=0700 --groups vae-lab-students <student>   (and `passwd`)

Each user's server runs as that user. Homes must be private (HOME_MODE=0700: Debian's default, 0755,
lets every student read everyone's notebooks); `vae-lab release` makes the course folder private too.
The exchange is a folder (VAE_LAB_EXCHANGE, default /srv/nbgrader/exchange) made once by root:
`mkdir -p /srv/nbgrader/exchange && chmod 777 /srv/nbgrader/exchange`. tests/test_hub.py runs a whole
class through this file.
"""

import os
import sys

c = get_config()  # noqa: F821

STUDENTS, INSTRUCTORS = "vae-lab-students", "vae-lab-instructors"
ENVIRONMENT = sys.prefix  # the environment this hub runs from is the one every user's server runs in

c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.allowed_groups = {STUDENTS, INSTRUCTORS}
# No hub admins: an instructor grades from the course folder and needs no access to students' servers.

c.Spawner.cmd = [os.path.join(ENVIRONMENT, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {"VAE_LAB_EXCHANGE": os.environ.get("VAE_LAB_EXCHANGE", "/srv/nbgrader/exchange")}
# Set where the hub starts, they reach every user's server:
#   VAE_LAB_MODELS  the course's trained models (`vae-lab bundle`): notebooks load them instead of training
#   MNIST_DIR       one copy of MNIST for the class, instead of one download per student
for name in ("VAE_LAB_MODELS", "MNIST_DIR"):
    if name in os.environ:
        c.Spawner.environment[name] = os.environ[name]
# a whole class logs in at the start of a lab: a server that starts slowly is not a failed one
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120

# Servers left idle for an hour are stopped (their files stay): memory goes to the students working.
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
c.JupyterHub.services = [
    {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}
]
