"""Fixtures shared across the suite: a tiny real StarCoder, a real sandbox, a real `transformers
serve` process (helpers in testkit.py).

The test tree mirrors the source tree: tests/rrtf/... for rrtf, tests/sandbox/... for sandbox, and
so on; tests/test_architecture.py checks the tree's own rules.
"""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from testkit import CHAT_TEMPLATE, start_transformers_serve, stop_process


def pytest_collection_modifyitems(config, items):
    """The test command runs two workers that take whole files in collection order (`-n 2 --dist
    loadfile`): the files with the most slow work go first -- a slow test counts 1, or its marker's
    `weight` (`@pytest.mark.slow(weight=10)` for a test of minutes) -- so the run does not end waiting
    on one long file started last. Within a file the order is kept (a stable sort by file)."""
    slow: Counter = Counter()
    for item in items:
        if marker := item.get_closest_marker("slow"):
            slow[item.path] += marker.kwargs.get("weight", 1)
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A randomly initialised one-layer StarCoder (GPTBigCode, multi-query) with the real tokenizer."""
    import torch

    from rrtf.modeling import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0, n_layer=1, n_embd=32)


@pytest.fixture(scope="module")
def sandbox():
    """A real sandbox pool (bubblewrap), generous limits so a loaded CI machine never times out."""
    from sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(workers=2, timeout_s=30, program_timeout_s=60)) as sb:
        yield sb


@pytest.fixture(scope="session")
def served(tiny_dir, tmp_path_factory):
    """(base_url, model_dir): the tiny model served by a real `transformers serve` on loopback, with a
    chat template and sampling turned on (the server samples only if the checkpoint says do_sample)."""
    from transformers import AutoTokenizer, GenerationConfig

    model_dir = tmp_path_factory.mktemp("served") / "model"
    shutil.copytree(tiny_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(model_dir)
    GenerationConfig(do_sample=True, bos_token_id=0, eos_token_id=0, pad_token_id=0).save_pretrained(model_dir)
    try:
        proc, base_url = start_transformers_serve(model_dir, model_dir.parent / "serve.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield base_url, str(model_dir)
    finally:
        stop_process(proc)
