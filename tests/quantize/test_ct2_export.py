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
from int8_reference import int8_logits

from quantize.ct2 import cached_ct2, check_architecture, export_ct2, int8_cpu_kernel, manifest, runs_as, supported_compute_types

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


def ct2_int8_logits(ct2_dir, ids: list[int], isa_cap: str | None = None):
    """CTranslate2's logits for `ids`, in a fresh process when oneDNN's ISA is to be capped (it is read once)."""
    import os
    import subprocess
    import sys

    if isa_cap is None:
        import ctranslate2

        generator = ctranslate2.Generator(str(ct2_dir), compute_type="default", intra_threads=1)
        return np.array(generator.forward_batch([ids]))[0]
    code = ("import sys, json, numpy as np, ctranslate2\n"
            "g = ctranslate2.Generator(sys.argv[1], intra_threads=1)\n"
            "np.save(sys.stdout.buffer, np.array(g.forward_batch([json.loads(sys.argv[2])]))[0])\n")
    out = subprocess.run([sys.executable, "-c", code, str(ct2_dir), json.dumps(ids)], capture_output=True, check=True,
                         env={**os.environ, "ONEDNN_MAX_CPU_ISA": isa_cap}, timeout=300).stdout
    import io

    return np.load(io.BytesIO(out))


def assert_int8_equal(got, expected):
    """Equal to int8 arithmetic up to rounding ties: an activation that lands on a half step in one
    implementation and not the other moves by one level, so a few elements may differ by that step; the
    float32 model, or the other int8 kernel, differs on nearly every element."""
    assert got.shape == expected.shape
    off = np.abs(got - expected)
    assert (off > 1e-4).mean() <= 1e-3, f"{(off > 1e-4).mean():.2%} of the logits differ from int8 arithmetic (max {off.max():.4f})"
    assert off.max() <= 0.01 * np.ptp(expected), f"max |delta| {off.max():.4f} is more than a rounding step"


def token_ids(model_dir) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))(TEXT, add_special_tokens=False)["input_ids"]


def test_multi_head_gptbigcode_is_exported_with_its_own_attention(mha_dir, tmp_path):
    info = check_architecture(mha_dir)
    assert info == {"architecture": "GPTBigCodeConfig", "multi_query": False}
    out = export_ct2(mha_dir, tmp_path / "ct2", "int8")
    config = json.loads((out / "config.json").read_text())
    assert config["multi_query_attention"] is False  # CTranslate2's own loader hard-codes True
    # int8 computes exactly the int8 arithmetic of *this* model's weights (int8_reference), multi-head attention included
    ids = token_ids(mha_dir)
    kernel = int8_cpu_kernel()
    assert_int8_equal(ct2_int8_logits(out, ids), int8_logits(mha_dir, ids, kernel))


def test_int8_export_is_int8_arithmetic_of_the_weights_and_is_smaller(tiny_dir, ct2_dir):
    """What int8 guarantees, asserted from the weights rather than a tolerance one random draw met: the
    exported model's logits are those of int8 arithmetic on the same weights (per-row scales, per-token
    activations), computed here in torch, for the int8 kernel this CPU runs."""
    ids = token_ids(tiny_dir)
    ref, got = logits_pair(tiny_dir, ct2_dir)
    kernel = int8_cpu_kernel()
    expected = int8_logits(tiny_dir, ids, kernel)
    assert_int8_equal(got, expected)
    assert np.abs(got - ref).max() > 1e-4  # and it is int8: not the float32 model under another name
    full = (tiny_dir / "model.safetensors").stat().st_size
    assert (ct2_dir / "model.bin").stat().st_size < 0.4 * full


def test_int8_without_vnni_saturates_as_predicted(tiny_dir, ct2_dir):
    """oneDNN capped below VNNI (as on CPUs without it) sums u8 x s8 pairs into int16 with saturation: the
    result is that arithmetic, and further from float32 than exact int8 (docs/quantize.md)."""
    ids = token_ids(tiny_dir)
    got = ct2_int8_logits(ct2_dir, ids, isa_cap="AVX2")
    saturating = int8_logits(tiny_dir, ids, "u8s8-saturating")
    assert_int8_equal(got, saturating)
    ref, _ = logits_pair(tiny_dir, ct2_dir)
    exact = int8_logits(tiny_dir, ids, "vnni")
    assert np.abs(saturating - ref).max() > np.abs(exact - ref).max()


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
    cuda = supported_compute_types("cuda")
    if torch.cuda.is_available():
        assert "float16" in cuda
    else:
        assert cuda == set()


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


def test_a_truncated_build_is_exported_again_not_reused(tiny_dir, tmp_path, caplog):
    """`quantize bench` reused a build whose weights file had been cut short (a full disk, a copy stopped half-way):
    every rerun ended in a traceback naming no file (issue 18). The manifest records each file's size; a build that
    no longer matches is exported again, saying which file and why."""
    from quantize.builds import parse_build, prepare_build

    build = parse_build("ct2:int8")
    first = prepare_build(build, tiny_dir, tmp_path)
    weights = first / "model.bin"
    size = weights.stat().st_size
    with weights.open("r+b") as fh:
        fh.truncate(size // 2)
    with caplog.at_level("WARNING", logger="quantize"):
        again = prepare_build(build, tiny_dir, tmp_path)
    assert again == first and weights.stat().st_size == size
    assert f"{weights}: {size // 2:,} bytes, {size:,} bytes when exported; exporting it again" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="quantize"):
        prepare_build(build, tiny_dir, tmp_path)  # intact now: reused, nothing said
    assert "exporting it again" not in caplog.text
