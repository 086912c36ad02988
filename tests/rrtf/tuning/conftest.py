"""Fixtures of the tuning tests: the StarCoder tokenizer and a tiny Llama next to the tiny StarCoder
(tests/conftest.py's `tiny_dir`, which also sets torch to one thread); helpers are in tests/tuningkit.py."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tok():
    from rrtf.modeling import load_starcoder_tokenizer

    return load_starcoder_tokenizer()


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tok):
    """A randomly initialised two-layer Llama (grouped-query attention, rotary positions) with the StarCoder tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=len(tok), max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
                         pad_token_id=0)
    path = tmp_path_factory.mktemp("llama") / "model"
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
