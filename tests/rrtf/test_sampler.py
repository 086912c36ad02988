"""Sampler: candidate layout, teachers, resume after a kill, data-parallel sharding and seeding."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rrtf.backends.reference import ReferenceBackend
from rrtf.backends.transformers_backend import TransformersBackend
from rrtf.prompts import CONTINUATION_STOP, END_MARKERS, build_prompt
from rrtf.records import Candidate
from rrtf.sampler import SamplerConfig, Teacher, parse_teacher_spec, read_candidates, sample, shard_path
from sandbox.base.records import Problem


def make_problems(n: int = 5) -> list[Problem]:
    return [
        Problem(
            task_id=f"toy/{i}",
            prompt=f"Write a function add{i} that returns x plus {i}.",
            entry_point=f"add{i}",
            test_list=[f"assert add{i}(1) == {1 + i}", f"assert add{i}(0) == {i}"],
            canonical_solution=f"def add{i}(x):\n    return x + {i}\n",
            source="toy",
        )
        for i in range(n)
    ]


class CountingBackend(TransformersBackend):
    """The real transformers backend, recording what it was asked to generate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[list[str], int, float]] = []

    def _generate(self, requests, params):
        self.log.append(([r.prompt for r in requests], params.seed, params.temperature))
        return super()._generate(requests, params)

    @property
    def prompts_seen(self) -> list[str]:
        return [p for prompts, _, _ in self.log for p in prompts]


@pytest.fixture(scope="module")
def student(tiny_dir):
    loaded = TransformersBackend(tiny_dir)
    return lambda: CountingBackend(model=loaded.model, tokenizer=loaded.tokenizer, batch_size=8)


CFG = dict(num_samples=2, temperatures=[0.7, 1.0], max_new_tokens=6, prompts_per_call=2, seed=3, progress=False)


def keys(path: Path) -> list[tuple]:
    return [(r["round"], r["task_id"], r["index"]) for r in map(json.loads, path.read_text().splitlines())]


def test_layout_teachers_and_priorities(tmp_path, student, tiny_dir):
    problems = make_problems(3)
    problems[2].canonical_solution = ""  # no reference answer: no reference candidate
    cfg = SamplerConfig(**CFG, teachers=["reference", f"transformers:{tiny_dir}"])
    backend = student()
    cands = sample(problems, backend, cfg.teachers, cfg, tmp_path / "c.jsonl", round=1)

    by_task = {p.task_id: [c for c in cands if c.task_id == p.task_id] for p in problems}
    first = by_task["toy/0"]
    assert [c.index for c in first] == [0, 1, 2, 3, 4, 5]
    assert [c.source for c in first] == ["student"] * 4 + ["reference", "transformers:model"]
    assert [c.teacher_priority for c in first] == [0, 0, 0, 0, 2, 1]  # first listed teacher ranks highest
    assert [c.temperature for c in first] == [0.7, 0.7, 1.0, 1.0, 0.0, 0.0]
    assert all(c.round == 1 for c in cands)
    ref = first[4]
    assert ref.response == ref.code == problems[0].canonical_solution
    assert [c.index for c in by_task["toy/2"]] == [0, 1, 2, 3, 5]
    # the student saw the exact training prompts, each temperature in its own calls
    assert sorted(set(backend.prompts_seen)) == sorted(build_prompt(p) for p in problems)
    assert {t for _, _, t in backend.log} == {0.7, 1.0}
    assert len(set(keys(tmp_path / "c.jsonl"))) == len(cands) == 3 * 6 - 1


def test_resume_after_a_kill_redoes_nothing_and_reproduces_the_full_run(tmp_path, student):
    problems = make_problems(5)
    cfg = SamplerConfig(**CFG, teachers=["reference"])
    full_path = tmp_path / "full.jsonl"
    full = sample(problems, student(), cfg.teachers, cfg, full_path)
    lines = full_path.read_text().splitlines(keepends=True)
    assert len(lines) == 5 * 5  # 4 student samples + 1 reference per prompt

    # The reference stage (5 lines) and the first temperature's first batch of two prompts (4 lines)
    # were written, then the job was killed in the middle of a line.
    killed = tmp_path / "killed.jsonl"
    killed.write_text("".join(lines[:9]) + lines[9][:25])
    again = student()
    resumed = sample(problems, again, cfg.teachers, cfg, killed)

    assert sorted(keys(killed)) == sorted(keys(full_path))  # complete, no duplicates, torn line gone
    # only the unfinished work was generated: 3 prompts at T=0.7, 5 at T=1.0
    assert len(again.prompts_seen) == 3 + 5
    assert sum(t == 0.7 for _, _, t in again.log) == 2  # batches [2, 3] and [4]
    # per-sample seeds: the resumed run is the uninterrupted one
    assert [c.to_record() for c in resumed] == [c.to_record() for c in full]

    # A finished file: a rerun generates nothing at all.
    idle = student()
    assert sample(problems, idle, cfg.teachers, cfg, killed) == resumed and idle.log == []


def test_resume_in_the_middle_of_a_batch_reproduces_the_uninterrupted_run(tmp_path, student):
    """Seeds are per prompt and sample, not per batch: a run killed in the middle of a batch resumes
    with a different batch composition and still ends with exactly the uninterrupted run's candidates."""
    problems = make_problems(4)
    cfg = SamplerConfig(**CFG, teachers=["reference"])
    path = tmp_path / "c.jsonl"
    full = sample(problems, student(), cfg.teachers, cfg, path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:7]))  # 4 reference lines, then T=0.7: toy/0's 2 samples, toy/1's first
    again = student()
    resumed = sample(problems, again, cfg.teachers, cfg, path)
    ks = keys(path)
    assert len(ks) == len(set(ks)) == 4 * 5
    assert again.log[0][0] == [build_prompt(problems[1]), build_prompt(problems[2])]  # another batch than the first run's
    assert again.prompts_seen.count(build_prompt(problems[0])) == 1  # T=1.0 only
    assert [c.to_record() for c in resumed] == [c.to_record() for c in full]


def test_processes_split_the_prompts_and_sample_what_one_process_would(tmp_path, student):
    problems = make_problems(5)
    cfg = SamplerConfig(**CFG, teachers=["reference"])
    out = tmp_path / "cands.jsonl"
    per_process = [sample(problems, student(), cfg.teachers, cfg, out, process_index=r, num_processes=2) for r in (0, 1)]

    tasks = [{c.task_id for c in cands} for cands in per_process]
    assert tasks[0] == {"toy/0", "toy/2", "toy/4"} and tasks[1] == {"toy/1", "toy/3"}
    assert shard_path(out, 0, 2).exists() and shard_path(out, 1, 2).exists() and not out.exists()
    merged = read_candidates(out)
    assert len(merged) == 5 * 5 and len({(c.task_id, c.index) for c in merged}) == 25
    # No two processes draw the same stream (their prompts differ), and sharding changes nothing:
    alone = sample(problems, student(), cfg.teachers, cfg, tmp_path / "one.jsonl")
    assert [c.to_record() for c in merged] == [c.to_record() for c in alone]
    # a process file being written (torn last line) is read without touching it
    torn = shard_path(out, 1, 2)
    torn.write_text(torn.read_text() + '{"task_id": "toy/9"')
    assert len(read_candidates(out)) == 25 and torn.read_text().endswith('"toy/9"')


def test_teacher_specs_and_bad_input(tmp_path, tiny_dir, student):
    assert parse_teacher_spec("reference") == Teacher("reference", "reference")
    t = parse_teacher_spec("openai-chat:http://127.0.0.1:8000/v1#coder-34b")
    assert (t.name, t.backend, t.options, t.use_stop) == (
        "openai-chat:coder-34b", "openai", {"base_url": "http://127.0.0.1:8000/v1", "model": "coder-34b", "chat": True}, False)
    assert parse_teacher_spec(f"transformers:{tiny_dir}").options == {"model_name_or_path": str(tiny_dir)}
    with pytest.raises(ValueError, match=r"teacher 'gpt4': backend spec 'gpt4': unknown kind 'gpt4'; known: "):
        parse_teacher_spec("gpt4")
    with pytest.raises(ValueError, match=r"unknown kind 'tgi'"):  # (vllm is a backend now: tests/rrtf/backends/test_vllm.py)
        parse_teacher_spec("tgi:/models/x")
    with pytest.raises(ValueError, match=r"expected openai:BASE_URL#MODEL"):
        parse_teacher_spec("openai:http://127.0.0.1:8000/v1")
    with pytest.raises(FileNotFoundError, match=r"model directory /no/such/ckpt does not exist"):
        parse_teacher_spec("transformers:/no/such/ckpt")

    cfg = SamplerConfig(**CFG)
    out = tmp_path / "c.jsonl"
    with pytest.raises(ValueError, match="no problems to sample"):
        sample([], student(), ["reference"], cfg, out)
    with pytest.raises(ValueError, match=r"duplicate task_ids \['toy/0'\]"):
        sample(make_problems(1) * 2, student(), ["reference"], cfg, out)

    # An unreachable teacher fails before the student samples anything; what was done stays.
    sample(make_problems(2), student(), ["reference"], cfg, out)
    before = out.read_text()
    port_url = "http://127.0.0.1:9/v1"  # the discard port: nothing answers HTTP there
    late = student()
    with pytest.raises(ConnectionError, match=r"endpoint http://127.0.0.1:9/v1 is unreachable"):
        sample(make_problems(3), late, ["reference", f"openai:{port_url}#m"], cfg, out)
    assert late.log == [] and out.read_text().startswith(before)


def test_config_comes_from_the_rrtf_config(tmp_path):
    from rrtf.config import RRTFConfig
    from rrtf.ranker import RankerConfig

    config = RRTFConfig(output_dir=str(tmp_path), num_samples=3, temperatures=[0.2, 0.8], max_new_tokens=7,
                        teachers=["openai:http://h/v1#m", "reference"], seed=5, drop_if_teacher_worse=False)
    cfg = SamplerConfig.from_config(config, prompts_per_call=4)
    assert (cfg.num_samples, cfg.temperatures, cfg.max_new_tokens, cfg.teachers, cfg.seed, cfg.prompts_per_call) == (
        3, [0.2, 0.8], 7, ["openai:http://h/v1#m", "reference"], 5, 4)
    assert cfg.num_student == 6
    assert RankerConfig.from_config(config).drop_if_teacher_worse is False
    with pytest.raises(ValueError, match="temperatures is empty"):
        SamplerConfig(temperatures=[])


def test_sample_judge_rank_end_to_end(tmp_path, student):
    from rrtf.ranker import RankerConfig
    from rrtf.ranker import rank_groups as rank
    from rrtf.rollout.judge import judge
    from sandbox import Sandbox, SandboxConfig

    problems = make_problems(3)
    cfg = SamplerConfig(**CFG, teachers=["reference"])
    cands = sample(problems, student(), cfg.teachers, cfg, tmp_path / "c.jsonl")
    with Sandbox(SandboxConfig(workers=2, timeout_s=30, program_timeout_s=60)) as sb:  # loaded CI: no spurious timeouts
        verdicts = judge(problems, cands, sb, tmp_path / "v.jsonl", progress=False)
    groups, stats = rank(problems, cands, verdicts, RankerConfig())
    assert stats.statuses["reference"] == {"passed": 3}
    assert len(groups) == 3 and all(g.best_teacher == 4 and g.rewards[4] == 3.5 for g in groups)
    assert all(g.prompt == build_prompt(p) for g, p in zip(groups, problems))


class RecordingReference(ReferenceBackend):
    """The real reference backend, recording the stop strings it was given for each prompt."""

    def __init__(self, answers):
        super().__init__(answers)
        self.stops: dict[str, list[str] | None] = {}

    def _generate(self, requests, params):
        assert len(requests) == 1  # one prompt per call: its stop strings are its own
        self.stops[requests[0].prompt] = list(params.stop) or None
        return super()._generate(requests, params)


def test_sampler_prompts_stops_and_judges_exactly_as_evaluation(tmp_path):
    """The same model answers sampled for training and evaluated: same prompt text, same stop
    strings, same code judged against the same problem, same verdict -- for a HumanEval, a
    HumanEvalPack Java, an MBPP and a tiny-tasks problem (both strategies, both code cuts)."""
    from rrtf.datasets import load_dataset
    from rrtf.evaluate import EvalConfig, evaluate
    from rrtf.rollout.judge import judge
    from sandbox import Sandbox, SandboxConfig

    datasets = {name: load_dataset(name).problems[:1] for name in ("humaneval", "humanevalpack-java", "mbpp", "heldout")}
    he, java, mbpp, tiny = (ps[0] for ps in datasets.values())
    # Answers with something after the code that each strategy must cut away.
    answers = {
        build_prompt(he): he.canonical_solution + "\n\ndef extra():\n    return 0\n",
        build_prompt(java): java.canonical_solution + "\nclass Extra {}\n",
        build_prompt(mbpp): f"Here is the code:\n```python\n{mbpp.canonical_solution}\n```\nThis works.\n### Instruction:\nMore.",
        build_prompt(tiny): tiny.canonical_solution + "<|endoftext|>def junk(:",
    }
    problems = [he, java, mbpp, tiny]

    student = RecordingReference(answers)
    cfg = SamplerConfig(num_samples=1, temperatures=[1.0], teachers=[], prompts_per_call=1, progress=False)
    cands = {c.task_id: c for c in sample(problems, student, [], cfg, tmp_path / "c.jsonl")}
    evaluator = RecordingReference(answers)
    samples = tmp_path / "eval.samples.jsonl"
    ecfg = EvalConfig(num_samples=0, greedy=True, batch_size=1, output_file=None, samples_file=str(samples))
    with Sandbox(SandboxConfig(workers=2, timeout_s=30, program_timeout_s=60)) as sb:
        result = evaluate(datasets, evaluator, sb, ecfg)
        verdicts = judge(problems, list(cands.values()), sb, tmp_path / "v.jsonl", progress=False)
    evaluated = {r["task_id"]: r for r in map(json.loads, samples.read_text().splitlines())}
    by_code = {(v["dataset"], v["task_id"], v["code_hash"]): v for v in map(json.loads, samples.with_name("eval.verdicts.jsonl").read_text().splitlines())}
    for r in evaluated.values():
        r["completion"] = r["code"]
        r["verdict"] = by_code[(r["dataset"], r["task_id"], Candidate.from_record(r).code_hash)]

    assert {name: d.strategy for name, d in result.datasets.items()} == {
        "humaneval": "continue", "humanevalpack-java": "continue", "mbpp": "instruct", "heldout": "instruct"}
    assert student.stops == evaluator.stops and set(student.stops) == set(answers)  # same prompts, same stops
    assert student.stops[build_prompt(he)] == CONTINUATION_STOP and student.stops[build_prompt(java)] is None
    assert student.stops[build_prompt(mbpp)] == student.stops[build_prompt(tiny)] == list(END_MARKERS)
    for p in problems:
        assert cands[p.task_id].code == evaluated[p.task_id]["completion"], p.task_id
    assert cands[java.task_id].code.rstrip().endswith("}") and "Extra" not in cands[java.task_id].code
    assert "extra" not in cands[he.task_id].code and "This works" not in cands[mbpp.task_id].code
    assert "junk" not in cands[tiny.task_id].code
    # Judged alike, and judged right: every cut answer passes in both.
    assert {v.task_id: v.status.label for v in verdicts} == {t: r["verdict"]["status"] for t, r in evaluated.items()}
    assert all(v.passed for v in verdicts)


def test_dataset_teachers_rank_the_answers_kept_with_the_problems(tmp_path, sandbox):
    """`--teachers dataset:NAME` answers with teacher NAME's solution kept in Problem.teacher_answers
    (data_evol writes several): teachers of different quality are ranked, the better one on top."""
    from rrtf.ranker import rank_groups
    from rrtf.rollout.judge import judge
    from sandbox.base.records import TeacherAnswer

    problems = make_problems(3)
    for p in problems:
        p.teacher_answers = [TeacherAnswer("strong", p.canonical_solution), TeacherAnswer("weak", f"def {p.entry_point}(x):\n    return x - 7\n")]
    problems[2].teacher_answers = problems[2].teacher_answers[1:]  # no "strong" answer: no candidate from it
    assert parse_teacher_spec("dataset:strong").name == "dataset:strong"
    with pytest.raises(ValueError, match="needs the teacher's name"):
        parse_teacher_spec("dataset:")
    cfg = SamplerConfig(num_samples=0, teachers=["dataset:strong", "dataset:weak"], progress=False)
    cands = sample(problems, None, cfg.teachers, cfg, tmp_path / "c.jsonl")
    assert [(c.task_id, c.source, c.teacher_priority) for c in cands] == [
        ("toy/0", "dataset:strong", 2), ("toy/0", "dataset:weak", 1), ("toy/1", "dataset:strong", 2), ("toy/1", "dataset:weak", 1),
        ("toy/2", "dataset:weak", 1)]
    groups, _ = rank_groups(problems, cands, judge(problems, cands, sandbox, tmp_path / "v.jsonl", progress=False))
    assert [g.statuses for g in groups[:2]] == [["passed", "partial"]] * 2 and all(g.best_teacher == 0 for g in groups[:2])


def registered_names() -> list[str]:
    from rrtf.datasets import DATASETS

    return [f"{name}:{task}" if len(spec.tasks) > 1 else name for name, spec in DATASETS.items() for task in spec.tasks]


@pytest.mark.parametrize("name", registered_names())
def test_training_asks_every_dataset_and_task_as_evaluation_does(name, tmp_path):
    """For every registered dataset x task: the problems `rrtf.train` trains on are asked with the
    strategy evaluation uses for that name, and the sampler sends the same prompts with the same stop
    strings and cuts the same code as evaluation's rollout (both are stages of rrtf.rollout)."""
    from rrtf.config import RRTFConfig
    from rrtf.datasets import load_dataset, parse_name
    from rrtf.rollout import RolloutConfig, Stage, ask, candidate_key, generate
    from rrtf.train import load_training_problems
    from sandbox.base.store import JsonlStore

    spec, _, task = parse_name(name)
    config = RRTFConfig(output_dir=str(tmp_path / "run"), dataset=name, dataset_split=spec.default_split, max_problems=2,
                        eval_dataset=name, eval_max_problems=2, report_to="none")
    if spec.tasks[task] == "explain":  # two steps: nothing to rank as one group; refused before any work
        with pytest.raises(ValueError, match="asks in two steps"):
            load_training_problems(config)
        return
    from rrtf.datasets import DatasetUnavailable

    try:
        load_dataset(name, split=spec.default_split)
    except DatasetUnavailable as exc:  # data a user must supply (CodeXGLUE's): training refuses it as evaluation does
        with pytest.raises(DatasetUnavailable, match=re.escape(str(exc).split(":")[0])):
            load_training_problems(config)
        return
    train, _ = load_training_problems(config)
    evaluated = ask(name, load_dataset(name, split=spec.default_split).problems[:2])
    assert [(a.task_id, a.strategy, a.task) for a in train] == [(a.task_id, a.strategy, a.task) for a in evaluated]
    assert train[0].strategy == spec.tasks[task]
    answers = {a.prompt(None): a.asks.reference_response(a.problem) + "\n\nclass Extra:\n    pass\n" for a in train}
    student, evaluator = RecordingReference(answers), RecordingReference(answers)
    cfg = SamplerConfig(num_samples=1, temperatures=[1.0], teachers=[], prompts_per_call=1, progress=False)
    cands = sample(train, student, [], cfg, tmp_path / "c.jsonl")
    with JsonlStore(None, key=candidate_key) as out:
        generate(evaluated, Stage("greedy", evaluator, 1, 0.0), RolloutConfig(max_new_tokens=cfg.max_new_tokens, batch_size=1,
                                                                               progress=False), out, scope=name)
        codes = {r["task_id"]: r["code"] for r in out.records}
    assert student.stops == evaluator.stops and set(student.stops) == set(answers)
    assert {c.task_id: c.code for c in cands} == codes
    assert all(train[i].judge_input(c.code) == evaluated[i].judge_input(codes[c.task_id]) for i, c in enumerate(cands))
