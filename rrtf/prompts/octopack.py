"""HumanEvalPack's fix and explain tasks as OctoPack evaluates them (bigcode-evaluation-harness
`bigcode_eval/tasks/humanevalpack.py`, the paper's protocol): instruction texts, the description
post-processing that keeps code from leaking into an explanation, and the Go imports the harness adds.
Pure text functions; the strategies (`instruct-continue`, `explain`) and the HumanEvalPack loader use them.
"""
from __future__ import annotations

import re

from sandbox.registry import display_name

DESCRIBE_LIMIT = re.compile(r"using at most (\d+) characters\.\s*$")
# A code line of the described solution is removed from the description only if it is this long:
# shorter lines ("return x", "}") are ordinary words (the harness's `len(line) > 20`).
MIN_LEAKED_LINE = 21


def fix_instruction(entry_point: str) -> str:
    return f"Fix bugs in {entry_point}."


def describe_instruction(docstring: str) -> str:
    return f"Provide a concise natural language description of the code using at most {len(docstring)} characters."


def synthesize_instruction(language: str) -> str:
    """OctoPack's synthesis instruction, naming the language as its sandbox module's record does ("C++")."""
    return f"Write functional code in {display_name(language)} according to the description."


def describe_limit(instruction: str) -> int | None:
    """The character limit an explain instruction states (the docstring's length)."""
    m = DESCRIBE_LIMIT.search(instruction)
    return int(m.group(1)) if m else None


def remove_code(text: str, solution: str) -> str:
    """The description without any verbatim line of the solution it describes (stripped, > 20 chars)."""
    for line in solution.split("\n"):
        line = line.strip()
        if len(line) >= MIN_LEAKED_LINE and line in text:
            text = text.replace(line, "")
    return text


def clean_description(response: str, limit: int | None, solution: str) -> str:
    """OctoPack's describe post-processing: at most `limit` characters of the stripped answer, then
    the solution's code lines removed, so a synthesis from the description cannot copy the code."""
    text = response.strip()
    if limit is not None:
        text = text[:limit]
    return remove_code(text.rstrip(), solution)


__all__ = ["clean_description", "describe_instruction", "describe_limit", "fix_instruction",
           "remove_code", "synthesize_instruction"]
