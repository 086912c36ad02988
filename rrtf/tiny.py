"""The embedded default model: a tiny StarCoder, built deterministically on first use and cached.

`ensure_tiny_model("warm")` is what `python -m rrtf.train` trains when no checkpoint is given: a
GPTBigCode (StarCoder's architecture, multi-query attention) with the real StarCoder tokenizer,
warmed up by next-token SFT on the tiny-tasks "warmup" split, so that its samples on the "train"
split sometimes pass and sometimes fail -- the situation RRTF is made for. "random" is the same
model untrained (for tests).

The cache (`rrtf.paths.models_cache()`: RRTF_CACHE/models, default ~/.cache/rrtf/models) is keyed by a hash of the build recipe, so a
changed recipe rebuilds; a build writes into a temporary directory and renames it into place, so a
build killed half-way never leaves a half model behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rrtf.modeling import STARCODER_TOKENIZER, build_tiny_model, load_starcoder_tokenizer
from rrtf.paths import models_cache
from rrtf.prompts import DEFAULT_TEMPLATE, build_prompt

KINDS = ("random", "warm")
# Bump when the build code changes in a way the recipe fields do not capture.
BUILD_VERSION = 1


@dataclass(frozen=True)
class TinyRecipe:
    """Everything that determines the built model (its hash names the cache entry).

    The warm-up length is tuned, not arbitrary: the model learns tiny-tasks in a sharp transition
    (held-out greedy pass@1 ~5% at step 130, ~18% at 140, ~43% at 145, ~58% at 150, ~85% at 300).
    145 steps leave it in the middle, so that its T=1.0 samples on train prompts mix passing and
    failing answers and a little more training on the train split lifts held-out pass@1 a lot (both
    neighbouring states, 140 and 150, would satisfy that too, should another CPU's arithmetic shift
    the transition by a few steps). About 50 s on two idle cores.
    """

    # Architecture. The 49,152-token vocabulary dominates the size: tied embeddings keep it ~27 MB.
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    seed: int = 0
    # Warm-up SFT on the tiny-tasks "warmup" split.
    task_seed: int = 0
    n_warmup_problems: int = 3000
    steps: int = 145
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    prompt_template: str = DEFAULT_TEMPLATE

    def key(self, kind: str) -> str:
        spec = {"kind": kind, "build_version": BUILD_VERSION, "tokenizer": _file_digest(STARCODER_TOKENIZER)}
        if kind == "warm":
            # The warm-up data itself, so that a change to the task generator rebuilds too.
            spec.update(asdict(self), data=hashlib.sha256(json.dumps(self.warmup_pairs()).encode()).hexdigest())
        else:
            spec.update({k: getattr(self, k) for k in ("n_layer", "n_embd", "n_head", "n_positions", "seed")})
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]

    def warmup_pairs(self) -> list[tuple[str, str]]:
        """(prompt, response) pairs of the warm-up SFT: the tiny-tasks "warmup" split."""
        from rrtf.datasets.tiny_tasks import make_tiny_tasks

        problems = make_tiny_tasks(self.task_seed, n_warmup=self.n_warmup_problems, n_train=0, n_heldout=0)["warmup"]
        return [(build_prompt(p, self.prompt_template), p.canonical_solution) for p in problems]


DEFAULT_RECIPE = TinyRecipe()


def tiny_model_path(kind: str = "warm", *, recipe: TinyRecipe = DEFAULT_RECIPE, cache_dir: str | Path | None = None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; known: {', '.join(KINDS)}")
    return Path(cache_dir or models_cache()) / f"tiny-starcoder-{kind}-{recipe.key(kind)}"


def ensure_tiny_model(
    kind: str = "warm",
    *,
    recipe: TinyRecipe = DEFAULT_RECIPE,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    num_threads: int | None = None,
) -> Path:
    """Path of the cached tiny model of this kind and recipe, building it first if needed."""
    final = tiny_model_path(kind, recipe=recipe, cache_dir=cache_dir)

    def build(tmp: Path) -> dict:
        start = time.time()
        build_tiny_model(tmp, seed=recipe.seed, n_layer=recipe.n_layer, n_embd=recipe.n_embd, n_head=recipe.n_head, n_positions=recipe.n_positions)
        stats: dict = {}
        if kind == "warm":
            stats = _warm_up(tmp, recipe, progress=progress, num_threads=num_threads)
        return {"kind": kind, "recipe": asdict(recipe), "build_seconds": round(time.time() - start, 1), **stats}

    message = f"Building the embedded tiny StarCoder ({kind}; first use, cached in {final})" if progress else None
    return build_once(final, build, message)


def build_once(final: Path, build, message: str | None = None) -> Path:
    """`final`, built by `build(tmp_dir) -> info` first if needed: in a temporary directory renamed into
    place with `recipe.json` (the info) written last, so a cached build is complete or absent; a killed
    build's leftovers are removed; two processes building at once both end with the one that won."""
    if (final / "recipe.json").exists():  # written last, so its presence means a complete build
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_builds(final)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if message:
        print(message, file=sys.stderr, flush=True)
    try:
        info = build(tmp)
        (tmp / "recipe.json").write_text(json.dumps(info, indent=2))
        if final.exists() and not (final / "recipe.json").exists():
            shutil.rmtree(final)  # not one of our builds (they appear complete or not at all)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "recipe.json").exists():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _remove_dead_builds(final: Path) -> None:
    """Temporary directories of builds whose process is gone (killed) are garbage."""
    for stale in final.parent.glob(f".tmp-{final.name}-*"):
        try:
            pid = int(stale.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # raises if no such process
        except (ValueError, ProcessLookupError):
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# --- warm-up SFT ---------------------------------------------------------------------------------


def tokenize_pairs(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, response ids + EOS) per pair, tokenized SEPARATELY: StarCoder's tokenizer merges a
    newline with the next line's indentation, so tokenizing prompt + response jointly would give token
    boundaries the model never sees at generation time (when it continues the prompt's own tokens)."""
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    responses = tokenizer([r for _, r in pairs], add_special_tokens=False)["input_ids"]
    return [(p, r + [tokenizer.eos_token_id]) for p, r in zip(prompts, responses)]


def sft(
    model,
    examples: list[tuple[list[int], list[int]]],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int = 10,
    weight_decay: float = 0.0,
    seed: int = 0,
    pad_id: int = 0,
    progress: bool = True,
    desc: str = "tiny warm-up",
    callback=None,
) -> list[float]:
    """Next-token SFT with the loss on response tokens only; returns the loss per step.

    A plain loop rather than transformers' Trainer because it computes the 49,152-way output layer
    only at response positions -- most of a tiny model's compute -- which halves the build time.
    The learning rate warms up linearly, then stays constant: the warm model is deliberately left
    mid-way along its learning curve (see TinyRecipe), with no annealing for RRTF to undo.
    Deterministic: the data order comes from `seed`, not from global RNG state.
    `callback(step, model)`, if given, runs after each step (used to measure learning curves).
    """
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.98), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup_steps)))
    order_rng = random.Random(seed)
    order: list[int] = []
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, unit="step")
    for step in bar:
        if len(order) < batch_size:
            epoch = list(range(len(examples)))
            order_rng.shuffle(epoch)
            order += epoch
        batch = [examples[i] for i in order[:batch_size]]
        del order[:batch_size]
        loss = response_loss(model, batch, pad_id=pad_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
        if callback is not None:
            callback(step + 1, model)
            model.train()
    model.eval()
    return losses


def response_loss(model, batch: list[tuple[list[int], list[int]]], *, pad_id: int = 0) -> torch.Tensor:
    """Mean next-token cross-entropy over the response tokens of right-padded (prompt, response) pairs."""
    length = max(len(p) + len(r) for p, r in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    attn = torch.zeros((len(batch), length), dtype=torch.long)
    target = torch.zeros((len(batch), length), dtype=torch.bool)  # positions whose token is predicted
    for i, (p, r) in enumerate(batch):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        attn[i, : len(p) + len(r)] = 1
        target[i, len(p) : len(p) + len(r)] = True
    hidden = model.transformer(input_ids=ids, attention_mask=attn).last_hidden_state
    # hidden state at t predicts token t+1: select the states just before each response token.
    picked = hidden[:, :-1][target[:, 1:]]
    logits = model.lm_head(picked)
    return torch.nn.functional.cross_entropy(logits.float(), ids[:, 1:][target[:, 1:]])


def _warm_up(model_dir: Path, recipe: TinyRecipe, *, progress: bool, num_threads: int | None) -> dict:
    threads_before = torch.get_num_threads()
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    try:
        return _warm_up_with_threads(model_dir, recipe, progress=progress)
    finally:
        torch.set_num_threads(threads_before)


def _warm_up_with_threads(model_dir: Path, recipe: TinyRecipe, *, progress: bool) -> dict:
    from transformers import GPTBigCodeForCausalLM

    torch.manual_seed(recipe.seed)
    tokenizer = load_starcoder_tokenizer()
    examples = tokenize_pairs(tokenizer, recipe.warmup_pairs())
    model = GPTBigCodeForCausalLM.from_pretrained(str(model_dir))
    start = time.time()
    losses = sft(
        model, examples, steps=recipe.steps, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
        warmup_steps=recipe.warmup_steps, weight_decay=recipe.weight_decay, seed=recipe.seed,
        pad_id=tokenizer.pad_token_id, progress=progress,
    )
    model.save_pretrained(str(model_dir))
    tail = losses[-10:]
    return {"warmup_seconds": round(time.time() - start, 1), "final_loss": round(sum(tail) / max(1, len(tail)), 4)}


__all__ = ["DEFAULT_RECIPE", "KINDS", "TinyRecipe", "ensure_tiny_model", "response_loss", "sft", "tiny_model_path", "tokenize_pairs"]
