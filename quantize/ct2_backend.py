"""Generation with CTranslate2 (registered in rrtf's backend registry as a plug-in -- pyproject's `rrtf.plugins`
entry point -- so that rrtf never imports quantize): a converted model directory (`python -m quantize export --to ct2`), or
the student during training (`--backend ct2[:QUANTIZATION]`, converted each round from the merged
student export, only when its weights changed: `quantize.ct2.cached_ct2`). The student is sampled at
the precision it is trained in (float32) unless a quantization is named (`ct2:int8`): the method ranks
samples of the policy it trains, and int8 samples a different one (docs/quantize.md: 23 of 32 greedy
answers agree on a CPU without VNNI). `identity()["precision"]` is the compute type that really runs.

    backend = build_backend("ct2", model_dir="model-ct2-int8/")          # or backend_from_spec("ct2:DIR")
    backend.generate(["def add(a, b):"], n=6, temperature=1.0, top_p=0.95, max_new_tokens=64, stop=["\\ndef"])

n samples per prompt are CTranslate2 hypotheses of one decoding (`num_hypotheses`); temperature,
top-k and top-p map to its sampling options; EOS ends a sample, and stop strings end it early
through the per-token callback (a request stops once all its samples have stopped; the base class
cuts the text at the stop). The same callback records each sample's tokens in the order they were
drawn, so sample j stays sample j (CTranslate2's own results are re-sorted by score). Prompts are
tokenized alone, without special tokens, exactly as the trainer and the transformers backend do.

Seeds. CTranslate2 4.8 has no per-call seed: its sampler draws from one random generator per
worker thread, seeded from `ctranslate2.set_random_seed` when the thread first samples and never
again. A seeded call therefore runs on a freshly created generator (its weights reloaded from the
page cache: ~25 ms for the embedded model). With `seeding="request"` (the default) every request is
decoded alone on its own generator seeded with `sample_seed(seed, request.key, 0)`: its n samples
depend on the model, prompt, key, seed, n and decoding settings only -- never on which requests
share a batch, so a resumed or re-sharded run draws the same samples. Unlike the transformers
backend, sample j is not its own stream: changing n changes every sample of the request.
`seeding="batch"` decodes all requests of a call together on one generator seeded from all their
keys: faster (requests batch together), reproducible only when the same requests come together.
Greedy decoding (temperature 0) needs no seed: one batched call, the answer copied n times.
"""
from __future__ import annotations

import atexit
import os
import weakref
from pathlib import Path
from typing import Any

from rrtf.backends.base import BACKENDS, GenerationBackend, GenerationRequest, SamplingParams, sample_seed
from rrtf.seeds import derive_seed

SEEDING = ("request", "batch")
COMPUTE_TYPES = ("default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
# Live backends: their generators are freed before the interpreter shuts down (a CTranslate2
# generator that ran a Python callback aborts the process if it is destroyed during finalization).
_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_live_backends() -> None:
    for backend in list(_LIVE):
        backend.close()


def check_ct2_model_dir(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CTranslate2 model directory {path} does not exist")
    if not (path / "model.bin").exists() or not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a CTranslate2 model (no model.bin/config.json); convert a checkpoint with "
                                f"`python -m quantize export --model CKPT --to ct2 --output_dir {path}`")
    return str(path)


def check_compute_type(compute_type: str, device: str) -> None:
    """An unknown or unsupported compute type is an error before any model is loaded."""
    import ctranslate2

    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"ct2 backend: unknown compute_type {compute_type!r}; known: {', '.join(COMPUTE_TYPES)}")
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ValueError("ct2 backend: device 'cuda' requested but CTranslate2 sees no CUDA device")
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in ("default", "auto") and compute_type not in supported:
        raise ValueError(f"ct2 backend: compute_type {compute_type!r} is not supported on {device} here "
                         f"(supported: {', '.join(sorted(supported))})")


STUDENT_OPTIONS = {"seeding": str, "compute_type": str, "device": str, "intra_threads": int, "max_batch_size": int}
# `--backend ct2` samples the trained weights as they are (rrtf.train trains the student in float32);
# a cheaper precision samples another policy, so it is asked for by name (`ct2:int8`).
STUDENT_QUANTIZATION = "float32"


def parse_student_arg(arg: str) -> tuple[str, dict[str, Any]]:
    """"int8,seeding=batch" -> ("int8", {"seeding": "batch"}); the quantization defaults to STUDENT_QUANTIZATION."""
    quantization, options = STUDENT_QUANTIZATION, {}
    for item in filter(None, (a.strip() for a in arg.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            quantization = item
        elif key in STUDENT_OPTIONS:
            try:
                options[key] = STUDENT_OPTIONS[key](value)
            except ValueError:
                raise ValueError(f"--backend ct2:{arg}: {key} must be {STUDENT_OPTIONS[key].__name__}, got {value!r}") from None
        else:
            raise ValueError(f"--backend ct2:{arg}: unknown option {key!r}; known: {', '.join(STUDENT_OPTIONS)}")
    return quantization, options


@BACKENDS.register("ct2")
class CT2Backend(GenerationBackend):
    spec_kinds = ("ct2",)
    uses_in_memory_model = False
    can_sample_student = True

    def __init__(self, model_dir: str | Path, *, tokenizer=None, device: str = "auto", compute_type: str = "default",
                 intra_threads: int = 0, inter_threads: int = 1, max_batch_size: int = 64, seeding: str = "request",
                 add_special_tokens: bool = False):
        """model_dir: a CTranslate2 model directory with its tokenizer (`python -m quantize export`).

        device: cpu, cuda or auto (cuda when CTranslate2 sees one). compute_type: CTranslate2's
            (default: the type the model was exported with, or the nearest the device runs).
        intra_threads: threads per generation (0: CTranslate2's default; OMP_NUM_THREADS if set).
        max_batch_size: rows (prompt x sample) decoded together; bounds memory.
        seeding: "request" (exact per-request seeds) or "batch" (faster); see the module docstring.
        """
        import ctranslate2

        from rrtf.modeling import load_tokenizer

        self.model_dir = check_ct2_model_dir(model_dir)
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        check_compute_type(compute_type, device)
        if seeding not in SEEDING:
            raise ValueError(f"ct2 backend: seeding must be one of {', '.join(SEEDING)}, got {seeding!r}")
        if max_batch_size < 1:
            raise ValueError(f"ct2 backend: max_batch_size must be >= 1, got {max_batch_size}")
        if isinstance(tokenizer, (str, Path)) or tokenizer is None:
            tokenizer = load_tokenizer(tokenizer or self.model_dir)
        self.tokenizer = tokenizer
        self.device, self.compute_type, self.seeding = device, compute_type, seeding
        self.intra_threads = intra_threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
        self.inter_threads, self.max_batch_size = inter_threads, max_batch_size
        self.add_special_tokens = add_special_tokens
        self._generator = None
        self._generator_sampled = False  # its random generator has been used: a seeded call needs a fresh one
        self._precision: str | None = None  # the compute type a loaded generator reported (`precision`)
        self.loads = 0  # generators created (tests and benchmarks read it)
        self.calls = 0
        _LIVE.add(self)

    def __getstate__(self) -> dict[str, Any]:
        """A backend travels (to a Ray generator actor) without its generator: the receiver loads its own
        from model_dir on first use (a CTranslate2 generator is a native object that does not pickle)."""
        return {**self.__dict__, "_generator": None, "_generator_sampled": False}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _LIVE.add(self)

    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        if not arg:
            raise ValueError("backend spec 'ct2:DIR' needs a CTranslate2 model directory")
        return {"model_dir": check_ct2_model_dir(arg)}

    @classmethod
    def for_student(cls, *, model=None, tokenizer=None, checkpoint_dir: str | None = None, arg: str = "", **options: Any):
        """`--backend ct2[:QUANTIZATION][,KEY=VALUE...]`: the student's merged checkpoint converted to
        CTranslate2 (default STUDENT_QUANTIZATION, float32), reusing the conversion while the weights are unchanged; KEY is
        one of STUDENT_OPTIONS (e.g. `ct2:int8,seeding=batch,intra_threads=2`)."""
        from quantize.ct2 import cached_ct2

        if checkpoint_dir is None:
            raise ValueError("ct2 backend samples a saved checkpoint of the student, not an in-memory model")
        quantization, parsed = parse_student_arg(arg)
        ct2_dir, _ = cached_ct2(checkpoint_dir, quantization)
        return cls(ct2_dir, tokenizer=tokenizer, **{**parsed, **options})

    def identity(self) -> dict[str, Any]:
        return {"backend": "ct2", "model": Path(self.model_dir).name, "compute_type": self.compute_type, "seeding": self.seeding,
                "precision": self.precision}

    @property
    def precision(self) -> str:
        """The compute type CTranslate2 really runs: the requested one resolved against the stored weights and
        the device ("default" on int8 weights is "int8_float32" on a CPU; "auto" may quantize float32 weights).
        CTranslate2 alone knows it, once a generator is loaded; one loaded only to ask is not kept (a Ray
        driver records the identity while its actors hold the generators)."""
        if self._precision is None:
            kept = self._generator is not None
            self.generator()
            if not kept:
                self._generator = None
        return self._precision

    def describe(self) -> str:
        return f"ct2 backend ({self.model_dir}, {self.device}, {self.compute_type})"

    def close(self) -> None:
        self._generator = None

    # -- generation ---------------------------------------------------------------------------------------
    def generator(self, *, fresh: bool = False):
        """The CTranslate2 generator; a new one (new worker thread, so a new random stream) if `fresh`."""
        import ctranslate2

        if fresh or self._generator is None:
            self._generator = None  # free the old weights before loading the new copy
            self._generator = ctranslate2.Generator(self.model_dir, device=self.device, compute_type=self.compute_type,
                                                    intra_threads=self.intra_threads, inter_threads=self.inter_threads)
            self._generator_sampled = False
            self._precision = self._generator.compute_type
            self.loads += 1
        return self._generator

    def _prompt_tokens(self, request: GenerationRequest) -> list[str]:
        if request.messages is None:
            text = request.prompt
        elif not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.describe()}: chat messages need a tokenizer with a chat template; this one has none")
        else:
            text = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"]
        if not ids:  # CTranslate2 needs a first token; StarCoder-style models start from EOS/BOS
            ids = [self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id]
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        self.calls += 1
        tokens = [self._prompt_tokens(r) for r in requests]
        if params.greedy:
            answers = self._decode(tokens, params, n=1, seed=None)
            return [a * params.n for a in answers]
        if self.seeding == "batch":
            return self._decode(tokens, params, n=params.n, seed=derive_seed(params.seed, "ct2-batch", *(r.stream_key for r in requests)))
        return [self._decode([t], params, n=params.n, seed=sample_seed(params.seed, r.stream_key, 0))[0]
                for r, t in zip(requests, tokens)]

    def _decode(self, tokens: list[list[str]], params: SamplingParams, *, n: int, seed: int | None) -> list[list[str]]:
        """n completions per prompt; with `seed`, sampled on a fresh generator seeded with it."""
        import ctranslate2

        if seed is not None:
            ctranslate2.set_random_seed(seed)  # read by the new generator's thread when it first samples
            generator = self.generator(fresh=self._generator_sampled or self._generator is None)
            self._generator_sampled = True
        else:
            generator = self.generator()
        options: dict[str, Any] = dict(max_length=params.max_new_tokens, include_prompt_in_result=False, beam_size=1, num_hypotheses=n)
        if seed is None:
            options.update(sampling_topk=1)
        else:
            options.update(sampling_topk=params.top_k, sampling_topp=params.top_p, sampling_temperature=params.temperature)
        # Longest first, so similar lengths share a batch (CTranslate2 forwards a batch's common prompt
        # length at once and feeds the rest token by token).
        order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
        out: list[list[str]] = [[] for _ in tokens]
        step = max(1, self.max_batch_size // n)
        for start in range(0, len(order), step):
            chunk = order[start: start + step]
            recorder = _StepRecorder(self.tokenizer, params.stop, n)
            generator.generate_batch([tokens[i] for i in chunk], callback=recorder, **options)
            for b, i in enumerate(chunk):
                out[i] = [self.tokenizer.decode(recorder.ids.get((b, j), []), skip_special_tokens=True) for j in range(n)]
        return out


class _StepRecorder:
    """CTranslate2 step callback: records each sample's tokens in the order they were drawn (the
    results CTranslate2 returns are re-sorted by score, so sample j would not stay sample j when a
    stop string shortens it), and answers True -- stop this prompt -- once each of its n samples has
    ended or contains a stop string (only the tail of a sample is decoded per step)."""

    def __init__(self, tokenizer, stop: tuple[str, ...], n: int):
        self.tokenizer, self.stop, self.n = tokenizer, stop, n
        self.end_ids = {tokenizer.eos_token_id}
        self.window = 4 * max((len(s) for s in stop), default=0) + 4  # tokens: byte-level BPE may need 4 per character
        self.ids: dict[tuple[int, int], list[int]] = {}
        self.done: dict[int, set[int]] = {}

    def __call__(self, step) -> bool:
        finished = self.done.setdefault(step.batch_id, set())
        if step.hypothesis_id in finished:
            return len(finished) >= self.n
        ids = self.ids.setdefault((step.batch_id, step.hypothesis_id), [])
        if step.is_last and step.token_id in self.end_ids:
            finished.add(step.hypothesis_id)  # EOS ends the sample and is not part of it
        else:
            ids.append(step.token_id)
            if step.is_last or (self.stop and any(s in self.tokenizer.decode(ids[-self.window:]) for s in self.stop)):
                finished.add(step.hypothesis_id)
        return len(finished) >= self.n
