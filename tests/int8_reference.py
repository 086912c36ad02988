"""What CTranslate2's int8 computes, written out in torch from the weights: the test oracle for int8 exports.

int8 here means (measured: these reproduce CTranslate2 4.8's int8 logits on the tiny models to ~1e-7):
- every weight matrix quantised per output row, symmetric, scale max|w_row| / 127, round to nearest --
  the linear layers, and the token embeddings (which the lm_head shares when tied);
- every linear layer's input quantised per token (row) the same way, at run time;
- the products accumulated in int32 (`kernel="vnni"`), or, on CPUs without VNNI, as oneDNN's u8s8 GEMM
  does it (`kernel="u8s8-saturating"`): the input shifted by 128 into u8, adjacent pairs of u8 x s8
  products summed into int16 with saturation, then into int32, and 128 x sum(w) subtracted.
Everything else (layer norms, attention softmax, GELU, biases, position embeddings) stays float32.
"""
from __future__ import annotations

import torch


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values as float64, per-row scale): symmetric, round to nearest, 127 levels each side."""
    scale = x.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 127
    return (x / scale).round().clamp(-127, 127).double(), scale


def int8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel: str) -> torch.Tensor:
    qx, sx = quantize_rows(x)
    qw, sw = quantize_rows(weight)
    if kernel == "vnni":
        acc = qx @ qw.T
    elif kernel == "u8s8-saturating":
        ux, w = qx + 128, qw
        if ux.shape[-1] % 2:  # pairs run over the reduced dimension; pad it to an even length
            ux, w = torch.nn.functional.pad(ux, (0, 1)), torch.nn.functional.pad(qw, (0, 1))
        products = ux.unsqueeze(-2) * w  # [..., out, in]
        pairs = (products[..., 0::2] + products[..., 1::2]).clamp(-32768, 32767)
        acc = pairs.sum(-1) - 128 * qw.sum(1)
    else:
        raise ValueError(f"unknown int8 kernel {kernel!r}")
    y = acc.float() * sx * sw.T
    return y if bias is None else y + bias


def int8_logits(model_dir, ids: list[int], kernel: str):
    """Logits of the checkpoint in `model_dir` computed with int8 arithmetic, as numpy [len(ids), vocab]."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    embeddings = model.get_input_embeddings()
    values, scale = quantize_rows(embeddings.weight.data)
    embeddings.weight.data = (values * scale).float()  # the lm_head sees these too when tied
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = _int8_forward(module, kernel)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def _int8_forward(module: torch.nn.Linear, kernel: str):
    return lambda x: int8_linear(x, module.weight, module.bias, kernel)
