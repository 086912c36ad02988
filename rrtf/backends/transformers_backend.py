"""Generation with a local transformers causal LM: a checkpoint path, or the in-training student.

Prompts are tokenized alone, exactly as training tokenizes them (StarCoder's tokenizer merges "\\n"
and the next line's indent into one token, so tokenizing prompt+completion together would put the
boundary somewhere the model never sees at generation time; `add_special_tokens=False` as in
rrtf.packing). Batches are left-padded, rows sorted by length so little padding is wasted.

Sampling is seeded per row: each (request, sample) row draws from its own generator
(`sample_seed(seed, request.key, j)`) through the Gumbel-max trick -- argmax(logits / T + Gumbel
noise) is a draw from softmax(logits / T) -- so a row's sample does not depend on which other rows
share its batch, and the caller's global RNG (the trainer's) is never touched. Greedy decoding
(temperature 0) decodes once and copies the answer n times. torch is imported inside the class:
importing this module (the registry does) stays light.
"""
from __future__ import annotations

import copy
import weakref
from pathlib import Path
from typing import Any

from rrtf.backends.base import BACKENDS, GenerationBackend, GenerationRequest, PromptTooLong, SamplingParams, sample_seed

# tokenizer -> stop strings -> StoppingCriteriaList, shared by every backend on the same tokenizer.
_STOP_CRITERIA: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _check_dir(path: str | Path, what: str = "model") -> str:
    if not Path(path).exists():
        raise FileNotFoundError(f"{what} directory {path} does not exist (this machine has no hub access: give a local checkpoint)")
    return str(path)


@BACKENDS.register("transformers")
class TransformersBackend(GenerationBackend):
    spec_kinds = ("transformers",)
    uses_in_memory_model = True
    can_sample_student = True

    def __init__(self, model_name_or_path: str | Path | None = None, *, model=None, tokenizer=None,
                 tokenizer_name_or_path: str | Path | None = None, batch_size: int = 16, dtype: str = "auto",
                 device: str | None = None, add_special_tokens: bool = False):
        """Either `model_name_or_path` (a local checkpoint directory) or an already-loaded `model`
        (with its `tokenizer`); `model` / `tokenizer` may also be given as paths.

        batch_size: rows (prompt x sample) per `model.generate` call; it bounds memory.
        add_special_tokens: False tokenizes prompts exactly as the trainer does (rrtf.packing); True
            lets a tokenizer add its BOS, for teachers that were trained with one.
        """
        import torch

        from rrtf.modeling import load_model, load_tokenizer

        if isinstance(model, (str, Path)):  # build_backend("transformers", model="ckpt/") reads naturally too
            model_name_or_path, model = model, None
        if isinstance(tokenizer, (str, Path)):
            tokenizer_name_or_path, tokenizer = tokenizer, None
        if model is None:
            if model_name_or_path is None:
                raise ValueError("transformers backend: pass model_name_or_path or an already-loaded model")
            model = load_model(model_name_or_path, dtype=dtype)  # FileNotFoundError names a missing path
            model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if tokenizer is None:
            tokenizer = load_tokenizer(tokenizer_name_or_path or model_name_or_path or model.name_or_path)
        if tokenizer.pad_token is None:  # batching needs one; EOS is what StarCoder and most code LMs use
            tokenizer.pad_token = tokenizer.eos_token
        if batch_size < 1:
            raise ValueError(f"transformers backend: batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self.source = str(model_name_or_path or getattr(model, "name_or_path", "") or "in-memory model")
        self.calls = 0  # number of generate() calls, for progress reports and tests

    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        if not arg:
            raise ValueError("backend spec 'transformers:PATH' needs the checkpoint directory")
        return {"model_name_or_path": _check_dir(arg)}

    @classmethod
    def for_student(cls, *, model=None, tokenizer=None, checkpoint_dir=None, arg="", **options):
        if model is not None:
            return cls(model=model, tokenizer=tokenizer, **options)
        return cls(_check_dir(checkpoint_dir), tokenizer=tokenizer, **options)

    def identity(self) -> dict[str, Any]:
        return {"backend": "transformers", "model": Path(self.source).name, "precision": self.precision}

    @property
    def precision(self) -> str:
        """The model's dtype, read now: the in-training student is this very object, and a cast of it shows."""
        dtype = getattr(self.model, "dtype", None) or next(self.model.parameters()).dtype
        return str(dtype).removeprefix("torch.")

    def describe(self) -> str:
        return f"transformers backend ({self.source})"

    # -- generation ---------------------------------------------------------------------------------------
    def _prompt_text(self, request: GenerationRequest) -> str:
        if request.messages is None:
            return request.prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.describe()}: chat messages need a tokenizer with a chat template; this one has none")
        return self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)

    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        import torch

        self.calls += 1
        per_request = 1 if params.greedy else params.n  # greedy samples are all the same: decode once, copy
        texts = [self._prompt_text(r) for r in requests]
        rows = [(texts[i], sample_seed(params.seed, r.stream_key, j)) for i, r in enumerate(requests) for j in range(per_request)]
        # Longest first: similar lengths share a batch, and an out-of-memory error shows up at once.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        out: list[str] = [""] * len(rows)
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                config = self._generation_config(params.max_new_tokens)
                criteria = self._stop_criteria(list(params.stop))
                for start in range(0, len(order), self.batch_size):
                    batch = order[start: start + self.batch_size]
                    decoded = self._generate_batch([rows[i] for i in batch], params, config, criteria)
                    for i, text in zip(batch, decoded):
                        out[i] = text
        finally:
            model.train(was_training)
        result = []
        for k in range(len(requests)):
            mine = out[k * per_request: (k + 1) * per_request]
            result.append(mine * params.n if params.greedy else mine)
        return result

    def _generation_config(self, max_new_tokens: int):
        config = copy.deepcopy(self.model.generation_config)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if config.eos_token_id is None:
            config.eos_token_id = self.tokenizer.eos_token_id
        # Always "greedy" for transformers: sampling happens in _SeededSampler, which adds per-row
        # Gumbel noise to the warped logits so the argmax is a seeded sample.
        config.update(max_new_tokens=max_new_tokens, max_length=None, num_return_sequences=1, num_beams=1,
                      pad_token_id=pad, use_cache=True, do_sample=False, temperature=1.0, top_p=1.0, top_k=50)
        return config

    def _fit_context(self, prompt_tokens: int, config):
        """Generation ends at the model's context (a learned position table has no row beyond it): fewer
        new tokens when prompt + max_new_tokens would overflow; a prompt that fills it alone is an error."""
        context = getattr(self.model.config, "max_position_embeddings", None)
        if not context or prompt_tokens + config.max_new_tokens <= context:
            return config
        if prompt_tokens >= context:
            raise PromptTooLong(f"a prompt of {prompt_tokens} tokens does not fit the model's context of {context} tokens "
                             f"(max_position_embeddings); use a model with a longer context or shorter prompts")
        config = copy.deepcopy(config)
        config.max_new_tokens = context - prompt_tokens
        return config

    def _stop_criteria(self, stop: list[str]):
        """Stop a row early at a stop string (the text is trimmed after decoding anyway). Built once per
        set of stop strings: StopStringCriteria preprocesses the whole vocabulary (~1.5 s for StarCoder's)."""
        if not stop:
            return None
        try:
            cache = _STOP_CRITERIA.setdefault(self.tokenizer, {})
        except TypeError:  # a tokenizer that cannot be weakly referenced: no sharing across backends
            cache = self.__dict__.setdefault("_own_stop_criteria", {})
        key = tuple(stop)
        if key not in cache:
            from transformers import StoppingCriteriaList, StopStringCriteria

            cache[key] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stop))])
        return cache[key]

    def _generate_batch(self, rows: list[tuple[str, int]], params: SamplingParams, config, criteria) -> list[str]:
        from transformers import LogitsProcessorList

        enc = self.tokenizer([text for text, _ in rows], return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=self.add_special_tokens).to(self.model.device)
        processors = None
        if not params.greedy:
            processors = LogitsProcessorList([_SeededSampler([seed for _, seed in rows], params)])
        config = self._fit_context(enc["input_ids"].shape[1], config)
        out = self.model.generate(**enc, generation_config=config, stopping_criteria=criteria, logits_processor=processors)
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def close(self) -> None:
        import torch

        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _SeededSampler:
    """A logits processor that turns greedy decoding into sampling with one generator per row:
    temperature, top-k and top-p shape the distribution, Gumbel(0, 1) noise drawn from the row's own
    generator makes the argmax a sample from it."""

    def __init__(self, seeds: list[int], params: SamplingParams):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.params = params

    def __call__(self, input_ids, scores):
        import torch

        p = self.params
        logits = scores.float() / p.temperature
        if p.top_k and p.top_k < logits.shape[-1]:
            kth = torch.topk(logits, p.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if p.top_p < 1.0:
            sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
            cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            drop = cum - torch.softmax(sorted_logits, dim=-1) > p.top_p  # keep the token that crosses p
            logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
        uniform = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in self.generators]).to(logits.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-10, max=1 - 1e-7)))
        return logits + gumbel
