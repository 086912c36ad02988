"""Prompt strategies: how a Problem becomes the prompt text, where generation stops, and how a
response becomes the code the sandbox judges -- the one implementation the sampler (training) and
evaluation share, so that training samples and judges a problem exactly the way evaluation does.

    strategy = get_strategy("instruct")            # or strategy_for(problem): its default
    text = strategy.prompt(problem, template)      # the exact text the model is conditioned on
    stop = strategy.stop(problem)                  # stop strings for the backend (None: none)
    code = strategy.completion(problem, response)  # appended to judged.code_prefix by the sandbox
    judged = strategy.judged(problem)              # the problem the sandbox runs `code` against

A two-step strategy (`two_step = True`, e.g. "explain") first asks `prompt()` for a description,
then `synthesis_prompt(problem, description(problem, response))` for the code that is judged.

A strategy is one module in `rrtf/prompts/strategies/` with one `@STRATEGIES.register(name)` class.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache

from rrtf.registry import Registry
from sandbox.base.records import Problem


class PromptStrategy(ABC):
    name: str = ""
    two_step: bool = False

    @abstractmethod
    def prompt(self, problem: Problem, template: str | None = None) -> str:
        """The exact text the model is conditioned on; `template` is a prompt template name or text
        (rrtf.prompts.templates.resolve_template; None: the default)."""

    def stop(self, problem: Problem) -> list[str] | None:
        return None

    @abstractmethod
    def completion(self, problem: Problem, response: str) -> str:
        """The text the sandbox appends to `self.judged(problem).code_prefix`."""

    def judged(self, problem: Problem) -> Problem:
        return problem

    def judge_input(self, problem: Problem, completion: str) -> tuple[Problem, str]:
        """(problem, completion) as the sandbox judges them; a strategy may adapt the problem to the
        completion (Go: import the packages the answer uses, as OctoPack's evaluation does)."""
        return self.judged(problem), completion

    @abstractmethod
    def reference_response(self, problem: Problem) -> str:
        """What a model that knew the canonical solution would answer (the `reference` backend)."""

    def reference_answers(self, problem: Problem, template: str | None = None) -> dict[str, str]:
        """prompt -> answer for the `reference` backend: every prompt this strategy sends for `problem`."""
        return {self.prompt(problem, template): self.reference_response(problem)}


STRATEGIES: Registry[type[PromptStrategy]] = Registry("prompt strategy", package="rrtf.prompts.strategies")


@cache
def get_strategy(name: str) -> PromptStrategy:
    return STRATEGIES.get(name)()


def default_strategy(problem: Problem) -> str:
    """The strategy a problem gets when nobody chose one: code prompts (code_prefix set) are
    continued, everything else is an instruction."""
    return "continue" if problem.code_prefix else "instruct"


def strategy_for(problem: Problem) -> PromptStrategy:
    return get_strategy(default_strategy(problem))


def build_prompt(problem: Problem, template: str | None = None) -> str:
    """The exact text the model is conditioned on for `problem` under its default strategy."""
    return strategy_for(problem).prompt(problem, template)


__all__ = ["STRATEGIES", "PromptStrategy", "build_prompt", "default_strategy", "get_strategy", "strategy_for"]
