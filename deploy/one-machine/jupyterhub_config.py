"""JupyterHub for a class on one machine (a VM, up to about 100 students): local Linux users.

Run as root from the image environment (deploy/image), e.g. with that environment's `jupyterhub -f
deploy/one-machine/jupyterhub_config.py`. Students and instructors log in with their Linux account and
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
c.Spawner.environment = {
    # the course's trained models: a student's notebooks load them instead of training them
    "VAE_LAB_MODELS": os.environ.get("VAE_LAB_MODELS", "/srv/vae-lab/models/vae-lab-models-0.1.0-full.zip"),
    "VAE_LAB_EXCHANGE": os.environ.get("VAE_LAB_EXCHANGE", "/srv/nbgrader/exchange"),
}
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
