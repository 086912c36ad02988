"""Generation backends, one module each, discovered by the registry (no torch at import).

    from rrtf.backends import SamplingParams, backend_from_spec, build_backend
    backend = backend_from_spec("transformers:ckpt/")                          # or build_backend("transformers", ...)
    backend = backend_from_spec("openai-chat:http://127.0.0.1:8000/v1#teacher")
    backend.generate(["def add(a, b):"], SamplingParams(n=4, temperature=0.8, max_new_tokens=64, seed=1))
    backend.generate([GenerationRequest(messages=[{"role": "user", "content": "..."}], key="task-7")], params)

A new backend (CTranslate2, vLLM, ...) is one module here with one `@BACKENDS.register("name")`
class that imports its heavy library inside the class; the sampler, trainer and data jobs only see
`build_backend` / `backend_from_spec` and `generate`.
"""
from rrtf.backends.base import (
    BACKENDS,
    BackendSpec,
    GenerationBackend,
    GenerationRequest,
    PromptTooLong,
    SamplingParams,
    backend_from_spec,
    build_backend,
    parse_spec,
    sample_seed,
)
from rrtf.prompts.extract import trim_at_stop

__all__ = [
    "BACKENDS", "BackendSpec", "GenerationBackend", "GenerationRequest", "PromptTooLong", "SamplingParams",
    "backend_from_spec", "build_backend", "parse_spec", "sample_seed", "trim_at_stop",
]
