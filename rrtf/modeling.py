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
    if not path.exists():
        raise FileNotFoundError(f"tokenizer directory {name_or_path} does not exist (give a local directory)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise FileNotFoundError(f"{name_or_path} holds no usable tokenizer (tokenizer.json / tokenizer_config.json): "
                                f"{str(exc).splitlines()[0][:200]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def check_model_dir(name_or_path: str | Path) -> str:
    """A local checkpoint directory, or a clear error: it does not exist / is not a model directory
    (not a hub repo-id error: no hub is reachable from here)."""
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"model directory {name_or_path} does not exist (give a local checkpoint directory)")
    if not path.is_dir():
        raise NotADirectoryError(f"model path {name_or_path} is a file, not a checkpoint directory")
    if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        raise FileNotFoundError(f"model directory {name_or_path} holds no config.json: not a transformers checkpoint")
    check_weight_files(path)
    return str(path)


def check_weight_files(model_dir: Path) -> None:
    """A weights file cut short (a copy or download stopped half-way, a full disk) is one line naming it, before
    transformers' loader fails deep inside with a message that names no file. Cheap: safetensors' header is read
    (it says how far the data must reach), a torch zip's central directory (at its very end) is found."""
    import zipfile

    for weights in sorted(model_dir.glob("*.safetensors")):
        from safetensors import safe_open

        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as exc:  # safetensors raises its own error type for every kind of damage
            raise ValueError(f"{weights}: unreadable weights ({str(exc).splitlines()[0][:160]}): the file is truncated or "
                             "corrupt; copy or save the checkpoint again") from None
    for weights in sorted(model_dir.glob("pytorch_model*.bin")):
        if not zipfile.is_zipfile(weights):
            raise ValueError(f"{weights}: unreadable weights (no zip directory at its end): the file is truncated or corrupt; "
                             "copy or save the checkpoint again")


def load_model(name_or_path: str | Path, *, dtype: torch.dtype | str = "auto"):
    return AutoModelForCausalLM.from_pretrained(check_model_dir(name_or_path), dtype=dtype)


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
