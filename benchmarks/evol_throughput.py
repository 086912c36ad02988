"""Requests per second of data_evol's evolve stage against an OpenAI-compatible server that answers
after a fixed delay (a remote LLM's latency), at concurrency 1 and 32 in the same run.

    python benchmarks/evol_throughput.py [--delay 0.2] [--requests-c1 40] [--requests-c32 640]

The whole stage runs as in a real job -- templates, method choice, rrtf's OpenAI backend over httpx,
one fsync'ed store write per finished request, elimination -- only the model is a stand-in that
returns a fixed rewritten task after `delay` seconds. Prints a table; writes
benchmarks/results/evol_throughput.json naming the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from data_evol.config import EvolConfig  # noqa: E402
from data_evol.evolve import evolve_stage  # noqa: E402
from data_evol.models import ModelPool  # noqa: E402
from data_evol.prompts import load_templates  # noqa: E402
from data_evol.records import Instruction  # noqa: E402


def serve(delay: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self._reply({"status": "ok"})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(delay)
            task = body["messages"][-1]["content"].rsplit("\n", 1)[-1]
            self._reply({"choices": [{"index": 0, "message": {"role": "assistant",
                                                               "content": task + " Also reject empty input with a ValueError."}}]})

        def _reply(self, obj):
            data = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default listen backlog (5) resets connections at 32 in flight

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def measure(base_url: str, concurrency: int, n: int) -> dict:
    templates = load_templates()
    seeds = [Instruction(id=f"s{i}", seed_id=f"s{i}", instruction=f"Write a function f{i} that returns the sum of a list.") for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EvolConfig(output_dir=tmp, evolver=f"openai-chat:{base_url}#stand-in", rounds=1, concurrency=concurrency, progress=False)
        models = ModelPool(cfg, templates)
        calls: dict = {}
        start = time.perf_counter()
        pool = evolve_stage(seeds, cfg, templates, models, Path(tmp), calls)
        seconds = time.perf_counter() - start
        models.close()
        stored = sum(1 for _ in open(Path(tmp) / "evolved.jsonl"))
    assert stored == n and len(pool) == 2 * n, (stored, len(pool))
    return {"concurrency": concurrency, "requests": n, "seconds": round(seconds, 3), "requests_per_s": round(n / seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--requests-c1", type=int, default=40)
    ap.add_argument("--requests-c32", type=int, default=640)
    args = ap.parse_args()
    server, url = serve(args.delay)
    try:
        rows = [measure(url, 1, args.requests_c1), measure(url, 32, args.requests_c32)]
    finally:
        server.shutdown()
    ratio = rows[1]["requests_per_s"] / rows[0]["requests_per_s"]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"server delay {args.delay:g} s per request; load: {load}")
    print("| concurrency | requests | seconds | requests/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['requests']} | {r['seconds']} | {r['requests_per_s']} |")
    print(f"speed-up at 32: {ratio:.1f}x (ideal 32x; goal >= 20x)")
    out = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores", "load": load, "delay_s": args.delay,
           "rows": rows, "speedup_32_vs_1": round(ratio, 2)}
    (REPO / "benchmarks/results").mkdir(parents=True, exist_ok=True)
    (REPO / "benchmarks/results/evol_throughput.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
