"""The class of honest students, cheats and faults that `vae-lab grade` (test_classroom.py) and the students'
own check (test_handin.py) are both run on, with the score and statuses each must get."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

AUTOGRADED_POINTS = 9  # five self-check cells: 2 + 2 + 1 + 2 + 2


def edit(path: Path, grade_id: str, source: str | None) -> None:
    """Replace the source of the cell `grade_id` in the notebook at `path` (None deletes the cell)."""
    content = json.loads(path.read_text())
    index = next(
        i
        for i, cell in enumerate(content["cells"])
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    if source is None:
        del content["cells"][index]
    else:
        content["cells"][index]["source"] = source
    path.write_text(json.dumps(content))


KERAS_ANSWERS = {
    (
        "02_vae_lab",
        "reparameterise",
    ): "import tensorflow as tf\n\ndef reparameterise(z_mean, z_log_var, epsilon):\n"
    "    return (z_mean + tf.exp(0.5 * z_log_var) * epsilon).numpy()\n",
    ("02_vae_lab", "kl_per_image"): "from keras import ops\n\ndef kl_per_image(z_mean, z_log_var):\n"
    "    terms = 1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)\n"
    "    return ops.convert_to_numpy(-0.5 * ops.sum(terms, axis=1))\n",
    ("03_generate_and_explore", "sample_prior"): "def sample_prior(count, latent_dim, seed):\n"
    "    return np.random.default_rng(seed).normal(size=(count, latent_dim))\n",
}
HOSTILE = """\
import glob, os, shutil, sqlite3
for attack in [
    lambda: print(os.listdir({submissions!r})),
    lambda: print(open(glob.glob({course!r} + '/source/*/02*.ipynb')[0]).read()),
    lambda: open({course!r} + '/planted.txt', 'w').write('x'),
    lambda: os.remove({victim!r}),
    lambda: shutil.rmtree({course!r} + '/submitted/solution'),
    lambda: sqlite3.connect({course!r} + '/gradebook.db').execute('update grade set auto_score = 99'),
]:
    try:
        attack()
    except Exception:
        pass

def reparameterise(z_mean, z_log_var, epsilon):
    return z_mean + np.exp(0.5 * z_log_var) * epsilon
"""
CHEAT_FIRST = (
    "from lab_utils import checks\nfor name in dir(checks):\n    if name.startswith('check_'):\n"
    "        setattr(checks, name, lambda *args, **kwargs: print('✓ right'))\n"
)


def make_class(
    source: Path, released: Path, folder: Path, course: Path
) -> dict[str, tuple[float, dict[str, str]]]:
    """Writes the class into `folder`; returns {student: (expected autograded score, expected statuses)}.

    `source` holds the instructor notebooks, `released` the student release; `course` is the folder
    the hostile student goes after.
    """
    graded = {"02_vae_lab": "graded", "03_generate_and_explore": "graded", "04_compare": "graded"}
    expected = {}

    def student(name, score, base=source, **statuses):
        shutil.copytree(base, folder / name)
        expected[name] = (score, graded | statuses)
        return folder / name

    student("solution", AUTOGRADED_POINTS)
    student("untouched", 0, released)
    keras_user = student("keras_ops", AUTOGRADED_POINTS)
    for (notebook, grade_id), answer in KERAS_ANSWERS.items():
        edit(keras_user / f"{notebook}.ipynb", grade_id, answer)
    deleter = student(
        "deleted_check",
        AUTOGRADED_POINTS,
        **{"02_vae_lab": "graded cell deleted: check_kl_per_image restored as released"},
    )
    edit(deleter / "02_vae_lab.ipynb", "check_kl_per_image", None)
    truncated = student(
        "truncated", AUTOGRADED_POINTS - 5, **{"02_vae_lab": "invalid notebook (NotJSONError; scored 0)"}
    )
    (truncated / "02_vae_lab.ipynb").write_bytes((truncated / "02_vae_lab.ipynb").read_bytes()[:5000])
    renamed = student(
        "renamed",
        AUTOGRADED_POINTS - 5,
        **{
            "02_vae_lab": "missing (found 02_vae_lab (1).ipynb with its cells: "
            "hand it in as 02_vae_lab.ipynb)"
        },
    )
    (renamed / "02_vae_lab.ipynb").rename(renamed / "02_vae_lab (1).ipynb")
    student("nbgrader_layout", AUTOGRADED_POINTS)  # as `nbgrader collect` leaves it: <student>/vae-lab/
    shutil.move(folder / "nbgrader_layout", folder / "collected")
    (folder / "nbgrader_layout").mkdir()
    shutil.move(folder / "collected", folder / "nbgrader_layout" / "vae-lab")
    hostile = student("hostile", AUTOGRADED_POINTS)
    attack = HOSTILE.format(
        submissions=str(folder), course=str(course), victim=str(folder / "solution" / "04_compare.ipynb")
    )
    edit(hostile / "02_vae_lab.ipynb", "reparameterise", attack)
    cheater = student(
        "cheater",
        0,
        released,
        **{
            nb: "flagged (answer uses the grader's checks) in " + ids
            for nb, ids in [
                ("02_vae_lab", "check_reparameterise, check_kl_per_image, check_kl_share"),
                ("03_generate_and_explore", "check_sample_prior"),
                ("04_compare", "check_reconstruction_loss"),
            ]
        },
    )
    for notebook, grade_id, name in [
        ("02_vae_lab", "reparameterise", "reparameterise"),
        ("02_vae_lab", "kl_per_image", "kl_per_image"),
        ("03_generate_and_explore", "sample_prior", "sample_prior"),
        ("04_compare", "reconstruction_loss_per_image", "reconstruction_loss_per_image"),
    ]:
        first = CHEAT_FIRST if grade_id == "reparameterise" else "checks.check_reparameterise = print\n"
        edit(cheater / f"{notebook}.ipynb", grade_id, first + f"def {name}(*args):\n    return None\n")
    edit(cheater / "02_vae_lab.ipynb", "kl_share", "checks.check_kl_share = print\nkl_share = None\n")
    forger = student("forger", AUTOGRADED_POINTS)  # its forged marks are dropped: 9 of 9, not more
    content = json.loads((forger / "02_vae_lab.ipynb").read_text())
    for cell in content["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "check_reparameterise":
            cell["metadata"]["nbgrader"]["points"] = 100
    bonus = {
        "grade": True,
        "grade_id": "bonus",
        "locked": True,
        "points": 50,
        "solution": False,
        "schema_version": 3,
    }
    content["cells"].append(
        {
            "cell_type": "code",
            "metadata": {"nbgrader": bonus},
            "source": "pass",
            "outputs": [],
            "execution_count": None,
        }
    )
    (forger / "02_vae_lab.ipynb").write_text(json.dumps(content))
    looper = student(
        "endless", AUTOGRADED_POINTS - 2, **{"03_generate_and_explore": "timeout in check_sample_prior"}
    )
    edit(looper / "03_generate_and_explore.ipynb", "sample_prior", "while True:\n    pass\n")
    printer = student("printer", AUTOGRADED_POINTS - 2)
    edit(printer / "04_compare.ipynb", "reconstruction_loss_per_image", "print('x' * (100 << 20))\n")
    forker = student("forker", AUTOGRADED_POINTS - 2)
    edit(forker / "02_vae_lab.ipynb", "kl_per_image", "import os\nwhile True:\n    os.fork()\n")
    linker = student(
        "linker", AUTOGRADED_POINTS - 5, **{"02_vae_lab": "refused: a symbolic link or not a file (scored 0)"}
    )
    (linker / "02_vae_lab.ipynb").unlink()
    (linker / "02_vae_lab.ipynb").symlink_to(folder / "solution" / "02_vae_lab.ipynb")
    return expected
