"""Generation backends on a real tiny StarCoder: transformers in-process, and OpenAI-compatible
through a real `transformers serve` process serving the same checkpoint."""
from __future__ import annotations

import pytest
import torch
from testkit import free_port

from rrtf.backends import BACKENDS, build_backend, trim_at_stop
from rrtf.backends.openai_backend import OpenAIBackend
from rrtf.backends.reference import ReferenceBackend
from rrtf.backends.transformers_backend import TransformersBackend

PROMPTS = ["def add(a, b):\n    return", "x = 1\n", "class Foo:\n    def __init__(self):\n        self.x = 0\n"]


@pytest.fixture(scope="module")
def backend(tiny_dir) -> TransformersBackend:
    torch.set_num_threads(1)
    return build_backend("transformers", model_name_or_path=tiny_dir, batch_size=4)


def test_registry_has_the_builtin_backends_and_names_unknown_ones():
    assert {"transformers", "openai", "reference"} <= set(BACKENDS.names())
    with pytest.raises(ValueError, match=r"unknown generation backend 'vllm-nope'; known: ct2, openai, reference, transformers"):
        build_backend("vllm-nope")


def test_trim_at_stop_cuts_at_the_earliest_stop():
    assert trim_at_stop("a\ndef b\nclass c", ["\nclass", "\ndef"]) == "a"
    assert trim_at_stop("abc", None) == "abc" and trim_at_stop("abc", ["z"]) == "abc"


def test_transformers_sampling_is_seeded_and_greedy_is_deterministic(backend):
    a = backend.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=8, seed=1)
    assert len(a) == 3 and all(len(samples) == 3 for samples in a)
    assert all(isinstance(t, str) and t for samples in a for t in samples)
    assert backend.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=8, seed=1) == a
    b = backend.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=8, seed=2)
    assert b != a
    assert len({t for samples in a for t in samples}) > 3  # samples of one prompt differ too

    g = backend.generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=8, seed=1)
    assert all(s[0] == s[1] for s in g)
    assert backend.generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=8, seed=99) == g
    assert all(PROMPTS[i] not in g[i][0] for i in range(3))  # only the new text comes back


def test_transformers_batches_padding_and_caller_state(backend, tiny_dir):
    # Left padding must not change what a prompt generates: batch of 1 == batch of 4.
    one = TransformersBackend(model=backend.model, tokenizer=backend.tokenizer, batch_size=1)
    assert one.generate(PROMPTS, max_new_tokens=10) == backend.generate(PROMPTS, max_new_tokens=10)
    # The caller's RNG and train/eval mode survive a call (the student is sampled mid-training).
    backend.model.train()
    torch.manual_seed(123)
    backend.generate(PROMPTS[:1], n=2, temperature=1.0, max_new_tokens=4, seed=5)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))
    assert backend.model.training
    backend.model.eval()


def test_transformers_stops_and_trims(backend):
    free = backend.generate(PROMPTS[:1], n=4, temperature=1.0, max_new_tokens=24, seed=3)[0]
    # Pick stop strings that do occur in the free-running text, so the test can fail.
    stop = [free[0][3:5]]
    cut = backend.generate(PROMPTS[:1], n=4, temperature=1.0, max_new_tokens=24, seed=3, stop=stop)[0]
    assert all(stop[0] not in t for t in cut)
    assert cut[0] == free[0][: free[0].find(stop[0])]


def test_transformers_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/ckpt does not exist"):
        build_backend("transformers", model_name_or_path=str(tmp_path / "nowhere" / "ckpt"))
    with pytest.raises(ValueError, match="model_name_or_path or an already-loaded model"):
        build_backend("transformers")


def test_reference_backend_answers_by_prompt():
    ref = build_backend("reference", answers={"p1": "a1", "p2": "a2"})
    assert isinstance(ref, ReferenceBackend)
    assert ref.generate(["p2", "p1"], n=2) == [["a2", "a2"], ["a1", "a1"]]
    with pytest.raises(KeyError, match="no reference answer for prompt 'p3'"):
        ref.generate(["p3"])


# --------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint: a real `transformers serve` process
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_openai_completions_against_transformers_serve(served, tiny_dir):
    base_url, model_dir = served
    api = OpenAIBackend(base_url, model_dir, concurrency=1)  # serial: the server seeds a global RNG
    greedy = api.generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=8)
    # The server runs the same weights: its greedy text is the in-process greedy text.
    local = TransformersBackend(tiny_dir, batch_size=4).generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=8)
    assert greedy == local

    a = api.generate(PROMPTS[:2], n=3, temperature=1.0, max_new_tokens=8, seed=7)
    assert [len(s) for s in a] == [3, 3] and len(set(a[0])) == 3
    assert api.server_honours_n is False  # transformers serve returns one choice: the backend loops
    assert api.generate(PROMPTS[:2], n=3, temperature=1.0, max_new_tokens=8, seed=7) == a
    assert api.generate(PROMPTS[:2], n=3, temperature=1.0, max_new_tokens=8, seed=8) != a

    stop = [greedy[0][0][2:4]]
    cut = api.generate(PROMPTS[:1], temperature=0.0, max_new_tokens=8, stop=stop)
    assert cut == [[greedy[0][0][: greedy[0][0].find(stop[0])]]]

    # several prompts in flight at once still give n answers per prompt, in prompt order
    many = OpenAIBackend(base_url, model_dir, concurrency=4).generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=8)
    assert many == greedy


@pytest.mark.slow
def test_openai_chat_and_errors_against_transformers_serve(served):
    base_url, model_dir = served
    chat = build_backend("openai", base_url=base_url, model=model_dir, chat=True, system_prompt="Be brief.", concurrency=1)
    out = chat.generate(["Write add(a, b)."], n=2, temperature=1.0, max_new_tokens=6, seed=3)
    assert len(out) == 1 and len(out[0]) == 2 and all(isinstance(t, str) for t in out[0])
    assert chat.generate(["Write add(a, b)."], n=2, temperature=1.0, max_new_tokens=6, seed=3) == out

    wrong = OpenAIBackend(base_url, "some-other-model", max_retries=0)
    with pytest.raises(RuntimeError, match=r"\(model 'some-other-model'\) rejected a completions request: HTTP 400"):
        wrong.generate(["x"], max_new_tokens=2)


def test_openai_unreachable_endpoint_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ConnectionError, match=rf"endpoint {url} is unreachable"):
        OpenAIBackend(url, "m", max_retries=0, timeout=5)
    lazy = OpenAIBackend(url, "m", max_retries=0, timeout=5, check=False)
    with pytest.raises(ConnectionError, match=r"\(model 'm'\) unreachable after 0 retries"):
        lazy.generate(["x"])
