"""The benchmark's pure parts: build specs, ratios against the unquantised row (hand values), the
Table-4 layout, and the CTranslate2 student-backend option string."""
from __future__ import annotations

import pytest

from quantize.builds import parse_build
from quantize.ct2_backend import parse_student_arg
from quantize.report import add_ratios, markdown_table


def test_build_specs():
    assert parse_build("transformers").precision == "float32"
    assert parse_build("ct2:int8_float16@int8_float32").compute_type == "int8_float32"
    gptq = parse_build("gptq:4")
    assert (gptq.kind, gptq.bits, gptq.precision, gptq.dir_name) == ("gptq", 4, "int4", "gptq-4bit")
    for bad, message in [("ct2:int4", "quantization must be one of"), ("gptq:5", "does not offer 5-bit"),
                         ("gptq:four", "must be a number"), ("onnx:int8", "unknown kind 'onnx'"),
                         ("transformers:int8", "dtype must be one of"), ("ct2:int8@int7", "unknown CTranslate2 compute type")]:
        with pytest.raises(ValueError, match=message):
            parse_build(bad)


def test_ratios_against_the_first_unquantised_row():
    rows = [{"build": "ct2:int8", "kind": "ct2", "tokens_per_s": 30.0, "tokens_per_s_b8": 120.0, "peak_memory_mb": 1500.0},
            {"build": "transformers:float32", "kind": "transformers", "tokens_per_s": 10.0, "tokens_per_s_b8": 40.0,
             "peak_memory_mb": 5000.0}]
    add_ratios(rows)
    assert rows[0]["baseline"] == "transformers:float32"
    assert (rows[0]["speedup_b1"], rows[0]["speedup_b8"], rows[0]["peak_memory_ratio"]) == (3.0, 3.0, 0.3)
    assert (rows[1]["speedup_b1"], rows[1]["peak_memory_ratio"]) == (1.0, 1.0)


def test_table_is_laid_out_like_table_4():
    rows = [{"build": "transformers:float32", "kind": "transformers", "label": "transformers", "precision": "float32",
             "weights_mb": 4338.1, "peak_memory_mb": 4861.2, "tokens_per_s": 0.8, "tokens_per_s_b8": 1.5, "pass@1": 64.06}]
    add_ratios(rows)
    table = markdown_table(rows, [1, 8])
    head, _, row = table.splitlines()[:3]
    assert head.startswith("| Model | Precision | Weights (MB) | Peak memory (MB)") and "tokens/s (b=8)" in head and "pass@1" in head
    assert row.startswith("| transformers | float32 | 4,338.1 | 4,861.2 |") and "| 64.06 |" in row and "| – |" in row


def test_student_backend_options():
    assert parse_student_arg("") == ("float32", {})  # the student's own precision unless another is named
    assert parse_student_arg("seeding=batch") == ("float32", {"seeding": "batch"})
    assert parse_student_arg("int8") == ("int8", {})
    assert parse_student_arg("float32,seeding=batch,intra_threads=2") == ("float32", {"seeding": "batch", "intra_threads": 2})
    with pytest.raises(ValueError, match="intra_threads must be int"):
        parse_student_arg("int8,intra_threads=two")
