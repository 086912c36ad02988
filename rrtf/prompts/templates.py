"""Prompt templates: how an English instruction is shown to a model.

The default is the Alpaca/WizardCoder-style template PanGu-Coder2 and many instruction-tuned code
models use; `--prompt_template` passes another by name (TEMPLATES) or as text containing
"{instruction}". A template is part of a run's identity (`template_id`): resuming a run with another
template would pair old responses with new prompts, so it is refused.
"""
from __future__ import annotations

import hashlib

from sandbox.base.records import Problem

DEFAULT_TEMPLATE = "### Instruction:\n{instruction}\n### Response:\n"
# Named templates (`--prompt_template NAME`); any other value is taken as the template text itself.
TEMPLATES = {
    "alpaca": DEFAULT_TEMPLATE,  # WizardCoder / PanGu-Coder2 style
    "plain": "{instruction}\n",
}


def resolve_template(template: str | None) -> str:
    """A template name from TEMPLATES, or the template text itself (None or "": the default)."""
    if not template:
        return DEFAULT_TEMPLATE
    return TEMPLATES.get(template, template)


def template_id(template: str | None) -> str:
    """A short stable identity of the template *text* (a name and its text give the same id)."""
    return hashlib.sha256(resolve_template(template).encode()).hexdigest()[:12]


def format_prompt(instruction: str, template: str | None = DEFAULT_TEMPLATE) -> str:
    template = resolve_template(template)
    if "{instruction}" not in template:
        raise ValueError(f"prompt template must be one of {', '.join(TEMPLATES)} or contain '{{instruction}}': {template!r}")
    return template.replace("{instruction}", instruction.strip())


def instruction_text(problem: Problem) -> str:
    """The instruction a problem asks, without any template (also what a chat model is sent)."""
    instruction = problem.prompt
    if problem.source == "mbpp" and problem.test_list:
        # MBPP's convention: show one test so the model knows the function's name and signature.
        instruction = f"{instruction}\nYour code should pass this test: {problem.test_list[0]}"
    return instruction


def instruction_prompt(problem: Problem, template: str | None = DEFAULT_TEMPLATE) -> str:
    """`problem` asked as an instruction in `template` (None or "": the default)."""
    return format_prompt(instruction_text(problem), template)


__all__ = ["DEFAULT_TEMPLATE", "TEMPLATES", "format_prompt", "instruction_prompt", "instruction_text", "resolve_template",
           "template_id"]
