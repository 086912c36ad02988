"""`--rollout ray`: the one rollout on a real Ray cluster started by the test (this machine, 2 generator
and 2 judge actors as worker processes), against the local engine: the same candidates and verdicts,
also after a generator or a judge actor is killed mid-rollout, and after the driver itself is killed
and rerun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from testkit import QUIET_ENV, REPO

from rrtf.backends.transformers_backend import TransformersBackend
from rrtf.datasets import load_dataset
from rrtf.options import RolloutOptions
from rrtf.rollout.engine import LocalEngine, engine_from
from rrtf.rollout.judge import judge
from rrtf.sampler import SamplerConfig, sample
from sandbox.config import SandboxConfig

pytestmark = pytest.mark.slow  # a Ray cluster and real rollouts: minutes, not seconds

SANDBOX = SandboxConfig(workers=1, timeout_s=30, program_timeout_s=60)
RAY = RolloutOptions(rollout="ray", ray_generators=2, ray_judges=2, ray_in_flight=1)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of this machine; engines join it (they do not own it)."""
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def student(tiny_dir):
    return TransformersBackend(tiny_dir)


@pytest.fixture(scope="module")
def problems():
    return load_dataset("tiny-tasks").problems[:12]


def rollout(engine, student, problems, out: Path, during=None):
    """A training round's rollout (the reference teacher, 3 student samples per problem, judged) on
    `engine`; `during(engine, candidates_path)` runs in a thread meanwhile."""
    cfg = SamplerConfig(num_samples=3, temperatures=[1.0], max_new_tokens=24, teachers=["reference"], prompts_per_call=2, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    with engine, engine.sandbox(SANDBOX) as sandbox:
        watcher = threading.Thread(target=during, args=(engine, out / "candidates.jsonl"), daemon=True) if during else None
        if watcher:
            watcher.start()
        candidates = sample(problems, student, cfg.teachers, cfg, out / "candidates.jsonl", engine=engine)
        verdicts = judge(problems, candidates, sandbox, out / "verdicts.jsonl", progress=False)
        if watcher:
            watcher.join(timeout=60)
    return candidates, verdicts


def summary(candidates, verdicts) -> list[tuple]:
    return sorted((c.task_id, c.index, c.source, c.code, v.status.label, v.passed_tests) for c, v in zip(candidates, verdicts))


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def keys_once(path: Path, key) -> bool:
    keys = [key(r) for r in lines(path)]
    return len(keys) == len(set(keys))


@pytest.fixture(scope="module")
def local(student, problems, tmp_path_factory):
    return summary(*rollout(LocalEngine(), student, problems, tmp_path_factory.mktemp("local")))


def test_ray_rollout_writes_the_local_candidates_and_verdicts(cluster, student, problems, local, tmp_path):
    result = summary(*rollout(engine_from(RAY), student, problems, tmp_path))
    assert result == local
    assert {s[4] for s in local} >= {"passed"} and len({s[4] for s in local}) > 1  # a mix of verdicts, not all one kind
    assert keys_once(tmp_path / "candidates.jsonl", lambda r: (r["task_id"], r["index"]))
    assert keys_once(tmp_path / "verdicts.jsonl", lambda r: (r["task_id"], r["code_hash"]))


def kill_one(kind: str, after_lines: int):
    """A `during` that SIGKILLs the process of the first `kind` actor once the candidates file has
    `after_lines` lines; it records the killed pid."""
    killed = []

    def during(engine, path: Path):
        deadline = time.time() + 120
        while len(lines(path)) < after_lines and time.time() < deadline:
            time.sleep(0.02)
        pid = engine.pids[kind][0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    return during, killed


@pytest.mark.parametrize("kind", ["generator", "judge"])
def test_an_actor_killed_mid_rollout_is_replaced_and_its_work_redone_once(kind, cluster, student, problems, local, tmp_path):
    during, killed = kill_one(kind, after_lines=8)
    engine = engine_from(RAY)
    result = summary(*rollout(engine, student, problems, tmp_path, during=during))
    assert killed, "the actor was not killed: the test did not test anything"
    assert result == local
    assert keys_once(tmp_path / "candidates.jsonl", lambda r: (r["task_id"], r["index"]))  # the redone batch written once
    assert len(lines(tmp_path / "candidates.jsonl")) == len(local)


def test_evaluation_on_ray_gives_the_local_results(cluster, tiny_dir, tmp_path):
    from rrtf.evaluate import EvalConfig
    from rrtf.evaluate.cli import run

    results = {}
    for mode in ("local", "ray"):
        cfg = EvalConfig(model_name_or_path=str(tiny_dir), datasets=["heldout"], max_problems=12, num_samples=2, temperature=0.8,
                         max_new_tokens=24, batch_size=2, sandbox_workers=1, output_file=str(tmp_path / mode / "results.json"),
                         rollout=mode, ray_generators=2)
        run(cfg)
        results[mode] = {k: json.loads(Path(cfg.output_file).read_text())[k] for k in ("datasets", "problems")}
    assert results["ray"] == results["local"]


def test_data_evol_validation_on_ray_judges_each_run_as_locally(cluster, tmp_path):
    """data_evol judges each answer `validate_runs` times (flaky tests show up as runs that differ): on Ray
    every run is judged, not answered once from a cache -- a flaky solution must be able to differ."""
    from data_evol.config import EvolConfig
    from data_evol.records import Answer, Instruction
    from data_evol.validate import validate_stage

    pool = [Instruction(id=f"t{i}", seed_id=f"t{i}", instruction=f"add {i}") for i in range(4)]
    tests = [f"assert add(1) == {1 + i}" for i in range(4)]
    answers = [a for i in range(4) for a in (
        Answer(id=f"t{i}", teacher="good", solution=f"def add(x):\n    return x + {i}\n", tests=[tests[i], f"assert add(0) == {i}"],
               entry_point="add"),
        Answer(id=f"t{i}", teacher="bad", solution="def add(x):\n    return x\n", tests=[], entry_point="add"),
        # a coin flip per run: with 6 runs, both outcomes appear unless every run is answered by one verdict
        Answer(id=f"t{i}", teacher="flaky", solution=f"import os\ndef add(x):\n    return x + {i} + os.urandom(1)[0] % 2\n",
               tests=[], entry_point="add"))]
    results = {}
    for mode in ("local", "ray"):
        cfg = EvolConfig(rollout=mode, ray_judges=2, validate_runs=6, sandbox_workers=1, progress=False)
        results[mode] = validate_stage(pool, answers, cfg, tmp_path / mode, ["good", "bad", "flaky"])
    strip = lambda recs, teachers: {k: {t: r["statuses"][t] for t in teachers} for k, r in recs.items()}  # noqa: E731
    assert strip(results["ray"], ["good", "bad"]) == strip(results["local"], ["good", "bad"])
    assert all(set(r["statuses"]["good"]) == {"passed"} for r in results["ray"].values())
    flaky = [s for r in results["ray"].values() for s in r["statuses"]["flaky"]]
    assert {"passed", "partial"} <= set(flaky) or {"passed", "failed"} <= set(flaky), flaky


def test_train_on_ray_killed_mid_sampling_and_rerun_gives_the_local_runs_records(cluster, tiny_dir, tmp_path):
    """`python -m rrtf.train --rollout ray`, its driver SIGKILLed while sampling and run again: it resumes
    from its files and ends on the local run's candidates, verdicts and held-out samples, each written once."""
    from testkit import run_module

    args = ["--model_name_or_path", str(tiny_dir), "--max_problems", "8", "--eval_max_problems", "6", "--num_samples", "3",
            "--max_new_tokens", "24", "--max_steps", "1", "--report_to", "none", "--disable_tqdm", "true", "--sandbox_workers", "1",
            "--prompts_per_call", "1"]
    on_ray = [*args, "--output_dir", str(tmp_path / "ray"), "--rollout", "ray", "--ray_address", cluster, "--ray_generators", "2"]
    candidates = tmp_path / "ray" / "round0" / "candidates.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "rrtf.train", *on_ray], cwd=REPO, env={**os.environ, **QUIET_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while len(lines(candidates)) < 12 and proc.poll() is None and time.time() < deadline:  # past the teacher's 8
        time.sleep(0.05)
    assert proc.poll() is None, "the driver finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 12 <= len(lines(candidates)) < 32  # 8 problems x (3 student samples + the reference)
    for argv in (on_ray, [*args, "--output_dir", str(tmp_path / "local")]):
        done = run_module("rrtf.train", *argv, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    def records(mode: str, pattern: str, key, value) -> dict:
        return {key(r): value(r) for path in sorted((tmp_path / mode).glob(pattern)) for r in lines(path)}

    for pattern, key, value in [("round0/candidates*.jsonl", lambda r: (r["task_id"], r["index"]), lambda r: r["code"]),
                                ("round0/verdicts*.jsonl", lambda r: (r["task_id"], r["code_hash"]), lambda r: (r["status"], r["passed_tests"])),
                                ("eval_after.samples.jsonl", lambda r: (r["task_id"], r.get("stage"), r.get("index")), lambda r: r.get("code"))]:
        local = records("local", pattern, key, value)
        assert local and records("ray", pattern, key, value) == local, pattern
    assert len(lines(candidates)) == 32  # resumed: nothing sampled twice


def test_a_ctranslate2_sampler_reaches_the_actors_as_its_recipe(cluster, tiny_dir, problems, tmp_path):
    """A CTranslate2 generator is a native object: the backend travels without it and each actor loads its
    own from the model directory, sampling what the local one samples."""
    from quantize.ct2 import export_ct2
    from rrtf.backends import build_backend

    ct2 = build_backend("ct2", model_dir=export_ct2(tiny_dir, tmp_path / "ct2", "float32"), intra_threads=1)
    ct2.generate(["def f():"], max_new_tokens=4)  # its generator is loaded here: it must not be what travels
    local = summary(*rollout(LocalEngine(), ct2, problems[:6], tmp_path / "local"))
    assert summary(*rollout(engine_from(RAY), ct2, problems[:6], tmp_path / "ray")) == local
