"""Load test of `python -m sandbox serve` on loopback, against calling the same pool in-process, in one run.

At each level of concurrency (1, 16, 64, 256 clients by default) the clients -- threads, each sending its
requests one after another through `sandbox.client.SandboxClient` over one shared httpx connection pool --
send small SandboxFusion `/run_code` requests (a Python program summing two numbers from stdin) to a real
server process (`python -m sandbox serve`, its own pool of `--workers`), then the same programs go through an
in-process `Sandbox` of the same size, judged as one stdin/stdout case each by as many threads calling
`Sandbox.check_many`. The two sides alternate in `--rounds` rounds per level (background load on this shared
machine hits both alike): requests/s is the median over rounds, latency percentiles are over all requests.
Bounded: `--requests` per level, side and round (at least 2 per client), and no new request after `--level-seconds`
(less when needed to end the whole run within `--budget-s`).

Every request has its own numbers, so its answer is checked against its own expected output: a verdict lost
(no answer, an error), duplicated (the server judged more jobs than it was sent: its /stats) or crossed
(another request's output) is counted, and the benchmark exits 1 if any is. Server memory: the server
process's RSS and peak (VmRSS, VmHWM) after each level, and the RSS of its whole process tree (the
sandbox workers included). The server process's own CPU per request (HTTP, JSON, admission, the pool's host
threads; not the workers) says what the service layer costs.

    python benchmarks/sandbox_serve_load.py --out benchmarks/results/sandbox_serve_load.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from sandbox import Sandbox, SandboxConfig
from sandbox.base.records import IOCase, Problem
from sandbox.client import SandboxClient

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def stdin_for(r: int) -> str:
    return f"{r} {r * 7 + 3}\n"


def expected_for(r: int) -> str:
    return f"{r + r * 7 + 3}\n"


def tree_rss_kib(root: int) -> int:
    """RSS of `root` and every descendant (the sandbox workers, bubblewrap, harnesses), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as fh:
                rss[int(entry)] = int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` itself (its threads, not its children), from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def run_level(clients: int, total: int, seconds: float, call) -> dict:
    """`clients` threads take request numbers from one counter and call `call(r) -> stdout | None`."""
    lock, counter = threading.Lock(), iter(range(total))
    latencies: list[float] = []
    answers: dict[int, list[str | None]] = {}
    stop_at = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop_at:
            with lock:
                r = next(counter, None)
            if r is None:
                return
            start = time.perf_counter()
            try:
                out = call(r)
            except Exception as exc:  # noqa: BLE001 - counted as a lost verdict
                out = None
                print(f"request {r}: {type(exc).__name__}: {exc}", file=sys.stderr)
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                answers.setdefault(r, []).append(out)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lost = sum(1 for outs in answers.values() for o in outs if o is None)
    crossed = sum(1 for r, outs in answers.items() for o in outs if o is not None and o != expected_for(r))
    return {"requests": len(latencies), "seconds": elapsed, "latencies": latencies, "lost": lost, "crossed": crossed}


def summary(runs: list[dict]) -> dict:
    """Rounds of one side at one level: median requests/s over rounds, latency percentiles over all requests."""
    latencies = [x for run in runs for x in run["latencies"]]
    rates = [run["requests"] / run["seconds"] for run in runs]
    return {"requests": sum(run["requests"] for run in runs), "requests_per_s": round(statistics.median(rates), 1),
            "requests_per_s_per_round": [round(r, 1) for r in rates],
            "p50_ms": round(1000 * percentile(latencies, 0.5), 1), "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
            "lost": sum(run["lost"] for run in runs), "crossed": sum(run["crossed"] for run in runs)}


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--port", "0", "--workers", str(workers)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    match = re.search(r"serving on (http://\S+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--requests", type=int, default=150, help="requests per level, side and round (at least 2 per client)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of served and in-process per level")
    parser.add_argument("--level-seconds", type=float, default=20.0, help="no new request after this, per level and side")
    parser.add_argument("--budget-s", type=float, default=170.0, help="the whole run: each run's time cap shrinks to fit it")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--machine", default="2-core dev VM, no GPU")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sandbox_serve_load.json"))
    args = parser.parse_args()

    began, load_start = time.perf_counter(), os.getloadavg()
    proc, url = start_server(args.workers)
    http = httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0),
                        limits=httpx.Limits(max_connections=max(args.levels) + 8, max_keepalive_connections=max(args.levels) + 8))
    client = SandboxClient(url, http=http)
    config = SandboxConfig(workers=args.workers)
    levels = []
    try:
        with Sandbox(config) as sb:
            def served(r: int) -> str | None:
                reply = client.run_code(PROGRAM, "python", stdin=stdin_for(r), run_timeout=10)
                return reply["run_result"]["stdout"] if reply["status"] == "Success" else None

            def local(r: int) -> str | None:
                case = Problem(task_id=f"load/{r}", prompt="", io_cases=[IOCase(stdin_for(r), expected_for(r))])
                verdict = next(iter(sb.check_many([(case, PROGRAM, r)])))
                return expected_for(r) if verdict.passed and verdict.sample_index == r else None

            served(0), local(0)  # warm both pools
            runs_left = 2 * args.rounds * len(args.levels)
            for clients in args.levels:
                total = max(args.requests, 2 * clients)
                sides: dict[str, list[dict]] = {"served": [], "in_process": []}
                before, cpu_before = client.stats(), cpu_s(proc.pid)
                for k in range(args.rounds):  # alternating, so that background load hits both alike
                    for side in (("served", "in_process") if k % 2 == 0 else ("in_process", "served")):
                        cap = min(args.level_seconds, max(1.0, (began + args.budget_s - time.perf_counter()) / (runs_left or 1)))
                        sides[side].append(run_level(clients, total, cap, served if side == "served" else local))
                        runs_left -= 1
                after = client.stats()
                remote, in_proc = summary(sides["served"]), summary(sides["in_process"])
                remote["server_cpu_ms_per_request"] = round(1000 * (cpu_s(proc.pid) - cpu_before) / max(1, remote["requests"]), 2)
                remote["server_jobs_judged"] = after["judged"] - before["judged"]
                remote["duplicated"] = max(0, remote["server_jobs_judged"] - remote["requests"])
                remote["server_rss_kib"], remote["server_peak_rss_kib"] = after["rss_kib"].get("VmRSS"), after["rss_kib"].get("VmHWM")
                remote["server_tree_rss_kib"] = tree_rss_kib(proc.pid)
                levels.append({"clients": clients, "served": remote, "in_process": in_proc,
                               "served_over_in_process": round(remote["requests_per_s"] / in_proc["requests_per_s"], 3)})
                print(json.dumps(levels[-1]), flush=True)
    finally:
        retried = client.retried
        http.close()
        proc.terminate()
        proc.wait(timeout=60)
    bad = sum(lv["served"]["lost"] + lv["served"]["crossed"] + lv["served"]["duplicated"] + lv["in_process"]["lost"]
              + lv["in_process"]["crossed"] for lv in levels)
    out = {"benchmark": "sandbox_serve_load", "machine": f"{args.machine} ({platform.node()}, {platform.machine()}, "
           f"{os.cpu_count()} cores)", "python": sys.version.split()[0], "workers": args.workers, "rounds": args.rounds,
           "program": PROGRAM, "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
           "client_retries": retried, "lost_duplicated_or_crossed": bad, "levels": levels,
           "total_seconds": round(time.perf_counter() - began, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} in {out['total_seconds']} s; lost/duplicated/crossed: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
