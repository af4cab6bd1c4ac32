# nbgrader's settings for everyone on the hub: installed by postBuild as
# <environment>/etc/jupyter/nbgrader_config.py. The course folder's own nbgrader_config.py (written by
# vae-lab) adds the instructor's gradebook and grading steps.
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "vae-lab"
# nbgrader's folder exchange: one folder every student and instructor can reach (a shared volume on
# Kubernetes: deploy/kubernetes/exchange.yaml). nbgrader sets its permissions: a student can put a
# submission in inbound/ but not list or read anyone else's.
c.Exchange.root = os.environ.get("VAE_LAB_EXCHANGE", "/srv/nbgrader/exchange")
