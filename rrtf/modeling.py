"""Loading models and the StarCoder tokenizer; building tiny StarCoder-architecture models.

Real runs load any causal LM checkpoint; tests and the embedded default build a tiny GPTBigCode
(StarCoder's architecture: multi-query attention) with the real StarCoder tokenizer shipped in data/.
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeConfig, GPTBigCodeForCausalLM, PreTrainedTokenizerFast

from rrtf.paths import DATA_DIR

STARCODER_TOKENIZER = DATA_DIR / "tokenizers" / "starcoder-tokenizer.json"
EOS = "<|endoftext|>"


def load_starcoder_tokenizer() -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(tokenizer_file=str(STARCODER_TOKENIZER), eos_token=EOS, pad_token=EOS, bos_token=EOS, unk_token=EOS)
    tok.padding_side = "left"  # generation pads on the left; training code builds its own layout
    return tok


def load_tokenizer(name_or_path: str | Path | None):
    if name_or_path is None:
        return load_starcoder_tokenizer()
    path = Path(name_or_path)
    if not path.exists() and not str(name_or_path).count("/") == 1:
        raise FileNotFoundError(f"tokenizer path {name_or_path} does not exist")
    tok = AutoTokenizer.from_pretrained(str(name_or_path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(name_or_path: str | Path, *, dtype: torch.dtype | str = "auto"):
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(
            f"model path {name_or_path} does not exist (this machine has no hub access: pass a local checkpoint directory)"
        )
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)


def tiny_starcoder_config(vocab_size: int, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_positions: int = 512) -> GPTBigCodeConfig:
    return GPTBigCodeConfig(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        multi_query=True,  # StarCoder's multi-query attention
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=True,
    )


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, **arch) -> Path:
    """Build a randomly initialised tiny StarCoder and save it (with the tokenizer) to out_dir."""
    out_dir = Path(out_dir)
    tok = load_starcoder_tokenizer()
    torch.manual_seed(seed)
    model = GPTBigCodeForCausalLM(tiny_starcoder_config(len(tok), **arch))
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
