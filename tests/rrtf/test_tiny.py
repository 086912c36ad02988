"""rrtf.tiny: the embedded tiny StarCoder is built on first use, cached by recipe, built atomically,
and its warm-up really trains (a tiny-budget build; the full warm-up belongs to the end-to-end run)."""
from __future__ import annotations

import json
import subprocess
import sys

import torch
from safetensors.torch import load_file
from transformers import GPTBigCodeForCausalLM

from rrtf.datasets.tiny_tasks import load_tiny_tasks
from rrtf.modeling import load_starcoder_tokenizer, load_tokenizer
from rrtf.prompts import build_prompt
from rrtf.tiny import DEFAULT_RECIPE, TinyRecipe, ensure_tiny_model, response_loss, sft, tiny_model_path, tokenize_pairs

SMOKE = TinyRecipe(n_warmup_problems=24, steps=4, batch_size=4, warmup_steps=1)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_random_model_builds_and_is_cached(tmp_path):
    path = ensure_tiny_model("random", cache_dir=tmp_path, progress=False)
    assert path.parent == tmp_path and (path / "recipe.json").exists()
    model = GPTBigCodeForCausalLM.from_pretrained(str(path))
    assert model.config.multi_query and model.config.vocab_size == 49152  # StarCoder's architecture and vocabulary
    assert model.config.n_embd == DEFAULT_RECIPE.n_embd and model.config.n_layer == DEFAULT_RECIPE.n_layer
    assert len(load_tokenizer(path)) == len(load_starcoder_tokenizer())
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model("random", cache_dir=tmp_path, progress=False) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary directories left


def test_cache_key_follows_the_recipe(tmp_path):
    assert tiny_model_path("warm", recipe=DEFAULT_RECIPE) != tiny_model_path("warm", recipe=TinyRecipe(steps=DEFAULT_RECIPE.steps + 1))
    # The untrained model does not depend on warm-up settings, only on architecture and seed.
    assert tiny_model_path("random", recipe=TinyRecipe(steps=1)) == tiny_model_path("random", recipe=DEFAULT_RECIPE)
    assert tiny_model_path("random", recipe=TinyRecipe(seed=1)) != tiny_model_path("random", recipe=DEFAULT_RECIPE)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RRTF_CACHE", str(tmp_path / "env-cache"))
    assert tiny_model_path("random").parent == tmp_path / "env-cache" / "models"


def test_killed_build_leaves_nothing_half_built(tmp_path):
    final = tiny_model_path("random", cache_dir=tmp_path)
    # A real build process killed mid-way: it leaves only its temporary directory behind.
    code = (
        "import os, signal, rrtf.tiny as t\n"
        "def die(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "t.build_tiny_model = lambda out, **k: (os.makedirs(out), open(os.path.join(out, 'config.json'), 'w').write('{}'), die())\n"
        f"t.ensure_tiny_model('random', cache_dir={str(tmp_path)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-") and not final.exists()
    # The next call ignores (and removes) the dead build's directory and builds a complete model.
    path = ensure_tiny_model("random", cache_dir=tmp_path, progress=False)
    assert path == final and (path / "recipe.json").exists() and (path / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_tokenize_pairs_keeps_prompt_and_response_tokens_apart():
    tok = load_starcoder_tokenizer()
    prompt, response = "### Response:\n", "def f(x):\n    return x\n"
    [(p, r)] = tokenize_pairs(tok, [(prompt, response)])
    assert p == tok(prompt)["input_ids"] and r[-1] == tok.eos_token_id
    assert tok.decode(p + r[:-1]) == prompt + response
    assert tok.decode(r[:1]) == "def"  # the response starts on its own token, as when generating after the prompt


def test_sft_lowers_the_response_loss():
    tok = load_starcoder_tokenizer()
    torch.manual_seed(0)
    from rrtf.modeling import tiny_starcoder_config

    model = GPTBigCodeForCausalLM(tiny_starcoder_config(len(tok), n_layer=1, n_embd=32, n_head=2))
    problems = load_tiny_tasks("train")[:8]
    examples = tokenize_pairs(tok, [(build_prompt(p), p.canonical_solution) for p in problems])
    with torch.no_grad():
        before = response_loss(model, examples).item()
    losses = sft(model, examples, steps=30, batch_size=8, learning_rate=1e-2, warmup_steps=1, progress=False)
    with torch.no_grad():
        after = response_loss(model, examples).item()
    assert len(losses) == 30 and after < before - 2.0, (before, after)


def test_warm_build_is_deterministic(tmp_path):
    a = ensure_tiny_model("warm", recipe=SMOKE, cache_dir=tmp_path / "a", progress=False, num_threads=1)
    b = ensure_tiny_model("warm", recipe=SMOKE, cache_dir=tmp_path / "b", progress=False, num_threads=1)
    info = json.loads((a / "recipe.json").read_text())
    assert info["kind"] == "warm" and info["recipe"]["steps"] == SMOKE.steps and info["final_loss"] > 0
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # ... and the warm-up changed the weights of the untrained model it started from.
    random = _weights(ensure_tiny_model("random", recipe=SMOKE, cache_dir=tmp_path / "a", progress=False))
    assert not torch.equal(random["transformer.h.0.attn.c_attn.weight"], wa["transformer.h.0.attn.c_attn.weight"])
