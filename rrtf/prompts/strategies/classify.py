""""clone-detect" (BigCloneBench) and "defect-detect" (Devign): a code-comprehension question asked to a
generative model the way Astraios asks CodeXGLUE's classification tasks, and its answer parsed to a label.

Prompt: the problem's `prompt` as it stands, no template (Astraios' harness task sends the bare
question; the wording is `CLONE_QUESTION` / `DEFECT_QUESTION` in rrtf.datasets.codexglue), ending in
"Answer:"; generation stops at the first newline (the harness task's `stop_words=["\\n"]`).

Parsing (`parse_label`), as Astraios' notebook (bigcode-project/astraios
evaluation/eval_code_comprehension.ipynb, `paper_method`) parses the answer: take the text after the
last "\\nAnswer:", lower-case it, read commas as full stops and keep the first sentence; "yes" in it and
"no" not -> yes; "no" in it and "yes" not -> no (both are substring tests: "not", "know", "none" count as
"no", as in the original); otherwise a positive key phrase anywhere in the answer -> yes, then a negative
one -> no (`KEYWORDS`, per task); otherwise "unknown" (Astraios' "-1", an invalid answer), judged as no
answer (rrtf.evaluate.static_judge.judge_label). The judged "code" is the label itself, so two answers
that parse alike are judged once.
"""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import trim_at_stop
from sandbox.base.records import Problem

EOT = "<|endoftext|>"
# (positive, negative) key phrases, checked when the first sentence holds neither or both of yes/no:
# Astraios' notebook lists them per task (defect_positive/negative, clone_positive/negative).
KEYWORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "defect-detect": (("there is a", "ere is a", "has a defect", "contains a defect"), ("there is no defect",)),
    "clone-detect": (("there is a", "ere is a"), ("there is no",)),
}


def parse_label(response: str, task: str) -> str:
    """"yes", "no" or "unknown" (see the module doc)."""
    positive, negative = KEYWORDS[task]
    answer = response.split("\nAnswer:")[-1]
    first = answer.lower().replace(",", ".").split(".")[0]
    if "yes" in first and "no" not in first:
        return "yes"
    if "no" in first and "yes" not in first:
        return "no"
    low = answer.lower()
    if any(k in low for k in positive):
        return "yes"
    if any(k in low for k in negative):
        return "no"
    return "unknown"


class _LabelStrategy(PromptStrategy):
    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return problem.prompt  # Astraios asks the bare question: no template

    def stop(self, problem: Problem) -> list[str] | None:
        return ["\n", EOT]

    def completion(self, problem: Problem, response: str) -> str:
        # The backend already cut at the stop strings; cutting again keeps a server that ignores them honest.
        return parse_label(trim_at_stop(response, self.stop(problem)), self.name)

    def reference_response(self, problem: Problem) -> str:
        return " Yes" if problem.canonical_solution == "yes" else " No"


@STRATEGIES.register("clone-detect")
class CloneDetectStrategy(_LabelStrategy):
    name = "clone-detect"


@STRATEGIES.register("defect-detect")
class DefectDetectStrategy(_LabelStrategy):
    name = "defect-detect"


__all__ = ["KEYWORDS", "CloneDetectStrategy", "DefectDetectStrategy", "parse_label"]
