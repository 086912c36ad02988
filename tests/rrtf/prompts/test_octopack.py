"""OctoPack's fix/explain text functions: hand cases against the harness's rules."""
from __future__ import annotations

from rrtf.prompts.octopack import clean_description, describe_instruction, describe_limit, remove_code


def test_describe_limit_is_the_docstring_length():
    instruction = "code...\n" + describe_instruction("Return x + 1.")
    assert describe_limit(instruction) == len("Return x + 1.") == 13
    assert describe_limit("Fix bugs in f.") is None


def test_code_lines_over_20_characters_are_removed_and_the_length_capped():
    solution = "    total = sum(values) * factor\n    return total\n"
    text = "It computes total = sum(values) * factor and then return total."
    cleaned = remove_code(text, solution)
    assert "sum(values)" not in cleaned and "return total" in cleaned  # "return total" is 12 characters: kept
    assert clean_description("  " + text + "  ", 20, solution) == "It computes total ="  # cut to 20, then stripped


