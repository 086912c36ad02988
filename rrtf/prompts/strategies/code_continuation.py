""""continue" (HumanEval style, code_prefix set): the model continues the code prompt; Python is cut
at the Codex stop sequences, Java/C++ at the brace that closes what the prompt opened."""
from __future__ import annotations

from dataclasses import replace

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import CONTINUATION_STOP, trim_at_stop, truncate_at_closing_brace
from sandbox.base.records import Problem


@STRATEGIES.register("continue")
class ContinueStrategy(PromptStrategy):
    name = "continue"

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return problem.code_prefix or problem.prompt

    def stop(self, problem: Problem) -> list[str] | None:
        # Java/C++: no string marks the end of a method; completion() finds the closing brace.
        return list(CONTINUATION_STOP) if problem.language == "python" else None

    def completion(self, problem: Problem, response: str) -> str:
        if problem.language == "python":
            return trim_at_stop(response, CONTINUATION_STOP)
        return truncate_at_closing_brace(problem.code_prefix or problem.prompt, response)

    def judged(self, problem: Problem) -> Problem:
        return problem if problem.code_prefix else replace(problem, code_prefix=problem.prompt)

    def reference_response(self, problem: Problem) -> str:
        return problem.canonical_solution
