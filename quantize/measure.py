"""Measuring one build, in a process of its own (`python -m quantize.measure JOB.json`), so its peak
memory is its own: load it, time generation, judge pass@1, print one JSON row.

Latency runs generate exactly `new_tokens` tokens per row (EOS ignored: transformers `min_new_tokens`,
CTranslate2 `min_length`), greedily, from the benchmark's prompts -- the same prompts and lengths for
every build:

    ttft_ms               batch 1, prompt in -> first token out (prefill + one step), median of repeats
    ms_per_token          batch 1, (time for N tokens - time to first token) / (N - 1)
    tokens_per_s          batch 1, N / time for N tokens
    tokens_per_s_bB       batch B, B x N / time (B prompts decoded together, cut to the shortest one's
                          length from the left so that neither padding nor ragged prefill is timed)
    peak_memory_mb        the memory in use while generating (after loading): CPU, the process's peak
                          resident set (VmHWM, reset once the model is loaded); GPU, peak device
                          memory in use (polled: torch's and CTranslate2's allocators alike)
    load_memory_mb        the same minus what was in use before the model was loaded (the runtime's
                          Python and libraries, ~0.5 GB on CPU, the CUDA context on GPU)
    load_peak_mb          the peak while loading (a converter or loader may briefly hold two copies)
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """VmHWM: the peak resident set since the process started or since `reset_peak_rss`."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
        return True
    except OSError:
        return False


class GpuMemoryPoller:
    """Peak device memory in use (all allocators: torch's and CTranslate2's), polled every 2 ms."""

    def __init__(self):
        import torch

        self.torch = torch
        self.base = self.used()
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def used(self) -> float:
        free, total = self.torch.cuda.mem_get_info()
        return (total - free) / 2**20

    def _poll(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.used())
            time.sleep(0.002)

    def reset(self) -> float:
        """The peak so far; from now on the peak starts again from the current use."""
        peak, self.peak = max(self.peak, self.used()), self.used()
        return peak

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return max(self.peak, self.used())


class Runner:
    """Loads one build and generates exactly n tokens per prompt (token ids in, token ids out)."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        self.kind = job["kind"]
        self.device = job["device"]
        from rrtf.modeling import load_tokenizer

        self.tokenizer = load_tokenizer(job["path"])

    def load(self) -> None:
        job = self.job
        if self.kind == "ct2":
            from quantize.ct2_backend import CT2Backend

            self.backend = CT2Backend(job["path"], tokenizer=self.tokenizer, device=self.device, compute_type=job["compute_type"],
                                      intra_threads=job["threads"], max_batch_size=max(64, max(job["batch_sizes"])))
            self.generator = self.backend.generator()
            return
        import torch

        from rrtf.backends.transformers_backend import TransformersBackend

        if self.kind == "gptq":
            from quantize.gptq import load_gptq

            self.model = load_gptq(job["path"], device=self.device)
        else:
            from rrtf.modeling import load_model

            self.model = load_model(job["path"], dtype=getattr(torch, job["precision"])).to(self.device).eval()
        self.backend = TransformersBackend(model=self.model, tokenizer=self.tokenizer, batch_size=16)

    def kernel(self) -> str:
        """What computes this build's matrix products: a figure means little without it (GPTQModel picks a kernel per
        bit width, device and installed extension; CTranslate2's int8 GEMM depends on the CPU, see int8_cpu_kernel)."""
        if self.kind == "ct2":
            from quantize.ct2 import int8_cpu_kernel

            return f"ctranslate2 {self.job['compute_type']}" + (f", {int8_cpu_kernel()}" if self.device == "cpu" else "")
        if self.kind == "gptq":
            kernels = sorted({type(m).__name__ for m in self.model.modules() if type(m).__module__.startswith("gptqmodel")})
            return ", ".join(kernels) or "no GPTQModel layer found"
        return f"torch {self.job['precision']} ({'cuda' if self.device == 'cuda' else 'cpu'})"

    def generate(self, prompts: list[list[int]], n: int) -> list[list[int]]:
        if self.kind == "ct2":
            tokens = [self.tokenizer.convert_ids_to_tokens(p) for p in prompts]
            results = self.generator.generate_batch(tokens, max_length=n, min_length=n, include_prompt_in_result=False,
                                                    sampling_topk=1, beam_size=1)
            return [r.sequences_ids[0] for r in results]
        import torch

        enc = self.tokenizer.pad({"input_ids": prompts}, padding=True, padding_side="left", return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**enc, min_new_tokens=n, max_new_tokens=n, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, num_beams=1)
        return out[:, enc["input_ids"].shape[1]:].tolist()

    def sync(self) -> None:
        if self.device == "cuda" and self.kind != "ct2":
            import torch

            torch.cuda.synchronize()


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "ctranslate2", "gptqmodel", "optimum", "accelerate"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def timed(runner: Runner, prompts: list[list[int]], n: int) -> float:
    runner.sync()
    start = time.perf_counter()
    out = runner.generate(prompts, n)
    runner.sync()
    elapsed = time.perf_counter() - start
    if any(len(o) != n for o in out):
        raise RuntimeError(f"{runner.job['spec']}: asked for exactly {n} tokens, got {[len(o) for o in out]}")
    return elapsed


def latency(runner: Runner, prompts: list[list[int]], job: dict[str, Any]) -> dict[str, Any]:
    n, repeats = job["new_tokens"], job["repeats"]
    timed(runner, prompts[:1], 4)  # warm-up: kernels, caches, allocator
    first, full = [], []
    for r in range(repeats):
        prompt = [prompts[r % len(prompts)]]
        first.append(timed(runner, prompt, 1))
        full.append(timed(runner, prompt, n))
    t1, tn = statistics.median(first), statistics.median(full)
    per_token = statistics.median(f - s for f, s in zip(full, first)) / (n - 1)  # paired: same prompt, same moment
    row: dict[str, Any] = {"ttft_ms": round(1000 * t1, 2), "ms_per_token": round(1000 * max(per_token, 0), 2),
                           "tokens_per_s": round(n / tn, 2)}
    for b in job["batch_sizes"]:
        if b == 1:
            continue
        batch = [prompts[i % len(prompts)] for i in range(b)]
        shortest = min(map(len, batch))
        batch = [p[len(p) - shortest:] for p in batch]  # equal lengths: no padding (transformers) or forced steps (CT2)
        times = [timed(runner, batch, n) for _ in range(repeats)]
        row[f"tokens_per_s_b{b}"] = round(b * n / statistics.median(times), 2)
        row[f"ms_per_step_b{b}"] = round(1000 * statistics.median(times) / n, 2)
    return row


def pass_at_1(runner: Runner, job: dict[str, Any]) -> dict[str, Any]:
    from rrtf.evaluate import EvalConfig, evaluate
    from rrtf.evaluate.cli import load_eval_datasets
    from sandbox import Sandbox, SandboxConfig

    cfg = EvalConfig(datasets=[job["dataset"]], num_samples=0, greedy=True, max_new_tokens=job["max_new_tokens"],
                     max_problems=job.get("max_problems"), prompt_template=job.get("prompt_template"), output_file=None,
                     samples_file=job["samples_file"], tag=job["spec"], batch_size=16)
    problems, strategies, unavailable = load_eval_datasets(cfg)
    if unavailable:  # e.g. a language the sandbox lacks: pass@1 of this build cannot be measured here
        raise ValueError(f"pass@1 dataset {job['dataset']}: {unavailable[job['dataset']]}")
    with Sandbox(SandboxConfig(**job.get("sandbox", {}))) as sandbox:
        result = evaluate(problems, runner.backend, sandbox, cfg, strategies=strategies)
    first = next(iter(result.datasets.values()))
    return {"pass@1": round(100 * first.greedy_pass_at_1, 2), "pass@1_problems": first.num_problems}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    # Every build's process imports the same libraries before its baseline is taken, so that
    # load_memory_mb is the model's own and peak_memory_mb carries the same runtime for every build.
    import ctranslate2  # noqa: F401
    import torch
    import transformers.models.gpt_bigcode.modeling_gpt_bigcode  # noqa: F401

    import quantize.ct2_backend  # noqa: F401
    import rrtf.backends.transformers_backend  # noqa: F401

    if job["kind"] == "gptq":  # GPTQModel's import alone takes ~0.2 GB; count it as its runtime, not its model
        from quantize.gptq import _prepare_gptqmodel_env

        _prepare_gptqmodel_env()
        import gptqmodel  # noqa: F401
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    poller = GpuMemoryPoller() if job["device"] == "cuda" else None
    base = poller.base if poller else rss_mb()
    runner = Runner(job)
    start = time.perf_counter()
    runner.load()
    row: dict[str, Any] = {"load_s": round(time.perf_counter() - start, 2), "kernel": runner.kernel(), "versions": library_versions()}
    row["load_peak_mb"] = round(poller.reset() if poller else peak_rss_mb(), 1)
    if poller is None and not reset_peak_rss():
        row["note"] = "VmHWM could not be reset: peak_memory_mb includes loading"
    prompts = [runner.tokenizer(p, add_special_tokens=False)["input_ids"] for p in job["prompts"]]
    row.update(latency(runner, prompts, job))
    peak = poller.stop() if poller else peak_rss_mb()
    row["peak_memory_mb"] = round(peak, 1)
    row["load_memory_mb"] = round(peak - base, 1)
    if poller is not None and runner.kind != "ct2":
        row["torch_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if job.get("dataset"):
        row.update(pass_at_1(runner, job))
    return row


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    row = measure(job)
    print("RRTF_MEASURE " + json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
