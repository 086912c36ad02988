""""instruct" (MBPP, tiny-tasks): an instruction in the prompt template; the code extracted from the
answer is the whole program."""
from __future__ import annotations

import re
from dataclasses import replace

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import END_MARKERS, extract_code
from rrtf.prompts.templates import instruction_prompt
from sandbox.base.records import Problem

_IMPORT = re.compile(r"^(import |from \S+ import |#include|using namespace)")


@STRATEGIES.register("instruct")
class InstructStrategy(PromptStrategy):
    name = "instruct"

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return instruction_prompt(problem, template)

    def stop(self, problem: Problem) -> list[str] | None:
        # All of END_MARKERS, not just "\n###": completion() (extract_code) cuts at every one of them
        # anyway, so stopping there ends generation exactly where extraction cuts (no wasted tokens,
        # same judged code), and the response kept as a training target never holds a literal
        # "<|endoftext|>" (servers and tokenizers that do not treat it as special return it as text).
        return list(END_MARKERS)

    def completion(self, problem: Problem, response: str) -> str:
        return extract_code(response, problem.language)

    def judged(self, problem: Problem) -> Problem:
        # The extracted code is a whole program: of a code prompt (HumanEval asked as an instruction)
        # only its imports are kept, which answers that restate just the function rely on.
        if not problem.code_prefix:
            return problem
        if problem.language != "python":  # other languages' judges add their standard headers/imports themselves;
            return replace(problem, code_prefix="")  # a partial Go `import (` block would not even parse
        imports = [line for line in problem.code_prefix.splitlines(keepends=True) if _IMPORT.match(line)]
        return replace(problem, code_prefix="".join(imports) + ("\n" if imports else ""))

    def reference_response(self, problem: Problem) -> str:
        code = problem.code_prefix + problem.canonical_solution  # a code prompt's answer restates the prompt
        return f"```{problem.language}\n{code.rstrip()}\n```\n"
