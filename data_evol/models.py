"""The models a run asks (evolver, teachers, judge), built on first use and closed at the end, so a
rerun of a finished output dir builds nothing and calls nothing.

"default" and "default-weak" are the embedded tiny teacher (data_evol/tiny_teacher.py); anything else
is an rrtf backend spec string: 'transformers:PATH', 'openai-chat:BASE_URL#MODEL', 'openai:BASE_URL#MODEL'.
"""
from __future__ import annotations

import os
from pathlib import Path

from data_evol.prompts import Templates
from data_evol.tiny_teacher import DEFAULT_NAMES
from rrtf.backends import GenerationBackend, backend_from_spec, build_backend, parse_spec


def model_name(spec: str) -> str:
    """What a record's provenance calls the model: the model, not where it is served."""
    if spec in DEFAULT_NAMES:
        return spec
    parsed = parse_spec(spec)
    if parsed.backend == "openai":
        return f"{parsed.kind}:{parsed.options['model']}"
    if parsed.kind == "transformers":
        return f"transformers:{Path(parsed.arg).name}"
    return spec


class ModelPool:
    def __init__(self, cfg, templates: Templates):
        self.cfg, self.templates = cfg, templates
        self._backends: dict[str, GenerationBackend] = {}

    def get(self, spec: str) -> GenerationBackend:
        if spec not in self._backends:
            self._backends[spec] = self._build(spec)
        return self._backends[spec]

    def _build(self, spec: str) -> GenerationBackend:
        cfg = self.cfg
        if spec in DEFAULT_NAMES or spec.startswith("transformers:"):
            import torch

            torch.set_num_threads(cfg.num_threads or os.cpu_count() or 1)
        if spec in DEFAULT_NAMES:
            from data_evol.tiny_teacher import ensure_teacher

            path = ensure_teacher(DEFAULT_NAMES[spec], templates=self.templates, progress=cfg.progress, num_threads=cfg.num_threads)
            return build_backend("transformers", model_name_or_path=str(path), batch_size=cfg.batch_size)
        parsed = parse_spec(spec)
        if parsed.backend == "openai":
            return backend_from_spec(spec, timeout=cfg.timeout, max_retries=cfg.max_retries, concurrency=cfg.concurrency)
        if parsed.backend == "transformers":
            return backend_from_spec(spec, batch_size=cfg.batch_size)
        raise ValueError(f"model {spec!r}: data_evol needs a generating model ('default', 'transformers:PATH', "
                         "'openai-chat:URL#MODEL' or 'openai:URL#MODEL'), not the {parsed.backend!r} backend")

    def check(self, specs: list[str]) -> None:
        """Parse every spec now, so a typo fails before any work starts."""
        for spec in specs:
            model_name(spec)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()


__all__ = ["ModelPool", "model_name"]
