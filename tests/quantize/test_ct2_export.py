"""CTranslate2 export of real tiny models through CTranslate2's converter: the exported model's logits
match transformers' (StarCoder's multi-query GPTBigCode, multi-head GPTBigCode -- which CTranslate2's
own loader exports wrongly -- and Llama), the export is self-contained, conversion is cached by the
weights' fingerprint, and bad input is refused before any weights are read."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from quantize.ct2 import cached_ct2, check_architecture, export_ct2, manifest, runs_as, supported_compute_types

TEXT = "def add(a, b):\n    return a + b\n\nclass Foo:\n    pass\n"


def logits_pair(model_dir, ct2_dir, compute_type="default"):
    import ctranslate2
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    generator = ctranslate2.Generator(str(ct2_dir), compute_type=compute_type, intra_threads=1)
    got = np.array(generator.forward_batch([ids]))[0]
    del generator
    return ref, got


@pytest.mark.parametrize("fixture", ["tiny_dir", "mha_dir", "llama_dir"])
def test_float32_export_matches_transformers_logits(fixture, request, tmp_path):
    model_dir = request.getfixturevalue(fixture)
    out = export_ct2(model_dir, tmp_path / "ct2", "float32")
    ref, got = logits_pair(model_dir, out)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=2e-4, rtol=1e-3)


def test_multi_head_gptbigcode_is_exported_with_its_own_attention(mha_dir, tmp_path):
    info = check_architecture(mha_dir)
    assert info == {"architecture": "GPTBigCodeConfig", "multi_query": False}
    out = export_ct2(mha_dir, tmp_path / "ct2", "int8")
    config = json.loads((out / "config.json").read_text())
    assert config["multi_query_attention"] is False  # CTranslate2's own loader hard-codes True
    ref, got = logits_pair(mha_dir, out)
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9


def test_int8_export_stays_close_and_is_smaller(tiny_dir, ct2_dir):
    ref, got = logits_pair(tiny_dir, ct2_dir)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max() + 0.02
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
    full = (tiny_dir / "model.safetensors").stat().st_size
    assert (ct2_dir / "model.bin").stat().st_size < 0.4 * full


def test_the_export_is_self_contained_and_says_what_it_is(tiny_dir, ct2_dir, tmp_path):
    import ctranslate2
    from transformers import AutoTokenizer

    moved = tmp_path / "moved"
    shutil.copytree(ct2_dir, moved)  # nothing refers back to the source directory
    tok = AutoTokenizer.from_pretrained(str(moved))
    assert tok("def f():")["input_ids"] == AutoTokenizer.from_pretrained(str(tiny_dir))("def f():")["input_ids"]
    generator = ctranslate2.Generator(str(moved), intra_threads=1)
    result = generator.generate_batch([tok.convert_ids_to_tokens(tok("def f():")["input_ids"])], max_length=4,
                                      include_prompt_in_result=False)
    assert len(result[0].sequences_ids[0]) >= 1
    info = manifest(moved)
    assert info["quantization"] == "int8" and info["architecture"] == "GPTBigCodeConfig" and info["multi_query"] is True
    assert info["ctranslate2"] == ctranslate2.__version__ and len(info["fingerprint"]) == 16


def test_conversion_is_cached_until_the_weights_change(tiny_dir, tmp_path):
    source = tmp_path / "student"
    shutil.copytree(tiny_dir, source)
    out, converted = cached_ct2(source, "int8", tmp_path / "student-ct2")
    assert converted
    stamp = (out / "model.bin").stat().st_mtime_ns
    assert cached_ct2(source, "int8", tmp_path / "student-ct2") == (out, False)
    assert (out / "model.bin").stat().st_mtime_ns == stamp
    (source / "rrtf_student.json").write_text(json.dumps({"fingerprint": "0123456789abcdef"}))  # new weights
    assert cached_ct2(source, "int8", tmp_path / "student-ct2") == (out, True)
    assert manifest(out)["fingerprint"] == "0123456789abcdef"
    assert cached_ct2(source, "float32", tmp_path / "student-ct2")[1]  # another quantization converts too


def test_what_the_hardware_runs_natively():
    native = supported_compute_types("cpu")
    assert {"int8", "float32"} <= native
    assert runs_as("int8", "cpu") == "int8"
    expected = "float16" if "float16" in native else "float32"
    assert runs_as("float16", "cpu") == expected
    assert supported_compute_types("cuda") == set() or "float16" in supported_compute_types("cuda")


def test_bad_input_is_refused_before_any_weights_are_read(tiny_dir, tmp_path):
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    shutil.copy(tiny_dir / "config.json", no_tok / "config.json")  # and no weights: nothing may be loaded
    with pytest.raises(FileNotFoundError, match="has no tokenizer"):
        export_ct2(no_tok, tmp_path / "o1", "int8")
    starcoder2 = tmp_path / "starcoder2"
    shutil.copytree(tiny_dir, starcoder2, ignore=shutil.ignore_patterns("*.safetensors"))
    (starcoder2 / "config.json").write_text(json.dumps({"model_type": "starcoder2", "hidden_size": 32, "num_hidden_layers": 1,
                                                       "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 49152}))
    with pytest.raises(ValueError, match="Starcoder2Config .* cannot be converted to CTranslate2"):
        export_ct2(starcoder2, tmp_path / "o2", "int8")
    with pytest.raises(ValueError, match="quantization 'int4' is not one of"):
        export_ct2(tiny_dir, tmp_path / "o3", "int4")
    assert not any(p.name.startswith(("o1", "o2", "o3", ".tmp")) for p in tmp_path.iterdir())
