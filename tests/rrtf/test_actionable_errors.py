"""Errors a person can act on (issue "reliability and data integrity"): each test runs the real command
in a real process and reads what a user would see."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from testkit import QUIET_ENV, REPO, run_module


def one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --- 1. defaults that cannot apply adapt; an explicit value that cannot apply fails -----------------


def test_the_default_k_adapts_to_num_samples_and_an_explicit_k_still_fails(tmp_path):
    out = tmp_path / "r.json"
    common = ["--backend", "reference", "--datasets", "heldout", "--max_problems", "2", "--greedy", "false",
              "--output_file", str(out)]
    proc = run_module("rrtf.evaluate", "--num_samples", "1", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notes = [line for line in proc.stderr.splitlines() if "default k" in line]
    assert len(notes) == 1 and "k = 1 only" in notes[0] and "--num_samples 1" in notes[0], proc.stderr[-3000:]
    assert "pass@1" in json.dumps(json.loads(out.read_text()))
    one_line_error(run_module("rrtf.evaluate", "--num_samples", "1", "--k", "1", "10", *common),
                   "k values [10]", "num_samples=1")


# --- 2. a stored Verdict is checked when read back: FILE:LINE and field ----------------------------


def test_a_made_up_status_or_an_integer_task_id_in_a_stored_verdict_names_file_line_and_field(tmp_path):
    for field, fix in (("status", lambda line: re.sub(r'"status": "\w+"', '"status": "great"', line)),
                       ("task_id", lambda line: re.sub(r'"task_id": "[^"]*"', '"task_id": 7', line))):
        out = tmp_path / field / "r.json"
        args = ["--backend", "reference", "--datasets", "heldout", "--max_problems", "3", "--num_samples", "0",
                "--output_file", str(out)]
        first = run_module("rrtf.evaluate", *args)
        assert first.returncode == 0, first.stderr[-3000:]
        verdicts = out.with_name("r.verdicts.jsonl")
        lines = verdicts.read_text().splitlines(keepends=True)
        lines[1] = fix(lines[1])
        verdicts.write_text("".join(lines))
        one_line_error(run_module("rrtf.evaluate", *args), f"{verdicts}:2: field '{field}'")


def test_mbpp_integer_task_ids_still_load_and_a_stored_verdict_is_checked_by_sandbox_check(tmp_path):
    problems, samples, out = tmp_path / "mbpp.jsonl", tmp_path / "samples.jsonl", tmp_path / "verdicts.jsonl"
    problems.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task_id": 2, "text": "Add two numbers.", "code": "def add(a, b):\n    return a + b\n",
         "test_list": ["assert add(1, 2) == 3"], "test_setup_code": "", "challenge_test_list": []},
        {"task_id": 3, "text": "Negate.", "code": "def neg(a):\n    return -a\n",
         "test_list": ["assert neg(1) == -1"], "test_setup_code": "", "challenge_test_list": []}]))
    samples.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task_id": 2, "completion": "def add(a, b):\n    return a + b\n"},
        {"task_id": 3, "completion": "def neg(a):\n    return a\n"}]))
    check = ["check", "--problems", str(problems), "--samples", str(samples), "--out", str(out), "--quiet"]
    first = run_module("sandbox", *check)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 2 and summary["passed"] == 1, first.stdout
    assert run_module("sandbox", *check).returncode == 0  # read back unchanged: fine
    good = out.read_text()  # verdicts are written as they finish: line 2 is either task
    for pattern, new, field in ((r'"status": "\w+"', '"status": "great"', "status"),
                                (r'"task_id": "MBPP/(\d+)"', r'"task_id": \1', "task_id")):
        lines = good.splitlines(keepends=True)
        lines[1], changed = re.subn(pattern, new, lines[1], count=1)
        assert changed == 1, lines[1][:200]
        out.write_text("".join(lines))
        proc = run_module("sandbox", *check)
        assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
        errors = [line for line in proc.stderr.splitlines() if "error: " in line]
        assert len(errors) == 1 and f"{out}:2: field '{field}'" in errors[0], proc.stderr[-2000:]


# --- 3. machine-readable output is only the JSON; no heavy library a command does not use ------------


def test_tuning_params_json_is_only_json_and_gptqmodel_is_not_imported():
    proc = run_module("rrtf.tuning", "params", "--json", "--methods", "full", "lora", "bitune",
                      launcher=[sys.executable, "-X", "importtime"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)  # the real stdout, whole
    assert [r["method"] for r in rows] == ["full", "lora", "bitune"] and rows[1]["trainable"] > 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "peft" in imported and not any(m.split(".")[0] == "gptqmodel" for m in imported)


# --- 4. no third-party import noise before a command's output; real messages still shown -------------

NOISE = ("Failed to load", "torchao", "register_constant", "is_gradient_checkpointing")


@pytest.mark.slow
def test_commands_show_no_third_party_import_noise_but_real_messages_pass():
    for command in (["rrtf.train", "--help"], ["rrtf.tuning", "params", "--methods", "lora"]):
        proc = run_module(*command)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert not [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)], proc.stderr[-3000:]
    # the filters are exact: another message of the same loggers still reaches the user
    code = ("import logging, rrtf.cli\n"
            "logging.getLogger('torchao').warning('Failed to load model weights: disk error')\n"
            "logging.getLogger('torchao').error('kernel crashed')\n"
            "logging.getLogger('torch.utils._pytree').warning('something else is deprecated')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **QUIET_ENV}, timeout=120)
    for line in ("Failed to load model weights: disk error", "kernel crashed", "something else is deprecated"):
        assert line in proc.stderr, proc.stderr


# --- 5. a wrong flag, a malformed --config, an output path that is a file: one line, exit 2 ---------


@pytest.mark.slow
def test_wrong_flags_bad_config_files_and_file_output_paths_are_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_samples: 2\nk: [1\nseed: : 3\n")
    listy = tmp_path / "list.yaml"
    listy.write_text("- num_samples\n- 2\n")
    for module in ("rrtf.train", "rrtf.evaluate"):
        line = one_line_error(run_module(module, "--num_samples", "abc"), "--num_samples", "invalid int value: 'abc'")
        assert line.startswith(f"python -m {module}: error: ")
        one_line_error(run_module(module, "--config", str(bad)), f"--config {bad}:3:", "malformed YAML")
        one_line_error(run_module(module, "--config", str(listy)), f"--config {listy}", "expected a mapping")
    one_line_error(run_module("rrtf.train", "--output_dir", str(afile)), f"--output_dir {afile}: is an existing file")
    one_line_error(run_module("rrtf.evaluate", "--output_file", str(afile / "r.json"), "--backend", "reference"),
                   f"--output_file {afile / 'r.json'}: {afile} is an existing file")
    one_line_error(run_module("rrtf.evaluate", "--output_file", str(tmp_path), "--backend", "reference"),
                   f"--output_file {tmp_path}: is an existing directory")
    assert afile.read_text() == "not a directory\n"


# --- a truncated checkpoint, a full disk ------------------------------------------------------------


@pytest.mark.slow
def test_a_truncated_checkpoint_is_one_line_naming_the_weights_file(tiny_dir, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    weights = model / "model.safetensors"
    with weights.open("r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    for proc in (run_module("quantize", "export", "--model", str(model), "--output_dir", str(tmp_path / "ct2")),
                 run_module("rrtf.evaluate", "--model_name_or_path", str(model), "--datasets", "heldout", "--max_problems", "1",
                            "--output_file", str(tmp_path / "r.json"))):
        one_line_error(proc, f"{weights}: unreadable weights", "truncated or corrupt")
    assert not (tmp_path / "ct2").exists() and not (tmp_path / "r.json").exists()


def test_a_full_disk_during_an_export_is_one_line_and_leaves_nothing_half_written(tiny_dir, tmp_path):
    import pytest

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:  # a real full disk needs a small filesystem: root (or a user namespace) mounts one
        pytest.skip(f"cannot mount a 1 MB tmpfs here: {mounted.stderr.decode()[:200]}")
    try:
        proc = run_module("quantize", "export", "--model", str(tiny_dir), "--output_dir", str(disk / "out"))
        one_line_error(proc, f"no space left on the disk of {disk} while writing the export out", "the partial export was removed")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_an_empty_input_file_is_the_same_one_line_error_in_every_command(tmp_path):
    """decontaminate, rrtf.evaluate and sandbox check used to exit 0 on an empty input, the others refused (issue 18):
    one rule now, written once (sandbox.base.store.iter_jsonl) -- an input with no record is an error naming it."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    commands = [("rrtf.evaluate", "--backend", "reference", "--datasets", str(empty), "--output_file", str(tmp_path / "e.json")),
                ("data_evol", "decontaminate", "--input", str(empty), "--output_dir", str(tmp_path / "dc")),
                ("data_evol", "--seeds", str(empty), "--output_dir", str(tmp_path / "de")),
                ("sandbox", "check", "--problems", str(empty), "--samples", str(empty), "--out", str(tmp_path / "v.jsonl"))]
    for module, *args in commands:
        proc = run_module(module, *args)
        assert proc.returncode == 2, (module, proc.stderr[-1000:])
        assert f"error: {empty}: no records: the input file is empty" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "v.jsonl").exists()
