"""The host side of the pipe, attacked through real `python -m sandbox check` runs: for any mix of
hostile samples (and hostile frames from a worker), the CLI exits 0, writes exactly one verdict per
sample, and its memory stays bounded.

A compromised harness is played by trusted problem test code that writes hostile frames to every pipe
it holds (one of them goes to the host)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Writes `frame` to every pipe this (harness) process holds, then keeps the job going.
HOSTILE_TEST = '''
import os, stat
def check(candidate):
    frame = {frame}
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                {write}
        except OSError:
            pass
    assert candidate(1, 2) == 3
'''
WRITE_ONCE = "os.write(fd, frame)"
# A length field close to 4 GiB, then 400 MiB of payload: a host that buffers it grows by as much.
WRITE_STREAM = "os.write(fd, frame)\n                for _ in range(400):\n                    os.write(fd, b'x' * (1 << 20))"
FRAMES = {
    "deep": ("(lambda d: (len(d)).to_bytes(4, 'big') + d)(b'[' * 200000 + b']' * 200000)", WRITE_ONCE),
    "huge": ("(0xFFFFFFF0).to_bytes(4, 'big')", WRITE_STREAM),
    "garbage": ("(12).to_bytes(4, 'big') + b'{not json!!}'", WRITE_ONCE),
    "not-an-object": ("(9).to_bytes(4, 'big') + b'[1, 2, 3]'", WRITE_ONCE),
    "forged-done": ("(lambda d: len(d).to_bytes(4, 'big') + d)(b'{\"id\": 1, \"done\": true, \"msgs\": [[[[[' + b'1' * 5000 + b']]]]]}')",
                    WRITE_ONCE),
}
GOOD = "def add(a, b):\n    return a + b\n"


def problems() -> list[dict]:
    recs = [{"task_id": "t/add", "prompt": "", "entry_point": "add",
             "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}]
    for name, (frame, write) in FRAMES.items():
        recs.append({"task_id": f"t/{name}", "prompt": "", "entry_point": "add",
                     "test": HOSTILE_TEST.format(frame=frame, write=write)})
    return recs


# Runs the CLI as the child of a small wrapper that reports the peak RSS of its children (the CLI
# and the processes it started; the CLI's own is by far the largest).
WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def run_cli(tmp_path: Path, samples: list[dict], timeout: float = 150) -> tuple[subprocess.CompletedProcess, list[dict], int]:
    problems_path = tmp_path / "problems.jsonl"
    problems_path.write_text("".join(json.dumps(r) + "\n" for r in problems()))
    samples_path = tmp_path / "samples.jsonl"
    samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = tmp_path / "verdicts.jsonl"
    r = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", "sandbox", "check", "--problems", str(problems_path),
                        "--samples", str(samples_path), "--out", str(out), "--quiet", "--workers", "2", "--timeout-s", "3"],
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=timeout)
    rss_kb = int(r.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0]) if "MAXRSS_KB" in r.stderr else -1
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return r, rows, rss_kb


def test_hostile_frames_cost_only_their_own_sample(tmp_path):
    samples = []
    for name in FRAMES:
        samples += [{"task_id": "t/add", "completion": GOOD}, {"task_id": f"t/{name}", "completion": GOOD}]
    samples.append({"task_id": "t/add", "completion": GOOD})
    r, rows, rss_kb = run_cli(tmp_path, samples)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(rows) == len(samples)
    assert len({(row["task_id"], row["sample_index"]) for row in rows}) == len(samples)
    for row in rows:
        if row["task_id"] == "t/add":
            assert row["status"] == "passed", row
        else:
            assert row["status"] != "passed" and row["reason"].startswith("harness_lost"), row
    # The CLI's peak memory: nowhere near the 400 MiB the "huge" frame streamed at it.
    assert rss_kb < 300 * 1024, f"CLI peak RSS {rss_kb / 1024:.0f} MiB"


def test_an_oversized_completion_is_a_verdict_not_a_crash(tmp_path):
    big = GOOD + "#" + "x" * (40 << 20) + "\n"
    samples = [{"task_id": "t/add", "completion": GOOD}, {"task_id": "t/add", "completion": big},
               {"task_id": "t/add", "completion": GOOD}]
    for _ in range(2):  # a rerun resumes and still finishes
        r, rows, _ = run_cli(tmp_path, samples)
        assert r.returncode == 0, r.stderr[-3000:]
        assert [row["sample_index"] for row in sorted(rows, key=lambda x: x["sample_index"])] == [0, 1, 2]
    by_index = {row["sample_index"]: row for row in rows}
    assert by_index[0]["status"] == by_index[2]["status"] == "passed"
    assert by_index[1]["status"] == "runtime_error" and by_index[1]["reason"] == "input_too_large", by_index[1]["reason"]


def test_cli_invariant_for_a_mix_of_hostile_samples(tmp_path):
    """Every hostile sample class at once, through the CLI: exit 0, exactly one verdict per sample,
    only the honest ones passed, bounded memory."""
    from sandboxkit import CHEATS, DEEP_CHAIN, FORK_CHAIN, PLANTER

    hostile = [*CHEATS.values(), PLANTER, DEEP_CHAIN, FORK_CHAIN, GOOD + "#" + "x" * (20 << 20) + "\n"]
    samples = [{"task_id": "t/add", "completion": c} for c in hostile]
    samples += [{"task_id": "t/deep", "completion": GOOD}, {"task_id": "t/huge", "completion": GOOD}]
    samples += [{"task_id": "t/add", "completion": GOOD} for _ in range(3)]
    r, rows, rss_kb = run_cli(tmp_path, samples)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(row["sample_index"] for row in rows if row["task_id"] == "t/add") == list(range(len(hostile) + 3))
    assert len(rows) == len(samples)
    passed = [(row["task_id"], row["sample_index"]) for row in rows if row["passed"]]
    honest = {("t/add", len(hostile) + i) for i in range(3)} | {("t/add", len(hostile) - 3), ("t/add", len(hostile) - 2)}
    assert set(passed) == honest, passed  # the deep and fork chains are right answers (they add)
    assert rss_kb < 300 * 1024, f"CLI peak RSS {rss_kb / 1024:.0f} MiB"
