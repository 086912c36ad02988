"""A problem as asked: the problem, the dataset (and task) it came from, and the prompt strategy that
asks and judges it -- one record, so training samples and judges a problem exactly as evaluation does.

    asked = ask("humanevalpack-go:fix", problems)        # the registry's strategy for the task
    asked[0].prompt(template), asked[0].stop(), asked[0].completion(response), asked[0].judge_input(code)

Which strategy (`resolve_strategy`): one forced for every dataset (`--strategy`), else the caller's for
this dataset, else the dataset registry's for its task, else `continue` when every problem is a code
prompt and `instruct` otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rrtf.prompts import PromptStrategy, default_strategy, get_strategy
from sandbox.base.records import Problem


@dataclass(frozen=True)
class AskedProblem:
    problem: Problem
    dataset: str  # the name it was loaded by (NAME[:SPLIT][:TASK]) or a file's path
    strategy: str  # registered prompt strategy (rrtf.prompts)
    task: str = ""  # the dataset's task ("synthesize", "fix", ...), "" for a file or a dataset with one task

    @property
    def task_id(self) -> str:
        return self.problem.task_id

    @property
    def asks(self) -> PromptStrategy:
        return get_strategy(self.strategy)

    def prompt(self, template: str | None = None) -> str:
        """The exact text the model is conditioned on."""
        return self.asks.prompt(self.problem, template)

    def stop(self) -> list[str] | None:
        return self.asks.stop(self.problem)

    def completion(self, response: str) -> str:
        """The code the sandbox runs for `response` (appended to the judged problem's code_prefix)."""
        return self.asks.completion(self.problem, response)

    def judge_input(self, completion: str) -> tuple[Problem, str]:
        """(problem, completion) exactly as the sandbox judges them."""
        return self.asks.judge_input(self.problem, completion)

    def identity(self) -> dict[str, str]:
        return {"dataset": self.dataset, "task": self.task, "strategy": self.strategy}


def as_asked(problems: Sequence[AskedProblem | Problem]) -> list[AskedProblem]:
    """Problems as asked; a bare Problem (a caller that knows no dataset) gets its default strategy."""
    return [p if isinstance(p, AskedProblem) else AskedProblem(p, "", default_strategy(p)) for p in problems]


def dataset_default_strategy(problems: Sequence[Problem]) -> str:
    """Continue when every problem's default is to continue, else instruct."""
    return "continue" if problems and all(default_strategy(p) == "continue" for p in problems) else "instruct"


def resolve_strategy(name: str, problems: Sequence[Problem], forced: str | None = None,
                     strategies: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(strategy, task) for the dataset `name` (see the module's docstring)."""
    from rrtf.datasets import ALIASES, DATASETS, is_file_name, parse_name

    registered = not is_file_name(name) and ALIASES.get(name, name).split(":")[0] in DATASETS
    task = parse_name(name)[2] if registered else ""
    if forced:
        return forced, task
    if strategies and name in strategies:
        return strategies[name], task
    if registered:
        spec, _, task = parse_name(name)
        return spec.tasks[task], task
    return dataset_default_strategy(problems), task


def ask(name: str, problems: Sequence[Problem], forced: str | None = None,
        strategies: Mapping[str, str] | None = None) -> list[AskedProblem]:
    """Every problem of the dataset `name` as that dataset asks it."""
    strategy, task = resolve_strategy(name, problems, forced, strategies)
    get_strategy(strategy)  # an unknown strategy fails here, naming itself
    return [AskedProblem(p, name, strategy, task) for p in problems]


__all__ = ["AskedProblem", "as_asked", "ask", "dataset_default_strategy", "resolve_strategy"]
