""""instruct-prelude" (LeetCode): an instruction in the prompt template; the code extracted from the
answer is a whole program that runs after the problem's prelude (`code_prefix`: LeetCodeDataset's
imports and ListNode/TreeNode helpers), which is kept whole -- unlike "instruct", which keeps only the
imports of a code prompt the answer is expected to restate."""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import END_MARKERS, extract_code
from rrtf.prompts.templates import instruction_prompt
from sandbox.records import Problem


@STRATEGIES.register("instruct-prelude")
class InstructPreludeStrategy(PromptStrategy):
    name = "instruct-prelude"

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return instruction_prompt(problem, template)

    def stop(self, problem: Problem) -> list[str] | None:
        return list(END_MARKERS)

    def completion(self, problem: Problem, response: str) -> str:
        return extract_code(response, problem.language)

    def reference_response(self, problem: Problem) -> str:
        return f"```{problem.language}\n{problem.canonical_solution.rstrip()}\n```\n"
