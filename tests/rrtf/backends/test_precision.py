"""The sampler's precision is part of every backend's identity (rrtf.backends.base): each backend names it,
CTranslate2 names the compute type that really runs, `--backend ct2` samples the student at the precision it
is trained in (float32) and int8 only when asked for by name. Real backends on the tiny StarCoder and real
CTranslate2 conversions of it; the run's record is checked end to end in test_ct2.py and test_train.py."""
from __future__ import annotations

import json
import shutil

import pytest

from quantize.ct2_backend import CT2Backend
from rrtf.backends import build_backend

PROMPTS = ["def add(a, b):\n    return", "x = 1\n", "class Foo:\n    def __init__(self):\n        self.x = 0\n"]


@pytest.fixture(scope="module")
def exports(tiny_dir, tmp_path_factory):
    """The tiny StarCoder converted by the project's exporter, at float32 and at int8."""
    from quantize.ct2 import export_ct2

    root = tmp_path_factory.mktemp("ct2-precision")
    return {q: export_ct2(tiny_dir, root / q, q) for q in ("float32", "int8")}


@pytest.fixture
def student(tiny_dir, tmp_path):
    """A student export as rrtf.train writes one each round (its weights' fingerprint in rrtf_student.json)."""
    path = tmp_path / "round0" / "student"
    shutil.copytree(tiny_dir, path)
    (path / "rrtf_student.json").write_text(json.dumps({"fingerprint": "bbbbbbbbbbbbbbbb"}))
    return path


def test_every_backend_names_its_precision(tiny_dir):
    import torch

    assert build_backend("reference", answers={"p": "a"}).identity()["precision"] == "data"
    local = build_backend("transformers", model_name_or_path=tiny_dir)
    assert local.identity()["precision"] == "float32"
    local.model.to(torch.bfloat16)  # read from the model when asked: the in-training student is the same object
    assert local.identity()["precision"] == "bfloat16"
    served = build_backend("openai", base_url="http://127.0.0.1:9/v1", model="m", check=False)
    declared = build_backend("openai", base_url="http://127.0.0.1:9/v1", model="m", check=False, precision="bfloat16")
    try:
        assert served.identity()["precision"] == "server" and declared.identity()["precision"] == "bfloat16"
    finally:
        served.close()
        declared.close()


def test_ct2_names_the_compute_type_that_runs(exports):
    assert build_backend("ct2", model_dir=exports["float32"], intra_threads=1).identity()["precision"] == "float32"
    int8 = build_backend("ct2", model_dir=exports["int8"], intra_threads=1).identity()
    assert int8["precision"].startswith("int8") and int8["compute_type"] == "default"  # on a CPU: int8_float32
    # Asked for another compute type, the stored int8 weights run dequantized: the record says so.
    assert build_backend("ct2", model_dir=exports["int8"], intra_threads=1, compute_type="float32").identity()["precision"] == "float32"


def test_reading_the_precision_changes_no_sample(exports):
    """The precision is read from a loaded generator; asking for it first must not move the seeded samples."""
    asked = build_backend("ct2", model_dir=exports["int8"], intra_threads=1)
    precision = asked.identity()["precision"]
    plain = build_backend("ct2", model_dir=exports["int8"], intra_threads=1)
    settings = dict(n=3, temperature=1.0, max_new_tokens=8, seed=5)
    assert asked.generate(PROMPTS, **settings) == plain.generate(PROMPTS, **settings)
    assert asked.identity()["precision"] == plain.identity()["precision"] == precision
    # Once known, it is not asked again: the identity of a sampled backend loads nothing.
    loads = plain.loads
    plain.identity()
    assert plain.loads == loads


def test_student_samples_at_float32_unless_int8_is_named(student, tiny_dir):
    default = CT2Backend.for_student(checkpoint_dir=str(student), arg="", intra_threads=1)
    assert default.identity()["precision"] == "float32" and default.model_dir.endswith("student-ct2-float32")
    # What the default is for: it samples the policy being trained (greedy answers are the float32 model's).
    trained = build_backend("transformers", model_name_or_path=tiny_dir)
    assert default.generate(PROMPTS, max_new_tokens=10) == trained.generate(PROMPTS, max_new_tokens=10)
    options_only = CT2Backend.for_student(checkpoint_dir=str(student), arg="seeding=batch", intra_threads=1)
    assert options_only.identity()["precision"] == "float32" and options_only.seeding == "batch"
    int8 = CT2Backend.for_student(checkpoint_dir=str(student), arg="int8", intra_threads=1)
    assert int8.identity()["precision"].startswith("int8") and int8.model_dir.endswith("student-ct2-int8")
