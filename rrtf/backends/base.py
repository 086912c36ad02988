"""The generation layer every stage uses (sampler, teachers, evaluation, data_evol, quantize).

A backend turns requests into completions: `generate(requests, params) -> list[list[str]]`, n per
request. A request is a text prompt to continue, or chat messages (per request: a data job sends
its own system and user turns each time). `SamplingParams` is the one record of decoding settings.

Every backend's output passes through `GenerationBackend.generate`, which enforces at the boundary
what the rest of the system relies on: exactly n strings per request, text cut at the stop strings,
no lone surrogates (they would make every later write fail), and no more text than was asked for
(a reply is capped at `max_chars(params)`: a hostile endpoint's 50 MB answer to a 64-token request
is cut, never stored whole). Seeds are per request and sample (`sample_seed`), never per batch, so a
resumed or re-batched run draws the same samples.

`identity()` says what determines a backend's outputs (model and settings, not where it runs), and
every backend's carries "precision": the number format its model computes in when it answers, as
that backend names it -- a torch dtype ("float32", "bfloat16", "float16"; the transformers backend:
its model's dtype), the compute type a CTranslate2 model really runs ("float32", "int8_float32", ...:
CTranslate2 reports "int8" weights on a CPU as "int8_float32"), "data" for answers that are data
(the reference backend), and for a served model what the user declared or "server" when the server
decides. It is part of the method, not an implementation detail: RRTF ranks samples of the policy it
trains, and a sampler at another precision samples a slightly different policy (docs/quantize.md
measures how different). `rrtf.train` records the student sampler's identity
(`student_sampler.json`, `metrics.json`, `report.md`) and refuses to resume a run with another one;
evaluation records its backend's identity in its results' config.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rrtf.prompts.extract import trim_at_stop
from rrtf.registry import Registry
from rrtf.seeds import derive_seed

logger = logging.getLogger("rrtf.backends")
# No tokenizer's token is longer than this many characters in practice (StarCoder's longest are
# runs of whitespace); a reply longer than max_new_tokens x this is not an answer to the request.
MAX_CHARS_PER_TOKEN = 48


class PromptTooLong(ValueError):
    """A prompt does not fit the model's context: a caller may record that request as failed (evaluation
    does) instead of losing the rest of its batch."""


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0  # 0: greedy (the n answers are one answer repeated)
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0  # base seed; request r's sample j draws from sample_seed(seed, r.key, j)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"sampling: n must be >= 1, got {self.n}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0 or self.max_new_tokens < 1:
            raise ValueError(f"sampling: bad parameters {self}")
        object.__setattr__(self, "stop", tuple(s for s in self.stop or () if s))

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def max_chars(self) -> int:
        return max(4096, self.max_new_tokens * MAX_CHARS_PER_TOKEN)

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass
class GenerationRequest:
    """One prompt: `prompt` (text the model continues) or `messages` (chat turns:
    [{"role": "system" | "user" | "assistant", "content": ...}]). `key` names the request's random
    streams (a task id, say); it defaults to the prompt text."""

    prompt: str = ""
    messages: list[dict[str, str]] | None = None
    key: str = ""

    @property
    def stream_key(self) -> str:
        if self.key:
            return self.key
        return self.prompt if self.messages is None else repr(self.messages)


def sample_seed(seed: int, key: str, sample: int) -> int:
    return derive_seed(seed, "sample", key, sample)


def sanitize(text: Any, limit: int) -> str:
    """Backend output made safe to store: a string, valid Unicode, at most `limit` characters."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > limit:
        text = text[:limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    return text


class GenerationBackend(ABC):
    """Generate `params.n` completions for each request. Completions exclude the prompt text."""

    registry_name: str = ""
    #: spec kinds this class answers to in `backend_from_spec` ("openai-chat:URL#MODEL" -> "openai-chat")
    spec_kinds: tuple[str, ...] = ()
    #: True when sampling the student reads the in-memory model (transformers); False when it needs
    #: the student saved as a plain checkpoint directory first (a server, CTranslate2).
    uses_in_memory_model: bool = False
    #: True when `for_student` can build a backend for the model being trained (`--backend`).
    can_sample_student: bool = False
    #: True for answers that are data, not model output (the dataset's reference): kept whole, never
    #: cut at stop strings or at the length cap.
    trusted_output: bool = False

    def generate(self, requests: Sequence[GenerationRequest | str], params: SamplingParams | None = None,
                 **kwargs: Any) -> list[list[str]]:
        """`requests` (strings are text prompts); `params` or its fields as keywords."""
        params = params or SamplingParams(**kwargs)
        reqs = [r if isinstance(r, GenerationRequest) else GenerationRequest(prompt=r) for r in requests]
        if not reqs:
            return []
        outputs = self._generate(reqs, params)
        if len(outputs) != len(reqs) or any(len(o) != params.n for o in outputs):
            raise RuntimeError(f"{self.describe()} returned {[len(o) for o in outputs]} completions; "
                               f"expected {params.n} for each of {len(reqs)} requests")
        if self.trusted_output:
            return [list(o) for o in outputs]
        limit = params.max_chars()
        cut = 0
        result = []
        for texts in outputs:
            row = []
            for t in texts:
                cut += isinstance(t, str) and len(t) > limit
                row.append(trim_at_stop(sanitize(t, limit), params.stop))
            result.append(row)
        if cut:
            logger.warning("%s: %d completion(s) longer than %d characters (max_new_tokens=%d) were cut",
                           self.describe(), cut, limit, params.max_new_tokens)
        return result

    @abstractmethod
    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        """Per request, `params.n` raw completions (the base class checks, sanitises and cuts them)."""

    def identity(self) -> dict[str, Any]:
        """What determines this backend's outputs (model and settings; not where it runs), with its
        "precision" (the module docstring); a backend that cannot tell says "unknown"."""
        return {"backend": self.registry_name, "precision": "unknown"}

    def describe(self) -> str:
        return f"{self.registry_name} backend"

    def close(self) -> None:
        """Release processes, connections or accelerator memory held by the backend."""
        return None

    # -- construction from spec strings ---------------------------------------------------------------
    @classmethod
    def check_usable(cls) -> None:
        """Raise ValueError, one line naming what is missing, when this backend cannot run on this machine
        (its library is absent, it needs an accelerator there is none of). Called where a job resolves its
        backends -- `parse_spec` (teachers, evaluation's spec), rrtf.train's `--backend` -- before any model
        or data loads; so it must be cheap (import nothing heavy). Most backends can always run."""
        return None

    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        raise ValueError(f"backend {cls.registry_name!r} cannot be built from a spec string")

    @classmethod
    def for_student(cls, *, model=None, tokenizer=None, checkpoint_dir: str | None = None, arg: str = "",
                    **options: Any) -> GenerationBackend:
        """The backend that samples the student: the in-memory model, or its saved checkpoint."""
        raise ValueError(f"backend {cls.registry_name!r} cannot sample the student")


BACKENDS: Registry[type[GenerationBackend]] = Registry("generation backend", package="rrtf.backends")


def build_backend(name: str, **options: Any) -> GenerationBackend:
    return BACKENDS.get(name)(**options)


@dataclass
class BackendSpec:
    """A parsed spec string: "reference", "transformers:PATH", "openai:URL#MODEL", "openai-chat:URL#MODEL", ..."""

    text: str
    kind: str
    arg: str
    backend: str  # registered backend name
    options: dict[str, Any] = field(default_factory=dict)


def parse_spec(spec: str) -> BackendSpec:
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    for name, cls in BACKENDS.items():
        if kind in cls.spec_kinds or (kind == name and not cls.spec_kinds):
            cls.check_usable()  # a backend this machine cannot run fails here, before any work
            return BackendSpec(spec, kind, arg, name, cls.options_from_spec(kind, arg))
    forms = sorted(k for _, cls in BACKENDS.items() for k in cls.spec_kinds)
    raise ValueError(f"backend spec {spec!r}: unknown kind {kind!r}; known: {', '.join(forms)} (e.g. 'transformers:PATH', "
                     "'openai:http://127.0.0.1:8000/v1#MODEL', 'openai-chat:URL#MODEL', 'reference')")


def backend_from_spec(spec: str, **options: Any) -> GenerationBackend:
    """Build a backend from a spec string (the teachers' and the student's `--backend` form)."""
    parsed = parse_spec(spec)
    return build_backend(parsed.backend, **{**parsed.options, **options})


__all__ = [
    "BACKENDS", "BackendSpec", "GenerationBackend", "GenerationRequest", "PromptTooLong", "SamplingParams", "backend_from_spec",
    "build_backend", "parse_spec", "sample_seed", "sanitize",
]
