"""Grade a class of honest students with 1 and with 2 jobs; print the times and a projection.

Usage: python benchmarks/bench_grading.py [--students 24]

Each student hands in the instructor's notebooks with one exercise answered in a different
(right) way, so every student is graded for real: five sandboxed checks each, then nbgrader's
autograde and feedback. The grader prints its phases; this script adds the CPU seconds per
student (the grader and all its children) and projects a class of 300 on 16 cores: the
sandboxed checks and the feedback spread over the cores, nbgrader's autograde (it writes the
gradebook) runs one student at a time. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VAE_LAB = [sys.executable, "-m", "vae_lab.cli"]
PHASES = re.compile(r"sandboxed checks ([\d.]+) s, nbgrader autograde ([\d.]+) s .*, feedback ([\d.]+) s")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def grade(course: Path, submissions: Path, jobs: int) -> dict:
    cpu, started = children_cpu(), time.monotonic()
    command = [*VAE_LAB, "grade", str(submissions), "--all", "--course", str(course)]
    result = subprocess.run([*command, "--jobs", str(jobs)], capture_output=True, text=True)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    if result.returncode != 0:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    sandboxed, autograde, feedback = map(float, PHASES.search(result.stdout).groups())
    return {"wall": wall, "cpu": cpu, "sandboxed": sandboxed, "autograde": autograde, "feedback": feedback}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=24)
    count = parser.parse_args().students
    with tempfile.TemporaryDirectory() as scratch:
        course, submissions = Path(scratch) / "course", Path(scratch) / "submissions"
        subprocess.run([*VAE_LAB, "release", "--course", str(course)], check=True, capture_output=True)
        for number in range(count):
            folder = submissions / f"student{number:03d}"
            shutil.copytree(course / "source" / "vae-lab", folder)
            path = folder / "02_vae_lab.ipynb"  # a different right answer per student: no two alike
            path.write_text(
                path.read_text().replace("0.5 * z_log_var", f"(0.5 + {number} * 0.0) * z_log_var")
            )
        runs = {jobs: grade(course, submissions, jobs) for jobs in (1, 2)}
    for jobs, run in runs.items():
        print(
            f"jobs={jobs}: {run['wall']:.1f} s wall for {count} students ({run['wall'] / count:.2f} s each); "
            f"sandboxed checks {run['sandboxed']:.1f} s, autograde {run['autograde']:.1f} s, "
            f"feedback {run['feedback']:.1f} s; {run['cpu'] / count:.2f} CPU s per student"
        )
    one = runs[1]
    per_student = {phase: one[phase] / count for phase in ("sandboxed", "autograde", "feedback")}
    fixed = one["wall"] - one["sandboxed"] - one["autograde"] - one["feedback"]
    projected = fixed + 300 * (
        per_student["sandboxed"] / 16 + per_student["autograde"] + per_student["feedback"] / 16
    )
    summary = {
        "students": count,
        "wall_1_job_s": round(runs[1]["wall"], 1),
        "wall_2_jobs_s": round(runs[2]["wall"], 1),
        "speedup_2_jobs": round(runs[1]["wall"] / runs[2]["wall"], 2),
        "cpu_s_per_student": round(one["cpu"] / count, 2),
        "projected_300_students_16_cores_min": round(projected / 60, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
