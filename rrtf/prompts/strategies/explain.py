""""explain" (HumanEvalExplain, OctoPack's two-step protocol): the model first describes the code in
`problem.prompt` within the character limit the instruction states (the docstring's length); the
description is cut to that limit and every verbatim line of the solution is removed from it, so no
code can leak; then the model writes the function from the description alone, continuing
`problem.code_prefix` (the declaration), and that code is judged by the tests."""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES
from rrtf.prompts.extract import END_MARKERS, cut_at_end_markers
from rrtf.prompts.octopack import clean_description, describe_limit, synthesize_instruction
from rrtf.prompts.strategies.instruct_continue import InstructContinueStrategy, continuation_stop
from rrtf.prompts.templates import format_prompt
from sandbox.base.records import Problem


@STRATEGIES.register("explain")
class ExplainStrategy(InstructContinueStrategy):
    """Step 2 is answered, cut and judged as "instruct-continue" answers are."""

    name = "explain"
    two_step = True

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        """Step 1: describe the code."""
        return format_prompt(problem.prompt, template)

    def stop(self, problem: Problem) -> list[str] | None:
        return list(END_MARKERS)

    def description(self, problem: Problem, response: str) -> str:
        return clean_description(cut_at_end_markers(response), describe_limit(problem.prompt), problem.canonical_solution)

    def synthesis_prompt(self, problem: Problem, description: str, template: str | None = None) -> str:
        """Step 2: write the code from the description alone."""
        return format_prompt(f"{description}\n{synthesize_instruction(problem.language)}", template) + problem.code_prefix

    def synthesis_stop(self, problem: Problem) -> list[str] | None:
        return continuation_stop(problem)

    def reference_description(self, problem: Problem) -> str:
        # Names the task too: HumanEvalPack has two problems with the same declaration (Python/56 and 61,
        # correct_bracketing), whose synthesis prompts must differ for the prompt-keyed reference backend.
        return f"The function {problem.entry_point} of {problem.task_id}."

    def reference_answers(self, problem: Problem, template: str | None = None) -> dict[str, str]:
        described = self.reference_description(problem)
        second = self.synthesis_prompt(problem, self.description(problem, described), template)
        return {self.prompt(problem, template): described, second: self.reference_response(problem)}
