"""The kit's instructor and maintenance tools, behind the `vae-lab` command (`vae_lab.cli`).

Nothing in this package imports `lab_utils` at module level: `import lab_utils` starts
TensorFlow, which the command's own process and the sandboxed answer worker never load.
"""

from pathlib import Path

KIT = Path(__file__).resolve().parent.parent  # the kit's checkout: notebooks/, pyproject.toml, build/
NOTEBOOKS = KIT / "notebooks"
# The lab write-up's sections, in its order: every notebook has them, and a lab record keeps them.
SECTIONS = ("Aim", "Objectives", "Algorithm", "Pseudocode", "Code", "Observations", "Conclusion", "Result")
WITHOUT_TENSORFLOW_VARIABLE = "VAE_LAB_WITHOUT_TENSORFLOW"  # 1 in grading workers: lab_utils skips TensorFlow
RETRAIN_VARIABLE = "VAE_LAB_RETRAIN"  # 1: each trained model is trained anew, once per run
RETRAIN_SINCE_VARIABLE = "VAE_LAB_RETRAIN_SINCE"  # its start (time.time()): later saves are kept
MODELS_VARIABLE = "VAE_LAB_MODELS"  # a model bundle (file or URL) trained models come from (vae_lab.bundle)


def lab_notebooks() -> list[Path]:
    """The lab's notebooks in their order, notebooks/<number>_*.ipynb."""
    return sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
