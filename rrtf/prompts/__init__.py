"""Prompts: templates (how an instruction is shown), strategies (problem -> prompt, stop strings,
judged code) and extraction (response -> code). Light: no torch, no model."""
from rrtf.prompts.base import STRATEGIES, PromptStrategy, build_prompt, default_strategy, get_strategy, strategy_for
from rrtf.prompts.extract import CONTINUATION_STOP, END_MARKERS, extract_code, trim_at_stop, truncate_at_closing_brace
from rrtf.prompts.templates import DEFAULT_TEMPLATE, TEMPLATES, format_prompt, resolve_template, template_id

__all__ = [
    "CONTINUATION_STOP", "DEFAULT_TEMPLATE", "END_MARKERS", "STRATEGIES", "TEMPLATES", "PromptStrategy", "build_prompt",
    "default_strategy", "extract_code", "format_prompt", "get_strategy", "resolve_template", "strategy_for",
    "template_id", "trim_at_stop", "truncate_at_closing_brace",
]
