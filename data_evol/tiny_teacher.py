"""The embedded default teacher: a tiny model trained here, on the procedural task family, to evolve
tasks and to answer them with a solution and unit tests.

No pretrained model exists on this machine, and a randomly initialised one writes noise, so the
default job trains its own teacher (data_evol/procedural.py makes the data): a GPTBigCode
(StarCoder's architecture) with its own byte-level BPE vocabulary learnt from that data (1,024
tokens instead of StarCoder's 49,152: the output layer is what costs a tiny model its time), and a
chat template, so that it is asked exactly as a served chat model is (`GenerationRequest(messages=...)`
through rrtf's transformers backend). Two checkpoints of one training run are kept: "strong" (the
end) and "weak" (part-way), teachers of different quality for RRTF to rank.

Built once and cached under `rrtf.paths.models_cache()` keyed by a hash of the recipe and of the
templates file it was trained on (edited templates rebuild it); a build writes into a temporary
directory renamed into place, so a killed build never leaves half a teacher behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from data_evol.prompts import Templates, load_templates

BUILD_VERSION = 1
CHAT_TEMPLATE = (
    "{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant:\n{% endif %}"
)
EOS = "<|endoftext|>"
# Spec names of the default teachers (EvolConfig.evolver / teachers).
DEFAULT_NAMES = {"default": "strong", "default-weak": "weak"}


@dataclass(frozen=True)
class TeacherRecipe:
    """Everything that determines the built teacher; its hash names the cache entry."""

    vocab_size: int = 1024
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_positions: int = 512
    n_evolve: int = 4000
    n_answer: int = 4000
    steps: int = 450
    weak_steps: int = 350  # the "weak" teacher: the same run, stopped here
    batch_size: int = 24
    learning_rate: float = 5e-3
    warmup_steps: int = 20
    seed: int = 0

    def key(self, templates: Templates) -> str:
        # The data generator's source too: a change to the task family rebuilds the teacher.
        spec = {**asdict(self), "build_version": BUILD_VERSION, "templates": templates.digest,
                "data": hashlib.sha256((Path(__file__).parent / "procedural.py").read_bytes()).hexdigest()}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


DEFAULT_RECIPE = TeacherRecipe()


def teacher_root(templates: Templates, recipe: TeacherRecipe = DEFAULT_RECIPE) -> Path:
    from rrtf.paths import models_cache

    return models_cache() / f"data-evol-teacher-{recipe.key(templates)}"


def ensure_teacher(which: str = "strong", *, templates: Templates | None = None, recipe: TeacherRecipe = DEFAULT_RECIPE,
                   progress: bool = True, num_threads: int | None = None) -> Path:
    """The directory of the cached default teacher ("strong" or "weak"), built first if needed."""
    if which not in ("strong", "weak"):
        raise ValueError(f"default teacher: unknown checkpoint {which!r} (strong or weak)")
    templates = templates or load_templates()
    root = teacher_root(templates, recipe)
    from rrtf.tiny import build_once  # the same cache rules as rrtf's tiny model

    message = f"Building the default data_evol teacher (first use; cached in {root})" if progress else None
    build_once(root, lambda tmp: _build(tmp, templates, recipe, progress=progress, num_threads=num_threads), message)
    return root / which


def _render(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS, unk_token=EOS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _build(out: Path, templates: Templates, recipe: TeacherRecipe, *, progress: bool, num_threads: int | None) -> dict:
    import torch
    from transformers import GenerationConfig, GPTBigCodeConfig, GPTBigCodeForCausalLM

    from data_evol.procedural import training_pairs
    from rrtf.tiny import sft, tokenize_pairs

    start = time.time()
    pairs = training_pairs(templates, recipe.n_evolve, recipe.n_answer, seed=recipe.seed)
    from jinja2 import Template  # the chat template, rendered the same way transformers renders it

    chat = Template(CHAT_TEMPLATE)
    texts = [(chat.render(messages=m, add_generation_prompt=True), r) for m, r in pairs]
    tokenizer = train_tokenizer([p + r for p, r in texts], recipe.vocab_size)
    assert all(_render(tokenizer, m) == p for (m, _), (p, _) in zip(pairs[:20], texts[:20])), "chat template renders differently"
    examples = tokenize_pairs(tokenizer, texts)
    longest = max(len(p) + len(r) for p, r in examples)
    if longest > recipe.n_positions:
        raise ValueError(f"default teacher: a training pair has {longest} tokens, over n_positions={recipe.n_positions}")
    config = GPTBigCodeConfig(vocab_size=len(tokenizer), n_positions=recipe.n_positions, n_embd=recipe.n_embd, n_layer=recipe.n_layer,
                              n_head=recipe.n_head, multi_query=True, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                              tie_word_embeddings=True, attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0)  # dropout: half the step time
    threads_before = torch.get_num_threads()
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    try:
        torch.manual_seed(recipe.seed)
        model = GPTBigCodeForCausalLM(config)

        def save(name: str, m) -> None:
            m.save_pretrained(out / name)
            tokenizer.save_pretrained(out / name)
            GenerationConfig(eos_token_id=0, pad_token_id=0, bos_token_id=0, do_sample=True).save_pretrained(out / name)

        def checkpoint(step: int, m) -> None:
            if step == recipe.weak_steps:
                save("weak", m)

        losses = sft(model, examples, steps=recipe.steps, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
                     warmup_steps=recipe.warmup_steps, seed=recipe.seed, pad_id=0, progress=progress, desc="default teacher",
                     callback=checkpoint)
        save("strong", model)
    finally:
        torch.set_num_threads(threads_before)
    tail = losses[-20:]
    weak_tail = losses[max(0, recipe.weak_steps - 20): recipe.weak_steps]
    return {"recipe": asdict(recipe), "templates": templates.tag, "build_seconds": round(time.time() - start, 1),
            "final_loss": round(sum(tail) / len(tail), 4), "weak_loss": round(sum(weak_tail) / max(1, len(weak_tail)), 4),
            "longest_pair_tokens": longest, "pairs": len(pairs)}


__all__ = ["CHAT_TEMPLATE", "DEFAULT_NAMES", "DEFAULT_RECIPE", "TeacherRecipe", "ensure_teacher", "teacher_root", "train_tokenizer"]
