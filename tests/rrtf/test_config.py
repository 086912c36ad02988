"""Shipped configs: every training YAML parses into RRTFConfig (a misspelt key fails), every
accelerate YAML loads with accelerate's own loader and means what its comments say (checked through
accelerate's launcher and FSDP/DeepSpeed plugin code), and the 2-CPU-process launch really starts
two ranks that talk to each other."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from testkit import REPO
from transformers import TrainingArguments

from rrtf.config import RRTFConfig, parse_train_args
from rrtf.tuning import TUNING_METHODS, option_classes
from rrtf.tuning.lora import LoraOptions

CONFIGS = REPO / "configs"
TRAIN_YAMLS = sorted(CONFIGS.glob("*.yaml"))
ACCELERATE_YAMLS = sorted((CONFIGS / "accelerate").glob("*.yaml"))


# Fields whose None default RRTFConfig resolves from the hardware when it is built.
RESOLVED_AT_PARSE = {"bf16", "output_dir", "dataset_split"}


def parse_rrtf(path: Path, *extra: str) -> RRTFConfig:
    # bf16 is validated against the hardware at parse time; --use_cpu lets a GPU config parse here.
    return parse_train_args(["--config", str(path), "--use_cpu", "true", *extra])


def test_shipped_files_are_there():
    assert {p.name for p in TRAIN_YAMLS} >= {"default.yaml", "starcoder15b_lora.yaml"}
    assert {p.name for p in ACCELERATE_YAMLS} >= {"ddp.yaml", "fsdp.yaml", "deepspeed_zero3.yaml", "cpu_2proc.yaml"}


@pytest.mark.parametrize("path", TRAIN_YAMLS, ids=lambda p: p.name)
def test_training_yaml_parses(path):
    cfg = parse_rrtf(path)
    raw = yaml.safe_load(path.read_text())
    chosen = TUNING_METHODS.get(cfg.tuning_method).options_class
    chosen_keys = {f.name for f in dataclasses.fields(chosen)} if chosen else set()
    option_keys = {f.name for cls in option_classes() for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        if value is None and key in RESOLVED_AT_PARSE:
            continue
        if not hasattr(cfg, key):  # a tuning method's option
            if key in chosen_keys:  # the chosen method's: it must have arrived in config.tuning_options
                assert type(cfg.tuning_options) is chosen and getattr(cfg.tuning_options, key) == value, key
            else:  # another method's, at its default (default.yaml lists them all): accepted, not kept
                assert key in option_keys, key
            continue
        got = getattr(cfg, key)
        got = got.value if hasattr(got, "value") else got  # enums (save_strategy, lr_scheduler_type)
        if isinstance(got, list) and not isinstance(value, list):
            value = [value]  # report_to: "tensorboard" parses to ["tensorboard"]
        assert got == value or str(got) == str(value), key


def test_a_misspelt_key_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "starcoder15b_lora.yaml").read_text() + "\nlora_rank: 8\n")
    with pytest.raises(ValueError, match="lora_rank"):
        parse_rrtf(bad)


def test_the_chosen_methods_options_arrive_from_yaml(tmp_path):
    path = tmp_path / "lora.yaml"
    path.write_text("tuning_method: lora\nlora_r: 13\nlora_dropout: 0.25\nlora_target_modules: [c_attn]\n")
    assert (LoraOptions().lora_r, LoraOptions().lora_dropout) != (13, 0.25)  # defaults would prove nothing
    opts = parse_rrtf(path).tuning_options
    assert type(opts) is LoraOptions
    assert (opts.lora_r, opts.lora_dropout, opts.lora_target_modules) == (13, 0.25, ["c_attn"])
    assert parse_rrtf(path, "--lora_r", "7").tuning_options.lora_r == 7  # a flag overrides the YAML


def test_starcoder_lora_config():
    cfg = parse_rrtf(CONFIGS / "starcoder15b_lora.yaml")
    assert cfg.tuning_method == "lora" and 16 <= cfg.tuning_options.lora_r <= 64
    assert cfg.bf16 and cfg.activation_checkpointing and cfg.max_length == 2048
    assert cfg.per_device_train_batch_size == 1 and cfg.gradient_accumulation_steps > 1
    assert cfg.teachers[0] == "reference" and any(t.startswith("openai:http") and "#" in t for t in cfg.teachers)


def test_starcoder_lora_targets_are_gptbigcode_modules():
    """PEFT finds every target module in a (tiny) GPTBigCode, and they are all its linear layers
    but the LM head: attention c_attn/c_proj, MLP c_fc/c_proj."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPTBigCodeForCausalLM

    from rrtf.modeling import tiny_starcoder_config

    cfg = parse_rrtf(CONFIGS / "starcoder15b_lora.yaml")
    model = GPTBigCodeForCausalLM(tiny_starcoder_config(128, n_layer=2))
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    peft_model = get_peft_model(model, LoraConfig(r=cfg.tuning_options.lora_r, lora_alpha=cfg.tuning_options.lora_alpha,
                                                    target_modules=cfg.tuning_options.lora_target_modules))
    wrapped = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == linear and len(wrapped) == 2 * 4  # 4 per block


def _own_defaults() -> dict:
    """RRTFConfig's own fields, the TrainingArguments defaults it overrides, and the default tuning
    method's options (flags of their own)."""
    base = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    out = {}
    for f in dataclasses.fields(RRTFConfig):
        value = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if f.init and (f.name not in base or base[f.name].default != f.default):
            out[f.name] = value
    for cls in option_classes():
        for f in dataclasses.fields(cls):
            out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return out





def test_default_yaml_mirrors_the_embedded_default():
    raw = yaml.safe_load((CONFIGS / "default.yaml").read_text())
    defaults = _own_defaults()
    missing = {k: v for k, v in defaults.items() if k not in raw}
    assert not missing, f"configs/default.yaml lacks RRTFConfig fields, add: {yaml.safe_dump(missing)}"
    differ = {k: (raw[k], defaults[k]) for k in defaults if raw[k] != defaults[k]}
    assert not differ, f"configs/default.yaml (yaml, RRTFConfig default): {differ}"
    # ... and parsing it changes nothing.
    parsed = parse_rrtf(CONFIGS / "default.yaml")
    plain = parse_train_args(["--use_cpu", "true"])
    own = [k for k in defaults if hasattr(plain, k)]
    assert {k: getattr(parsed, k) for k in own} == {k: getattr(plain, k) for k in own}


# --- accelerate -------------------------------------------------------------------------------


def launch_args(config: Path):
    """What `accelerate launch --config_file CONFIG x.py` resolves its arguments to (no launch)."""
    args = launch_command_parser().parse_args(["--config_file", str(config), "x.py"])
    return _validate_launch_command(args)


@pytest.mark.parametrize("path", ACCELERATE_YAMLS, ids=lambda p: p.name)
def test_accelerate_yaml_loads(path):
    config = ClusterConfig.from_yaml_file(path)  # unknown top-level keys raise here
    known = {a.dest for a in launch_command_parser()._actions}
    for section in ("fsdp_config", "deepspeed_config"):  # nested keys become launcher arguments
        unknown = set(getattr(config, section)) - known
        assert not unknown, f"{path.name}: {section} keys accelerate launch does not know: {unknown}"
    args, defaults, _ = launch_args(path)
    assert args.num_processes == config.num_processes


def test_ddp_yaml():
    args, _, _ = launch_args(CONFIGS / "accelerate" / "ddp.yaml")
    assert args.multi_gpu and args.num_processes == 8 and args.mixed_precision == "bf16"


def test_fsdp_yaml_builds_the_intended_plugin(monkeypatch):
    import functools

    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from transformers import GPTBigCodeForCausalLM
    from transformers.models.gpt_bigcode.modeling_gpt_bigcode import GPTBigCodeBlock

    from rrtf.modeling import tiny_starcoder_config

    args, _, _ = launch_args(CONFIGS / "accelerate" / "fsdp.yaml")
    assert args.use_fsdp and args.num_processes == 8
    env = prepare_multi_gpu_env(args)  # the environment each worker process gets
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    assert env["FSDP_SYNC_MODULE_STATES"] == "true"
    # Only this step needs a GPU (it picks the device to materialise weights on); skip it on CPU.
    monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "false")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 1
    assert plugin.sharding_strategy.name == "FULL_SHARD"
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert plugin.use_orig_params is True
    plugin.set_auto_wrap_policy(GPTBigCodeForCausalLM(tiny_starcoder_config(128)))  # raises if the class is absent
    assert isinstance(plugin.auto_wrap_policy, functools.partial)
    assert plugin.auto_wrap_policy.keywords["transformer_layer_cls"] == {GPTBigCodeBlock}


def test_deepspeed_zero3_yaml(monkeypatch):
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.deepspeed import HfDeepSpeedConfig
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args, defaults, mp_from_config = launch_args(CONFIGS / "accelerate" / "deepspeed_zero3.yaml")
    assert args.use_deepspeed and args.num_processes == 8
    ds_file = REPO / args.deepspeed_config_file
    ds = HfDeepSpeedConfig(json.loads(ds_file.read_text()))
    assert ds.is_zero3() and not ds.is_offload()
    assert ds.get_value("zero_optimization.stage3_gather_16bit_weights_on_model_save") is True
    assert ds.get_value("bf16.enabled") == "auto"
    # accelerate refuses a DeepSpeed config file next to accelerate-side DeepSpeed/precision settings;
    # run its own check on the environment its launcher would build.
    args.deepspeed_fields_from_accelerate_config = ",".join([*defaults.deepspeed_config, *(["mixed_precision"] if mp_from_config else [])])
    _, env = prepare_deepspeed_cmd_env(args)
    monkeypatch.setenv("ACCELERATE_CONFIG_DS_FIELDS", env["ACCELERATE_CONFIG_DS_FIELDS"])
    DeepSpeedPlugin._deepspeed_config_checks(None)  # uses only the environment


RANK_PROBE = """
import os, torch
from accelerate import Accelerator
acc = Accelerator()
total = torch.tensor([acc.process_index + 1.0])
torch.distributed.all_reduce(total)
print(f"RANK {acc.process_index} WORLD {acc.num_processes} TYPE {acc.distributed_type.value} SUM {int(total.item())}", flush=True)
acc.end_training()  # destroy the gloo group: exiting with it alive can abort at shutdown
"""


@pytest.mark.slow
def test_two_cpu_processes_with_accelerate_launch(tmp_path):
    (tmp_path / "rank_probe.py").write_text(RANK_PROBE)
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "accelerate" / "cpu_2proc.yaml"),
           "-m", "rank_probe"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = sorted(line for line in proc.stdout.replace("RANK", "\nRANK").splitlines() if line.startswith("RANK"))
    assert lines == ["RANK 0 WORLD 2 TYPE MULTI_CPU SUM 3", "RANK 1 WORLD 2 TYPE MULTI_CPU SUM 3"]
