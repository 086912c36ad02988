"""The ct2 generation backend on a real CTranslate2 model converted from the tiny StarCoder: n samples
per prompt, greedy = transformers' greedy, seeds per request (independent of batch composition),
stop strings, chat messages, clear errors for bad settings, and `--backend ct2` in a real training run."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

from quantize.ct2_backend import CT2Backend
from rrtf.backends import BACKENDS, GenerationRequest, SamplingParams, backend_from_spec, build_backend

PROMPTS = ["def add(a, b):\n    return", "x = 1\n", "class Foo:\n    def __init__(self):\n        self.x = 0\n"]
SAMPLE = dict(n=3, temperature=1.0, max_new_tokens=8, seed=1)


@pytest.fixture(scope="module")
def ct2_dir(tiny_dir, tmp_path_factory):
    """The shared tiny StarCoder converted to CTranslate2 int8 by the project's exporter."""
    from quantize.ct2 import export_ct2

    return export_ct2(tiny_dir, tmp_path_factory.mktemp("ct2") / "tiny-int8", "int8")


@pytest.fixture(scope="module")
def ct2(ct2_dir) -> CT2Backend:
    return build_backend("ct2", model_dir=ct2_dir, intra_threads=1)


def test_registered_as_a_student_backend_and_built_from_a_spec(ct2_dir):
    assert "ct2" in BACKENDS.names()
    assert BACKENDS.get("ct2").can_sample_student and not BACKENDS.get("ct2").uses_in_memory_model
    backend = backend_from_spec(f"ct2:{ct2_dir}")
    assert isinstance(backend, CT2Backend) and backend.identity()["model"] == ct2_dir.name


def test_n_samples_per_prompt_seeded_per_request(ct2):
    a = ct2.generate(PROMPTS, **SAMPLE)
    assert len(a) == 3 and all(len(s) == 3 for s in a)
    assert ct2.generate(PROMPTS, **SAMPLE) == a
    assert ct2.generate(PROMPTS, **{**SAMPLE, "seed": 2}) != a
    assert len({t for s in a for t in s}) > 3  # samples differ, within and across prompts
    # A request's samples do not depend on the batch it comes in: reversed, alone, resumed half-way.
    assert ct2.generate(PROMPTS[::-1], **SAMPLE)[::-1] == a
    assert ct2.generate(PROMPTS[1:2], **SAMPLE) == a[1:2]
    assert ct2.generate(PROMPTS[2:], **SAMPLE) == a[2:]
    # The key names the stream: the same prompt under another key samples differently.
    keyed = ct2.generate([GenerationRequest(prompt=PROMPTS[0], key="task-1"), GenerationRequest(prompt=PROMPTS[0], key="task-2")],
                         SamplingParams(**SAMPLE))
    assert keyed[0] != keyed[1]


def test_batch_seeding_is_reproducible_for_the_same_batch(ct2_dir):
    fast = build_backend("ct2", model_dir=ct2_dir, intra_threads=1, seeding="batch")
    a = fast.generate(PROMPTS, **SAMPLE)
    assert fast.generate(PROMPTS, **SAMPLE) == a and all(len(s) == 3 for s in a)
    assert fast.loads == 2  # each seeded call samples from a fresh generator


def test_greedy_matches_transformers_and_ignores_batching(ct2, tiny_dir, tmp_path):
    from quantize.ct2 import export_ct2

    g = ct2.generate(PROMPTS, n=2, max_new_tokens=10)
    assert all(s[0] == s[1] for s in g)
    one = build_backend("ct2", model_dir=ct2.model_dir, intra_threads=1, max_batch_size=1)
    assert one.generate(PROMPTS, max_new_tokens=10) == [[s[0]] for s in g]
    exact = build_backend("ct2", model_dir=export_ct2(tiny_dir, tmp_path / "f32", "float32"), intra_threads=1)
    reference = build_backend("transformers", model_name_or_path=tiny_dir)
    assert exact.generate(PROMPTS, max_new_tokens=10) == reference.generate(PROMPTS, max_new_tokens=10)


def test_stop_strings_end_samples_early_and_are_cut(ct2, monkeypatch):
    free = ct2.generate(PROMPTS[:1], n=3, temperature=1.0, max_new_tokens=24, seed=3)[0]
    stop = next(t for t in (" ", "(", "\n", "e") if all(t in s for s in free))  # every sample contains it
    stopped = ct2.generate(PROMPTS[:1], n=3, temperature=1.0, max_new_tokens=24, seed=3, stop=[stop])[0]
    assert stopped == [s[: s.index(stop)] for s in free]
    steps = []
    original = ct2._decode

    def counting(tokens, params, *, n, seed):
        out = original(tokens, params, n=n, seed=seed)
        steps.append(sum(len(ct2.tokenizer(t)["input_ids"]) for t in out[0]))
        return out

    monkeypatch.setattr(ct2, "_decode", counting)
    ct2.generate(PROMPTS[:1], n=3, temperature=1.0, max_new_tokens=24, seed=3, stop=[stop])
    assert steps[0] < sum(len(ct2.tokenizer(t)["input_ids"]) for t in free)  # decoding really stopped early


def test_chat_messages_use_the_tokenizer_template(ct2_dir, tmp_path):
    import shutil

    from testkit import CHAT_TEMPLATE
    from transformers import AutoTokenizer

    chat_dir = tmp_path / "chat"
    shutil.copytree(ct2_dir, chat_dir)
    tok = AutoTokenizer.from_pretrained(str(chat_dir))
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(str(chat_dir))
    backend = build_backend("ct2", model_dir=chat_dir, intra_threads=1)
    messages = [{"role": "user", "content": "Write add."}]
    got = backend.generate([GenerationRequest(messages=messages)], max_new_tokens=6)
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert got == backend.generate([text], max_new_tokens=6)
    plain = build_backend("ct2", model_dir=ct2_dir, intra_threads=1)
    with pytest.raises(ValueError, match="chat template"):
        plain.generate([GenerationRequest(messages=messages)], max_new_tokens=4)


def test_bad_settings_are_clear_errors(ct2_dir, tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="compute_type 'float16' is not supported on cpu"):
        build_backend("ct2", model_dir=ct2_dir, device="cpu", compute_type="float16")
    with pytest.raises(ValueError, match="unknown compute_type 'int7'"):
        build_backend("ct2", model_dir=ct2_dir, compute_type="int7")
    with pytest.raises(ValueError, match="seeding must be one of"):
        build_backend("ct2", model_dir=ct2_dir, seeding="never")
    with pytest.raises(FileNotFoundError, match="is not a CTranslate2 model"):
        build_backend("ct2", model_dir=tiny_dir)  # a transformers checkpoint: export it first
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backend_from_spec(f"ct2:{tmp_path / 'nope'}")


def test_for_student_converts_the_checkpoint_once_per_weights(tiny_dir, tmp_path):
    import shutil

    student = tmp_path / "round0" / "student"
    shutil.copytree(tiny_dir, student)
    (student / "rrtf_student.json").write_text(json.dumps({"fingerprint": "aaaaaaaaaaaaaaaa"}))
    first = CT2Backend.for_student(checkpoint_dir=str(student), arg="int8", intra_threads=1)
    assert first.model_dir == str(tmp_path / "round0" / "student-ct2-int8")
    stamp = (tmp_path / "round0" / "student-ct2-int8" / "model.bin").stat().st_mtime_ns
    again = CT2Backend.for_student(checkpoint_dir=str(student), arg="int8", intra_threads=1)
    assert (tmp_path / "round0" / "student-ct2-int8" / "model.bin").stat().st_mtime_ns == stamp
    assert again.generate(PROMPTS[:1], max_new_tokens=6) == first.generate(PROMPTS[:1], max_new_tokens=6)
    with pytest.raises(ValueError, match="quantization 'int3'"):
        CT2Backend.for_student(checkpoint_dir=str(student), arg="int3")
    fast = CT2Backend.for_student(checkpoint_dir=str(student), arg="int8,seeding=batch,intra_threads=1")
    assert fast.seeding == "batch" and fast.intra_threads == 1 and fast.model_dir == first.model_dir
    with pytest.raises(ValueError, match="unknown option 'speed'; known: seeding"):
        CT2Backend.for_student(checkpoint_dir=str(student), arg="int8,speed=max")


SMALL = ["--max_problems", "4", "--eval_max_problems", "3", "--num_samples", "2", "--max_new_tokens", "12",
         "--disable_tqdm", "true", "--logging_steps", "1", "--report_to", "none", "--max_steps", "2"]


@pytest.mark.slow
def test_train_samples_each_round_from_a_fresh_ct2_export(tiny_dir, tmp_path):
    """`python -m rrtf.train --backend ct2:int8`: round 0 samples the base model converted once (cached by
    fingerprint), round 1 the merged student export converted next to it; the run records the sampler's
    precision and refuses to continue with another."""
    out = tmp_path / "run"
    cache = tmp_path / "cache"
    args = ["--model_name_or_path", str(tiny_dir), "--output_dir", str(out), "--backend", "ct2:int8", "--rounds", "2", *SMALL]
    proc = run_module("rrtf.train", *args, env={"RRTF_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for r in (0, 1):
        students = [json.loads(line) for line in (out / f"round{r}" / "candidates.jsonl").read_text().splitlines()]
        students = [c for c in students if c["source"] == "student"]
        assert len(students) == 4 * 2 and all(isinstance(c["response"], str) for c in students)
    base_exports = [p for p in (cache / "ct2").iterdir() if not p.name.startswith(".")]  # (.lock files aside)
    assert len(base_exports) == 1 and base_exports[0].name.startswith(tiny_dir.name)
    student_export = json.loads((out / "round1" / "student-ct2-int8" / "rrtf_export.json").read_text())
    marker = json.loads((out / "round1" / "student" / "rrtf_student.json").read_text())
    assert student_export["fingerprint"] == marker["fingerprint"] and student_export["quantization"] == "int8"
    assert json.loads((out / "run_identity.json").read_text())["backend"] == "ct2"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "ct2:int8"
    # The precision that sampled is on record (int8 weights run as int8_float32 on a CPU), in the report too.
    sampler = json.loads((out / "student_sampler.json").read_text())
    assert sampler["backend"] == "ct2" and sampler["precision"].startswith("int8") and metrics["student_sampler"] == sampler
    assert f"student sampled by: ct2 at {sampler['precision']}" in (out / "report.md").read_text()
    # A third round with `--backend ct2` would sample at float32, the default: refused, not mixed into the int8 run.
    args[args.index("ct2:int8")], args[args.index("--rounds") + 1] = "ct2", "3"
    proc = run_module("rrtf.train", *args, env={"RRTF_CACHE": str(cache)})
    assert proc.returncode == 2 and "sampled its student with another sampler" in proc.stderr, proc.stderr[-3000:]
    assert f"precision: '{sampler['precision']}' -> 'float32'" in proc.stderr
    assert json.loads((out / "state.json").read_text())["rounds_done"] == 2
