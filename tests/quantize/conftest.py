"""Fixtures of the quantize tests: tiny real models of the architectures the exporters handle, and a
real CTranslate2 export of the shared tiny StarCoder (`tiny_dir`)."""
from __future__ import annotations

from pathlib import Path

import pytest


def save_tiny(out_dir: Path, config) -> Path:
    """A randomly initialised model of `config` with the real StarCoder tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from rrtf.modeling import load_starcoder_tokenizer

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out_dir)
    load_starcoder_tokenizer().save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def mha_dir(tmp_path_factory) -> Path:
    """GPTBigCode with ordinary multi-head attention (multi_query=False)."""
    from rrtf.modeling import load_starcoder_tokenizer, tiny_starcoder_config

    config = tiny_starcoder_config(len(load_starcoder_tokenizer()), n_layer=2, n_embd=32)
    config.multi_query = False
    return save_tiny(tmp_path_factory.mktemp("mha") / "model", config)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory) -> Path:
    from transformers import LlamaConfig

    from rrtf.modeling import load_starcoder_tokenizer

    config = LlamaConfig(vocab_size=len(load_starcoder_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0, eos_token_id=0,
                         pad_token_id=0, tie_word_embeddings=False)
    return save_tiny(tmp_path_factory.mktemp("llama") / "model", config)


@pytest.fixture(scope="session")
def ct2_dir(tiny_dir, tmp_path_factory) -> Path:
    """The shared tiny StarCoder exported to CTranslate2 int8 (the format the backend serves)."""
    from quantize.ct2 import export_ct2

    return export_ct2(tiny_dir, tmp_path_factory.mktemp("ct2") / "tiny-int8", "int8")
