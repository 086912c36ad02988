"""`python -m quantize` as a user runs it: export to CTranslate2 for real, bad input as one line and
exit status 2 before any long work, and the side-by-side benchmark end to end -- killed mid-run and
resumed without measuring a finished build again."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from testkit import QUIET_ENV, REPO, run_module


def one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_export_to_ct2_writes_a_loadable_self_contained_model(tiny_dir, tmp_path):
    proc = run_module("quantize", "export", "--model", str(tiny_dir), "--to", "ct2", "--quantization", "int8",
                      "--output_dir", str(tmp_path / "ct2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "native compute types" in proc.stdout and "wrote" in proc.stdout
    from rrtf.backends import backend_from_spec

    backend = backend_from_spec(f"ct2:{tmp_path / 'ct2'}", intra_threads=1)
    assert len(backend.generate(["def f():"], max_new_tokens=4)[0]) == 1
    again = run_module("quantize", "export", "--model", str(tiny_dir), "--to", "ct2", "--output_dir", str(tmp_path / "ct2"))
    one_line_error(again, "already exists", "--force")


def test_an_export_never_deletes_its_input(tiny_dir, tmp_path):
    """--force onto the source model, or onto a directory holding it, is refused before anything happens."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    before = sorted((p.name, p.stat().st_size) for p in model.iterdir())
    for out in (model, tmp_path):
        proc = run_module("quantize", "export", "--model", str(model), "--to", "ct2", "--output_dir", str(out), "--force")
        one_line_error(proc, "would overwrite --model")
    assert sorted((p.name, p.stat().st_size) for p in model.iterdir()) == before


def test_what_a_killed_export_left_is_removed_by_the_next(tiny_dir, tmp_path):
    """A kill -9 during an export leaves its temporary folders (the staged output, the work dir); the next
    export next to them removes those whose process is gone, and keeps a running one's."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    left = [tmp_path / f".tmp-ct2-{dead}", tmp_path / f".work-ct2-{dead}-abc"]
    alive = tmp_path / f".tmp-ct2-{os.getpid()}"  # this test's own process: still running
    for d in [*left, alive]:
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "weights.bin").write_bytes(b"x" * 1000)
    proc = run_module("quantize", "export", "--model", str(tiny_dir), "--to", "ct2", "--quantization", "int8",
                      "--output_dir", str(tmp_path / "ct2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not any(d.exists() for d in left) and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ct2", alive.name])


def test_bad_input_is_one_line_and_exit_2(tiny_dir, tmp_path):
    no_tok = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_dir, no_tok, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens*"))
    one_line_error(run_module("quantize", "export", "--model", str(no_tok), "--to", "ct2", "--output_dir", str(tmp_path / "o")),
                   f"{no_tok} has no tokenizer")
    starcoder2 = tmp_path / "starcoder2"
    shutil.copytree(tiny_dir, starcoder2, ignore=shutil.ignore_patterns("*.safetensors"))
    (starcoder2 / "config.json").write_text(json.dumps({"model_type": "starcoder2", "hidden_size": 32, "num_hidden_layers": 1,
                                                       "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 49152}))
    one_line_error(run_module("quantize", "export", "--model", str(starcoder2), "--to", "ct2", "--output_dir", str(tmp_path / "o")),
                   "Starcoder2Config", "cannot be converted to CTranslate2")
    one_line_error(run_module("quantize", "export", "--model", str(tiny_dir), "--to", "gptq", "--bits", "5", "--output_dir",
                              str(tmp_path / "o")), "5-bit quantisation is not offered")
    one_line_error(run_module("quantize", "bench", "--model", str(tiny_dir), "--builds", "transformers:float32", "ct2:int8@float16",
                              "--device", "cpu", "--out", str(tmp_path / "b.json")), "compute_type 'float16' is not supported on cpu")
    one_line_error(run_module("quantize", "shrink"), "unknown command 'shrink'")
    assert not (tmp_path / "o").exists() and not (tmp_path / "b.json").exists()


BENCH = ["--builds", "transformers:float32", "ct2:int8", "gptq:4", "--group_size", "32", "--calibration_samples", "8",
         "--max_problems", "4", "--new_tokens", "6", "--batch_sizes", "1", "2", "--repeats", "1", "--threads", "1",
         "--sandbox_workers", "1"]


@pytest.mark.slow
def test_bench_side_by_side_resumes_after_a_kill(tiny_dir, tmp_path):
    out = tmp_path / "bench.json"
    rows = tmp_path / "bench.builds" / "bench.rows.jsonl"
    cmd = [sys.executable, "-m", "quantize", "bench", "--model", str(tiny_dir), "--out", str(out), *BENCH]
    env = {**os.environ, **QUIET_ENV}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (rows.exists() and rows.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "the benchmark ended before its first row"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the bench and the build it is measuring
        proc.wait()
    first = json.loads(rows.read_text().splitlines()[0])
    assert first["build"] == "transformers:float32"
    done = run_module("quantize", "bench", "--model", str(tiny_dir), "--out", str(out), *BENCH)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r["build"] for r in result["rows"]] == ["transformers:float32", "ct2:int8", "gptq:4"]
    assert result["rows"][0]["measured_at"] == first["measured_at"]  # the finished build was not measured again
    for row in result["rows"]:
        for key in ("precision", "weights_mb", "peak_memory_mb", "ttft_ms", "ms_per_token", "tokens_per_s", "tokens_per_s_b2",
                    "pass@1", "speedup_b2", "peak_memory_ratio", "kernel", "versions"):
            assert row.get(key) is not None, (row["build"], key)
        assert row["pass@1_problems"] == 4
    ct2, gptq = result["rows"][1], result["rows"][2]
    # the GPTQModel layer class that ran (TorchAtenLinear, TorchLinear, ... : GPTQModel picks one per bits/dtype/device)
    assert gptq["kernel"].endswith("Linear") and gptq["versions"]["gptqmodel"] and ct2["kernel"].startswith("ctranslate2 ")
    assert ct2["weights_mb"] < 0.4 * result["rows"][0]["weights_mb"] and gptq["weights_mb"] < result["rows"][0]["weights_mb"]
    assert result["machine"]["cores"] and "native compute types" in result["ctranslate2_hardware"]
    table = out.with_suffix(".md").read_text()
    assert "| CTranslate2 | int8 |" in table and "| GPTQ | int4 |" in table and out.with_suffix(".png").stat().st_size > 1000
