""""instruct-prelude" (LeetCode): an instruction in the prompt template; the code extracted from the
answer is a whole program that runs after the problem's prelude (`code_prefix`: LeetCodeDataset's
imports and ListNode/TreeNode helpers), which is kept whole -- unlike "instruct", which keeps only the
imports of a code prompt the answer is expected to restate."""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES
from rrtf.prompts.strategies.instruction import InstructStrategy
from sandbox.base.records import Problem


@STRATEGIES.register("instruct-prelude")
class InstructPreludeStrategy(InstructStrategy):
    name = "instruct-prelude"

    def judged(self, problem: Problem) -> Problem:
        return problem

    def reference_response(self, problem: Problem) -> str:
        return f"```{problem.language}\n{problem.canonical_solution.rstrip()}\n```\n"
