# Jupyter server settings for every user on the hub: installed by postBuild as
# <environment>/etc/jupyter/jupyter_server_config.py.
c = get_config()  # noqa: F821
# A kernel holds 1.3-3.1 GB once its notebook has run (benchmarks/bench_bundle.py), and a student who
# goes from notebook 02 to 07 leaves six of them running: together more than a pod's memory limit.
# Kernels idle for 30 minutes are shut down, even with their tab open; the notebooks themselves stay.
c.MappingKernelManager.cull_idle_timeout = 1800
c.MappingKernelManager.cull_interval = 300
c.MappingKernelManager.cull_connected = True
