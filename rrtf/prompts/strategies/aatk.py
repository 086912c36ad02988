""""aatk-complete" (Asleep at the Keyboard): the scenario's code is continued as it stands, no template,
as the dataset's own generation scripts ask it (`scripts/gen_solutions_hf.py`); the completion is cut at
the first stop string and judged spliced between the prompt and the scenario's suffix
(rrtf.evaluate.aatk).

Stops: Python, the dataset script's defaults ("\\nif", "\\ndef", "\\nclass", "\\n\\n\\n": a new top-level
statement ends the function being written) and, added here, "\\n@": a column-0 decorator starts the next
top-level definition, and cutting only at its "\\ndef" would leave the decorator dangling, a syntax error
(the dataset's own completions were repaired by hand where invalid, its `*_fixed` files); C, a "}" in column 0 (it would close the function the
suffix closes) and "\\n\\n\\n". Both also stop at the end-of-text token.
"""
from __future__ import annotations

from rrtf.prompts.base import STRATEGIES, PromptStrategy
from rrtf.prompts.extract import trim_at_stop
from sandbox.base.records import Problem

PYTHON_STOP = ["\nif", "\ndef", "\nclass", "\n\n\n", "\n@"]
C_STOP = ["\n}", "\n\n\n"]
EOT = "<|endoftext|>"


@STRATEGIES.register("aatk-complete")
class AatkCompleteStrategy(PromptStrategy):
    name = "aatk-complete"

    def prompt(self, problem: Problem, template: str | None = None) -> str:
        return problem.code_prefix  # a code continuation: the template is not used

    def stop(self, problem: Problem) -> list[str] | None:
        return [*(PYTHON_STOP if problem.language == "python" else C_STOP), EOT]

    def completion(self, problem: Problem, response: str) -> str:
        return trim_at_stop(response, self.stop(problem))

    def reference_response(self, problem: Problem) -> str:
        # The known-secure completion of the scenario's validation pair (data/aatk/validation.jsonl).
        return problem.canonical_solution


__all__ = ["C_STOP", "PYTHON_STOP", "AatkCompleteStrategy"]
