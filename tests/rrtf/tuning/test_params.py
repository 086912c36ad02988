"""`python -m rrtf.tuning params` on StarCoderBase-1B's shape (config.json only, no weights) reproduces
Astraios' trainable-parameter table, counted as peft counts."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

# StarCoderBase-1B (bigcode/starcoderbase-1b config.json): GPTBigCode, multi-query attention.
STARCODERBASE_1B = dict(n_layer=24, n_embd=2048, n_head=16, n_inner=8192, multi_query=True, n_positions=8192,
                        vocab_size=49152, bos_token_id=0, eos_token_id=0)
# Astraios (arXiv 2401.00788), Table 1, StarCoderBase 1B: trainable parameters in percent.
ASTRAIOS_1B = {"lora": 0.315, "ia3": 0.022, "p_tuning": 1.10, "adapter_h": 4.24, "adapter_p": 2.17, "parallel_adapter": 2.30}


@pytest.fixture(scope="module")
def starcoderbase_1b(tmp_path_factory):
    from transformers import GPTBigCodeConfig

    path = tmp_path_factory.mktemp("starcoderbase-1b")
    GPTBigCodeConfig(**STARCODERBASE_1B).to_json_file(str(path / "config.json"))
    return path


def test_cli_reproduces_astraios_from_a_config_json_alone(starcoderbase_1b):
    assert [p.name for p in starcoderbase_1b.iterdir()] == ["config.json"]
    proc = run_module("rrtf.tuning", "params", "--model_name_or_path", str(starcoderbase_1b), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["method"]: r for r in json.loads(proc.stdout[proc.stdout.index("["):])}
    assert list(rows) == ["full", "lora", "ia3", "p_tuning", "prompt_tuning", "adapter_h", "adapter_p", "parallel_adapter", "bitune"]
    base = rows["full"]["all"]
    assert base == rows["full"]["trainable"] == 1_137_207_296
    for name, percent in ASTRAIOS_1B.items():
        row = rows[name]
        assert row["all"] == base + row["trainable"], name  # added parameters count in "all" (peft)
        assert round(row["percent"], 3 if percent < 1 else 2) == percent, (name, row["percent"])
    # hand counts: LoRA r=8 on c_attn (2048->2304), attn.c_proj and mlp.c_proj (8192->2048), 24 layers
    assert rows["lora"]["trainable"] == 24 * 8 * ((2048 + 2304) + (2048 + 2048) + (8192 + 2048))
    assert rows["adapter_h"]["trainable"] == 24 * 2 * (2 * 2048 * 256)
    assert rows["parallel_adapter"]["trainable"] == 24 * (2048 * 256 + 256 * 2304)
    # Bitune: two LoRA adapters and a key and a value coefficient per layer
    assert rows["bitune"]["trainable"] == 2 * rows["lora"]["trainable"] + 2 * 24
    assert rows["prompt_tuning"]["trainable"] == 30 * 2048


def test_llama_shapes_get_their_own_targets(tmp_path):
    from transformers import LlamaConfig

    from rrtf.tuning.params import count_methods

    LlamaConfig(hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                vocab_size=1000).to_json_file(str(tmp_path / "config.json"))
    rows = {r["method"]: r["trainable"] for r in count_methods(tmp_path)}
    kv = 256 // 8 * 2  # grouped-query: k/v project to 2 heads of 32
    assert rows["lora"] == 2 * 8 * ((256 + 256) + 2 * (256 + kv) + (256 + 256) + (688 + 256))  # q,k,v,o,down
    assert rows["ia3"] == 2 * (kv + kv + 688)  # k, v outputs and down_proj's input
    assert rows["adapter_p"] == 2 * (2 * 256 * 256)


def test_a_directory_without_config_is_refused(tmp_path):
    proc = run_module("rrtf.tuning", "params", "--model_name_or_path", str(tmp_path))
    assert proc.returncode == 2 and "no config.json" in proc.stderr
