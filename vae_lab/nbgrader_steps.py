"""The two nbgrader steps the kit replaces or adds; `nbgrader_config.py` in the course folder loads them.

- `SandboxedResults` takes the place of nbgrader's `Execute` in `autograde`: it does not run the
  student's notebook, it puts in each autograded cell the output of the sandboxed check that
  `vae-lab grade` wrote to `results/<student>.json`. nbgrader's `SaveAutoGrades` then
  scores the cell as usual (an error output scores 0).
- `MarkUngraded` (feedback): a written answer nobody has graded yet says so, instead of showing 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbformat import from_dict
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from traitlets import Unicode

UNGRADED = "**To be graded by your instructor.** Until then this answer counts 0 in the score above.\n\n"


class SandboxedResults(NbGraderPreprocessor):
    """Fills each autograded cell with the output its sandboxed check produced."""

    results_dir = Unicode("", help="folder of <student>.json results from vae-lab grade").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        path = Path(self.results_dir) / f"{info['student']}.json"
        if not self.results_dir or not path.exists():
            raise RuntimeError(
                f"no sandboxed results for {info['student']}: student code is graded in a sandbox, so run "
                "`vae-lab grade DIR` (it calls nbgrader), not `nbgrader autograde`."
            )
        self.results = json.loads(path.read_text())["notebooks"].get(info["notebook"], {})
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if nbgrader.get("grade") and not nbgrader.get("solution"):
                result = self.results.get(nbgrader["grade_id"])
                outputs = (
                    result["outputs"]
                    if result
                    else [
                        {
                            "output_type": "error",
                            "ename": "NotGraded",
                            "evalue": "not graded",
                            "traceback": [],
                        }
                    ]
                )
                cell.outputs = [from_dict(output) for output in outputs]
        return cell, resources


class MarkUngraded(NbGraderPreprocessor):
    """Prefixes a written answer that has no score yet with a line saying it is still to be graded."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gradebook:
            self.pending = set()
            for cell in nb.cells:
                nbgrader = cell.metadata.get("nbgrader", {})
                if nbgrader.get("grade") and nbgrader.get("solution"):
                    grade = gradebook.find_grade(
                        nbgrader["grade_id"], info["notebook"], info["assignment"], info["student"]
                    )
                    if grade.manual_score is None and grade.needs_manual_grade:
                        self.pending.add(nbgrader["grade_id"])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.metadata.get("nbgrader", {}).get("grade_id") in self.pending:
            cell.source = UNGRADED + cell.source
        return cell, resources


def autograde_preprocessors() -> list:
    """nbgrader's autograde steps, with `Execute` replaced by the sandboxed results."""
    return [
        SandboxedResults,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]


def feedback_preprocessors(show_hidden_tests: bool = False) -> list:
    hidden = [] if show_hidden_tests else [ClearHiddenTests]
    return [GetGrades, *hidden, MarkUngraded, CSSHTMLHeaderPreprocessor]
