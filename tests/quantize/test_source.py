"""What gets exported: adapters and rrtf runs are merged through the tuning method's hooks first (the
exported model computes what the merged adapter computes), plain weights are used as they are, and a
method that cannot be merged says so before any model is loaded."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from quantize.ct2 import export_ct2
from quantize.source import checkpoint_fingerprint, resolve_source
from rrtf.tuning import NotMergeable


@pytest.fixture(scope="module")
def lora_adapter(tiny_dir, tmp_path_factory):
    """A LoRA adapter on the tiny StarCoder whose update is not zero (B is random, as after training)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_dir)), LoraConfig(r=4, target_modules="all-linear"))
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(str(out))
    return out


def ct2_logits(ct2_dir, ids):
    import ctranslate2

    generator = ctranslate2.Generator(str(ct2_dir), intra_threads=1)
    logits = np.array(generator.forward_batch([ids]))[0]
    del generator
    return logits


def test_a_lora_adapter_is_merged_before_export(lora_adapter, tiny_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve_source(lora_adapter, work_dir=tmp_path / "work")
    assert src.kind == "adapter" and src.merged and src.tuning_method == "lora"
    assert (src.model_dir / "config.json").exists() and (src.model_dir / "tokenizer.json").exists()  # the base's tokenizer
    out = export_ct2(src.model_dir, tmp_path / "ct2", "float32")
    ids = AutoTokenizer.from_pretrained(str(tiny_dir))("def f(x):\n    return x", add_special_tokens=False)["input_ids"]
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_dir)), str(lora_adapter)).eval()
    with torch.no_grad():
        adapted = peft(torch.tensor([ids])).logits[0].numpy()
        base = AutoModelForCausalLM.from_pretrained(str(tiny_dir))(torch.tensor([ids])).logits[0].numpy()
    got = ct2_logits(out, ids)
    np.testing.assert_allclose(got, adapted, atol=2e-4, rtol=1e-3)
    assert np.abs(adapted - base).max() > 1e-2  # the adapter really changes the model
    again = resolve_source(lora_adapter, work_dir=tmp_path / "work")  # merged once: the same weights are not rewritten
    assert checkpoint_fingerprint(again.model_dir) == checkpoint_fingerprint(src.model_dir)


def test_an_rrtf_run_directory_names_its_method_and_base(lora_adapter, tiny_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lora_adapter, run / "model")
    (run / "run_identity.json").write_text(json.dumps({"tuning_method": "lora", "model_name_or_path": str(tiny_dir)}))
    src = resolve_source(run, work_dir=tmp_path / "work")
    assert src.kind == "run" and src.merged and src.tuning_method == "lora"
    full = tmp_path / "full-run"
    shutil.copytree(tiny_dir, full / "model")
    (full / "run_identity.json").write_text(json.dumps({"tuning_method": "full", "model_name_or_path": str(tiny_dir)}))
    plain = resolve_source(full, work_dir=tmp_path / "work2")
    assert plain.model_dir == full / "model" and not plain.merged  # full fine-tuning's merge is the identity: no copy


def test_a_method_that_cannot_merge_says_so_before_loading_anything(tmp_path):
    # prompt tuning keeps virtual tokens outside the weights: there is nothing to merge them into
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "run_identity.json").write_text(json.dumps({"tuning_method": "prompt_tuning", "model_name_or_path": "/nonexistent"}))
    with pytest.raises(NotMergeable, match="'prompt_tuning' cannot be merged"):
        resolve_source(run, work_dir=tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_adapters_without_enough_information_are_clear_errors(lora_adapter, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(lora_adapter, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
    with pytest.raises(ValueError, match="holds a IA3 adapter: pass --tuning_method"):
        resolve_source(adapter, work_dir=tmp_path / "w")
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    with pytest.raises(ValueError, match="names no base model: pass --base_model"):
        resolve_source(adapter, work_dir=tmp_path / "w")
    with pytest.raises(ValueError, match="unknown tuning method 'nope'"):
        resolve_source(adapter, work_dir=tmp_path / "w", tuning_method="nope", base_model="/x")
