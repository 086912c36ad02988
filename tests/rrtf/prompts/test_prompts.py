"""rrtf.prompting: the prompt format and PanGu-Coder2-style code extraction from real-looking responses."""
from __future__ import annotations

import pytest

from rrtf.datasets.humaneval import load_humaneval
from rrtf.datasets.mbpp import load_mbpp
from rrtf.prompts import DEFAULT_TEMPLATE, build_prompt, extract_code, format_prompt, resolve_template, strategy_for
from sandbox.base.records import Problem

FUNC = "def add(a, b):\n    return a + b\n"


def test_default_template_wraps_instruction():
    assert format_prompt("  Add two numbers.\n") == "### Instruction:\nAdd two numbers.\n### Response:\n"


def test_named_and_custom_templates():
    assert resolve_template("alpaca") == DEFAULT_TEMPLATE
    assert format_prompt("Do it.", "plain") == "Do it.\n"
    assert format_prompt("Do it.", "<s>[INST] {instruction} [/INST]") == "<s>[INST] Do it. [/INST]"
    with pytest.raises(ValueError, match="instruction"):
        format_prompt("Do it.", "no placeholder here")


def test_build_prompt_instruction_problem():
    problem = Problem(task_id="t/1", prompt="Write a function f that returns 1.", test_list=["assert f() == 1"])
    assert build_prompt(problem) == "### Instruction:\nWrite a function f that returns 1.\n### Response:\n"


def test_build_prompt_mbpp_shows_one_test_for_the_signature():
    problem = load_mbpp("test")[0]
    prompt = build_prompt(problem)
    assert problem.prompt in prompt and problem.test_list[0] in prompt
    assert problem.test_list[1] not in prompt  # the other tests stay hidden


def test_build_prompt_humaneval_continues_code():
    problem = load_humaneval()[0]
    assert build_prompt(problem) == problem.code_prefix


@pytest.mark.parametrize(
    "response, expected",
    [
        # the tiny model's format: plain code ending with EOS
        (FUNC + "<|endoftext|>garbage after eos", FUNC),
        # fenced block with a language tag, prose around it
        ("Here is the function:\n```python\n" + FUNC + "```\nIt adds the numbers.", FUNC),
        # the first fenced block wins
        ("```py\n" + FUNC + "```\nOr:\n```python\ndef add(a, b): return sum([a, b])\n```", FUNC),
        # an unclosed fence (generation cut off) runs to the end
        ("```python\n" + FUNC + "    # more", FUNC + "    # more\n"),
        # no fence: leading prose dropped, trailing explanation dropped
        ("Sure! Here is the code you asked for:\n" + FUNC + "\nThis function returns the sum of a and b.\n", FUNC),
        # a heading-style trailer
        (FUNC + "Explanation:\nIt adds.", FUNC),
        # the model starts a new template turn
        (FUNC + "### Instruction:\nWrite another.", FUNC),
        # top-level code after the function (imports, calls, asserts) is kept
        ("import math\n\n" + FUNC + "\nprint(add(1, 2))\nassert add(1, 1) == 2\n", "import math\n\n" + FUNC + "\nprint(add(1, 2))\nassert add(1, 1) == 2\n"),
        # nothing but prose
        ("I cannot help with that request.", ""),
    ],
)
def test_extract_code_python(response, expected):
    assert extract_code(response) == expected


def test_extract_code_keeps_broken_code_so_the_judge_sees_the_error():
    # A truncated answer must stay broken (a compile error ranks below a wrong answer), not be trimmed
    # into something that runs.
    response = "def add(a, b):\n    return a +"
    assert extract_code(response) == response + "\n"


def test_continuation_keeps_indented_body():
    # The continuation of a code prompt is cut by its strategy, not by extract_code: an indented
    # function body is code even though it does not start a program; it ends where the function does.
    problem = load_humaneval()[0]
    body = "    return a + b\n\n\ndef main():\n    pass\n"
    assert strategy_for(problem).completion(problem, body) == "    return a + b\n\n"
    assert strategy_for(problem).completion(problem, "    x = 1\n    return x\n") == "    x = 1\n    return x\n"


def test_extract_code_java_and_cpp():
    java = "public class Main {\n    public static void main(String[] args) {\n        Solution s = new Solution();\n    }\n}"
    assert extract_code("Here is the Java code:\n" + java + "\nThis prints nothing.", "java") == java + "\n"
    cpp = "#include <vector>\nint add(int a, int b) {\n    return a + b;\n}"
    assert extract_code("```cpp\n" + cpp + "\n```", "cpp") == cpp + "\n"
