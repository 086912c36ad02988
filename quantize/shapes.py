"""Randomly initialised StarCoder-family models of real shapes, for latency and memory benchmarks
(no pretrained weights exist on this machine; speed and memory do not depend on the weights)."""
from __future__ import annotations

from pathlib import Path

# GPTBigCode shapes of the public StarCoder checkpoints' config.json files.
SHAPES = {
    "tiny": dict(n_layer=2, n_embd=128, n_head=4, n_positions=512),
    "starcoderbase-1b": dict(n_layer=24, n_embd=2048, n_head=16, n_positions=8192),
    "starcoder-15b": dict(n_layer=40, n_embd=6144, n_head=48, n_positions=8192),
}


def shape_config(name: str):
    from transformers import GPTBigCodeConfig

    from rrtf.modeling import load_starcoder_tokenizer

    if name not in SHAPES:
        raise ValueError(f"unknown model shape {name!r}; known: {', '.join(SHAPES)}")
    return GPTBigCodeConfig(vocab_size=len(load_starcoder_tokenizer()), multi_query=True, activation_function="gelu_pytorch_tanh",
                            bos_token_id=0, eos_token_id=0, pad_token_id=0, **SHAPES[name])


def build_random_model(name: str, out_dir: str | Path, *, dtype: str = "float32", seed: int = 0, device: str = "cpu") -> Path:
    """Save a randomly initialised model of shape `name` (with the StarCoder tokenizer) to `out_dir`;
    an existing complete build (rrtf_shape.json, written last) is reused."""
    import torch
    from transformers import GPTBigCodeForCausalLM

    from rrtf.modeling import load_starcoder_tokenizer
    from sandbox.base.store import read_state, write_state

    out_dir = Path(out_dir)
    marker = {"shape": name, "dtype": dtype, "seed": seed, **SHAPES.get(name, {})}
    if read_state(out_dir / "rrtf_shape.json") == marker:
        return out_dir
    config = shape_config(name)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    if device != "cpu":  # initialise directly in the target dtype: a 15B model in float32 is 62 GB
        torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = GPTBigCodeForCausalLM(config).to(getattr(torch, dtype))
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(str(out_dir))
    load_starcoder_tokenizer().save_pretrained(str(out_dir))
    write_state(out_dir / "rrtf_shape.json", marker)
    return out_dir


__all__ = ["SHAPES", "build_random_model", "shape_config"]
