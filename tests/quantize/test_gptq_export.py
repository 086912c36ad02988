"""A real GPTQ quantisation (GPTQModel, on CPU) of a tiny StarCoder, calibrated on the project's own
problems, written in the GPTQ v1 format and loaded back by both loaders: GPTQModel's own and
transformers' (optimum + gptqmodel kernels)."""
from __future__ import annotations

import json

import pytest
import torch

from quantize.gptq import calibration_texts, check_gptq_options, export_gptq, load_gptq

TEXT = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def gptq8(tiny_dir, tmp_path_factory):
    return export_gptq(tiny_dir, tmp_path_factory.mktemp("gptq") / "tiny-8bit", bits=8, group_size=32,
                       calibration=calibration_texts(n=16), dtype="float32")


def reference_logits(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok(TEXT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        return ids, model(ids).logits[0]


def test_calibration_comes_from_the_training_problems():
    texts = calibration_texts(n=5)
    assert len(texts) == 5 and all("### Instruction:" in t and "### Response:" in t and "def " in t for t in texts)
    from rrtf.datasets import load_dataset
    from rrtf.prompts import build_prompt

    heldout = {build_prompt(p) for p in load_dataset("tiny-tasks:heldout").problems}  # evaluation stays unseen
    assert not any(t.split("### Response:\n", 1)[0] + "### Response:\n" in heldout for t in texts)


def test_the_export_is_gptq_v1_and_self_contained(gptq8):
    qc = json.loads((gptq8 / "quantize_config.json").read_text())
    assert qc["bits"] == 8 and qc["group_size"] == 32 and qc["checkpoint_format"] == "gptq" and qc["quant_method"] == "gptq"
    config = json.loads((gptq8 / "config.json").read_text())
    assert config["quantization_config"]["checkpoint_format"] == "gptq"
    assert (gptq8 / "tokenizer.json").exists() and not (gptq8.parent / "logs").exists()
    manifest = json.loads((gptq8 / "rrtf_export.json").read_text())
    assert manifest["calibration_samples"] == 16 and manifest["mock"] is False and manifest["dtype"] == "float32"


def test_transformers_and_gptqmodel_load_it_and_logits_stay_close(gptq8, tiny_dir):
    ids, ref = reference_logits(tiny_dir)
    model = load_gptq(gptq8, device="cpu")
    assert type(model.transformer.h[0].attn.c_attn).__module__.startswith("gptqmodel")  # really quantised layers
    with torch.no_grad():
        got = model(ids).logits[0].float()
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9
    assert (got - ref).abs().max() < 0.1 * ref.abs().max() + 0.02
    from gptqmodel import GPTQModel

    own = GPTQModel.load(str(gptq8), device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(own.model(ids).logits[0].float(), got, atol=1e-2, rtol=1e-2)  # other kernels


def test_a_gptq_checkpoint_is_not_quantised_or_converted_again(gptq8, tmp_path):
    from quantize.ct2 import export_ct2

    with pytest.raises(ValueError, match="holds gptq weights: CTranslate2 converts full-precision weights only"):
        export_ct2(gptq8, tmp_path / "ct2", "int8")
    with pytest.raises(ValueError, match="already quantised"):
        export_gptq(gptq8, tmp_path / "again", bits=4, group_size=32)


def test_four_bit_weights_are_smaller(tiny_dir, gptq8, tmp_path):
    four = export_gptq(tiny_dir, tmp_path / "q4", bits=4, group_size=32, calibration=calibration_texts(n=8), dtype="float32")
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(four) < size(gptq8) < size(tiny_dir)


def test_bad_bit_widths_and_groups_are_refused_before_loading(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="5-bit quantisation is not offered; choose one of 2, 3, 4, 8"):
        export_gptq(tiny_dir, tmp_path / "q5", bits=5)
    with pytest.raises(ValueError, match="group_size 48 does not divide the model's hidden size 32"):
        check_gptq_options(4, 48, tiny_dir)
    with pytest.raises(ValueError, match="group_size must be"):
        check_gptq_options(4, 0)
    assert not list(tmp_path.iterdir())
