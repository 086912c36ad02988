"""The dataset's reference answer as a "teacher": a backend that looks answers up by prompt.

It is constructed with the prompt -> answer mapping (the sampler builds it from the problems'
`canonical_solution`s and the exact prompt texts it sends), so it fits the same `generate`
interface as every model backend and needs no special case in the sampling loop. Stop strings are
not applied: the reference is a complete, tested answer, and cutting it at e.g. "\\ndef " would
break references that define helper functions.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rrtf.backends.base import BACKENDS, GenerationBackend, GenerationRequest, SamplingParams


@BACKENDS.register("reference")
class ReferenceBackend(GenerationBackend):
    # "reference": the problem's canonical_solution; "dataset:NAME": teacher NAME's answer kept with
    # the problem (Problem.teacher_answers, e.g. from data_evol). The sampler builds the answers.
    spec_kinds = ("reference", "dataset")
    trusted_output = True

    def __init__(self, answers: Mapping[str, str]):
        self.answers = dict(answers)
        self.calls = 0

    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        if kind == "dataset":
            if not arg:
                raise ValueError("backend spec 'dataset:NAME' needs the teacher's name as written in the problems' teacher_answers")
            return {"teacher": arg}
        if arg:
            raise ValueError(f"backend spec 'reference' takes no argument, got 'reference:{arg}'")
        return {}

    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        self.calls += 1
        missing = [r.prompt for r in requests if r.prompt not in self.answers]
        if missing:
            raise KeyError(f"reference backend: no reference answer for prompt {missing[0][:80]!r} ({len(missing)} missing)")
        return [[self.answers[r.prompt]] * params.n for r in requests]

    def identity(self) -> dict[str, Any]:
        return {"backend": "reference", "precision": "data"}  # answers are data: no model computes them
