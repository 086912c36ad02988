""""instruct-continue" (OctoPack's `instruct` prompt; HumanEvalFix): an instruction -- the problem's
`prompt`, e.g. the buggy function, its tests and "Fix bugs in f." -- in the prompt template, followed
by the code the answer continues (`code_prefix`: the function's declaration or documented prompt).
The continuation is cut as "continue" cuts it. (Go answers need no imports added here: the sandbox's Go
language imports the standard packages a candidate uses, as goimports and OctoPack's harness do.)"""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import CONTINUATION_STOP, END_MARKERS, cut_at_end_markers, trim_at_stop, truncate_at_closing_brace
from rrtf.prompts.templates import format_prompt
from sandbox.base.records import Problem


def continuation_stop(problem: Problem) -> list[str] | None:
    return [*CONTINUATION_STOP, *END_MARKERS] if problem.language == "python" else list(END_MARKERS)


def cut_continuation(problem: Problem, response: str) -> str:
    """The continuation of `problem.code_prefix` in `response`, cut where the function ends."""
    response = cut_at_end_markers(response)
    if problem.language == "python":
        return trim_at_stop(response, CONTINUATION_STOP)
    return truncate_at_closing_brace(problem.code_prefix, response)


@STRATEGIES.register("instruct-continue")
class InstructContinueStrategy(PromptStrategy):
    name = "instruct-continue"

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return format_prompt(problem.prompt, template) + problem.code_prefix

    def stop(self, problem: Problem) -> list[str] | None:
        return continuation_stop(problem)

    def completion(self, problem: Problem, response: str) -> str:
        return cut_continuation(problem, response)

    def reference_response(self, problem: Problem) -> str:
        return problem.canonical_solution
