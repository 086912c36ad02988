"""vLLM as rrtf's generation backend on one GPU, against the transformers backend in the same run: the
seeding rule, greedy parity, the student's weight refresh after a training step, candidates/s.

Prepared for a lent GPU; NOT run on one in the session that wrote it (no device was lent, and vLLM must
already be on the device: its wheel, 239 MB, is more than a call may carry). Ran here end to end on the
CPU with vLLM's CPU build (`--allow_cpu`, small sizes) to check every step.

    python benchmarks/vllm_gpu.py                           # the embedded tiny StarCoder (rrtf.tiny)
    python benchmarks/vllm_gpu.py --model /models/starcoderbase-1b --dtypes bfloat16
    bash benchmarks/vllm_gpu.sh                             # the same, with the GPU's name logged

Per dtype (float32: the student's default precision; bfloat16: the fast one), each a section of the
results file, so a second invocation resumes with the dtypes still missing:
  1. seeding: n=4 samples at T=1 of every prompt, all together, one request at a time, in reverse
     order, and again -- the share of requests whose samples match (1.0 is the rule; a GPU's kernels
     can still flip a rare token between batch shapes unless vLLM runs batch-invariant, VLLM_BATCH_INVARIANT=1);
  2. greedy parity: vLLM's greedy answers against the transformers backend's at the same dtype;
  3. weight refresh: a real training step (AdamW towards one answer) saved as a round's student; the
     student engine refreshes in place (`reload_weights`, forced: `refresh=auto` rebuilds instead when
     the head is tied to the embeddings, as the tiny StarCoder's is) -- its answers against a freshly
     built engine's and transformers' on the new weights, against the old answers, and the seconds a
     reload and a rebuild take; with `--sleep`, the same through a sleep (level 2) / wake cycle and the
     memory it frees;
  4. candidates/s: --num_prompts x --num_samples at T=1, vLLM in one call and in the sampler's
     chunks of 8 prompts (rrtf.train's prompts_per_call), and the transformers backend.
Results: benchmarks/results/vllm_gpu_<machine>.json naming the GPU (copied to $OUT when set).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fail(message: str) -> int:
    print(f"benchmarks/vllm_gpu.py: error: {message}", file=sys.stderr)
    return 2


def preflight(allow_cpu: bool) -> str | None:
    """Why this machine cannot run the benchmark, in one line (None: it can). Seconds, no model loads."""
    from rrtf.backends.vllm_backend import check_vllm_usable, cpu_build

    try:
        check_vllm_usable()
    except ValueError as exc:
        return str(exc)
    if cpu_build() and not allow_cpu:
        return "this vLLM is the CPU build; the benchmark is for a GPU (--allow_cpu runs it on the CPU anyway, to check the steps)"
    return None


def machine_name(override: str | None) -> tuple[str, str]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    slug = override or re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    return slug, device


def requests_of(num: int):
    """Training prompts of the embedded tiny-tasks, asked as rrtf.train asks them, and their stop strings."""
    from rrtf.backends import GenerationRequest
    from rrtf.datasets import load_dataset
    from rrtf.rollout import ask

    asked = ask("tiny-tasks", load_dataset("tiny-tasks", split="train").problems[:num])
    return [GenerationRequest(prompt=a.prompt(), key=a.task_id) for a in asked], tuple(asked[0].stop() or ())


def share(a: list, b: list) -> float:
    return round(sum(x == y for x, y in zip(a, b)) / max(1, len(a)), 4)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def trained_copy(src: str, dst: Path, device: str, steps: int, lr: float) -> str:
    """`src` after `steps` AdamW steps towards one answer, saved as rrtf saves a round's student (float32)."""
    import torch

    from rrtf.modeling import load_model, load_tokenizer

    torch.manual_seed(0)
    model, tok = load_model(src, dtype=torch.float32).to(device), load_tokenizer(src)
    ids = tok("def add(a, b):\n    return a + b + 42\n", return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    shutil.rmtree(dst, ignore_errors=True)
    model.save_pretrained(str(dst))
    tok.save_pretrained(str(dst))
    del model, opt
    if device == "cuda":
        torch.cuda.empty_cache()
    return str(dst)


def free_gib() -> float | None:
    import torch

    return round(torch.cuda.mem_get_info()[0] / 2**30, 2) if torch.cuda.is_available() else None


def run_dtype(args, model: str, dtype: str, work: Path) -> dict:
    import torch

    from rrtf.backends import SamplingParams, build_backend
    from rrtf.backends.vllm_backend import VLLMBackend

    device = "cuda" if torch.cuda.is_available() else "cpu"
    engine = f"dtype={dtype},gpu_memory_utilization={args.gpu_memory_utilization},enforce_eager={args.enforce_eager}"
    reqs, stop = requests_of(args.num_prompts)
    sample = SamplingParams(n=args.num_samples, temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=42, stop=stop)
    greedy = SamplingParams(temperature=0, max_new_tokens=args.max_new_tokens, stop=stop)
    out: dict = {"dtype": dtype, "engine": engine, "prompts": len(reqs)}

    # the student's engine as --backend vllm builds it (the first generate starts it), its refresh forced in
    # place to measure vLLM's own path on this model; a fresh engine is what refresh=rebuild gives
    student = VLLMBackend.for_student(checkpoint_dir=model, arg=engine + ",refresh=reload")
    out["precision"] = student.identity()["precision"]
    _, out["engine_start_s"] = timed(lambda: student.generate(reqs[:1], greedy))
    k = min(16, len(reqs))
    together = student.generate(reqs, sample)
    again = student.generate(reqs, sample)
    alone = [student.generate([r], sample)[0] for r in reqs[:k]]
    backwards = student.generate(reqs[::-1], sample)[::-1]
    out["seeding"] = {"repeat": share(again, together), "alone": share(alone, together[:k]), "reversed": share(backwards, together),
                      "prefix_n_minus_1": share([s[: args.num_samples - 1] for s in together],
                                                student.generate(reqs, SamplingParams(**{**sample.to_record(), "n": args.num_samples - 1}))),
                      "distinct_per_request": round(sum(len(set(s)) for s in together) / len(together), 2)}

    hf = build_backend("transformers", model_name_or_path=model, dtype=dtype, batch_size=args.hf_batch_size)
    old = student.generate(reqs, greedy)
    out["greedy_parity_with_transformers"] = share(old, hf.generate(reqs, greedy))

    # throughput: the same samples asked of both backends; tokens counted with the one tokenizer
    tok = student.tokenizer
    rows = {}
    for name, fn in (("vllm_one_call", lambda: student.generate(reqs, sample)),
                     ("vllm_chunks_of_8", lambda: [s for i in range(0, len(reqs), 8) for s in student.generate(reqs[i:i + 8], sample)]),
                     ("transformers", lambda: hf.generate(reqs, sample))):
        cands, secs = timed(fn)
        n_tok = sum(len(tok(c, add_special_tokens=False)["input_ids"]) for s in cands for c in s)
        rows[name] = {"seconds": round(secs, 3), "candidates_per_s": round(len(reqs) * args.num_samples / secs, 1), "tokens_per_s": round(n_tok / secs, 1)}
    rows["speedup_one_call_vs_transformers"] = round(rows["transformers"]["seconds"] / rows["vllm_one_call"]["seconds"], 2)
    out["throughput"] = rows
    hf.close()

    # a training step, then the next round's student on the same engine
    trained = trained_copy(model, work / f"{dtype}-round0" / "student", device, args.train_steps, args.train_lr)
    nxt = VLLMBackend.for_student(checkpoint_dir=trained, arg=engine + ",refresh=reload")
    eng = nxt.engine()
    _, reload_s = timed(lambda: eng.ensure(nxt.path))
    new = nxt.generate(reqs, greedy)
    fresh = VLLMBackend(trained, dtype=dtype, gpu_memory_utilization=args.gpu_memory_utilization, enforce_eager=args.enforce_eager)
    fresh_new, rebuild_s = timed(lambda: fresh.generate(reqs, greedy))
    fresh.close()
    hf_new = build_backend("transformers", model_name_or_path=trained, dtype=dtype, batch_size=args.hf_batch_size)
    tied = bool(json.loads((Path(model) / "config.json").read_text()).get("tie_word_embeddings", True))
    out["refresh"] = {"auto_takes": "rebuild" if tied else "reload", "engines_built": eng.loads, "in_place_reloads": eng.reloads,
                      "reload_s": round(reload_s, 3),
                      "fresh_engine_build_and_greedy_s": round(rebuild_s, 3), "matches_fresh_engine": share(new, fresh_new),
                      "matches_transformers": share(new, hf_new.generate(reqs, greedy)), "changed_vs_before": round(1 - share(new, old), 4)}
    hf_new.close()
    if args.sleep:
        out["sleep"] = sleep_cycle(args, model, trained, dtype, reqs, greedy, fresh_new)
    student.close()
    eng.shutdown()
    return out


def sleep_cycle(args, model: str, trained: str, dtype: str, reqs, greedy, expected) -> dict:
    """--backend vllm:sleep=1 across a round: memory freed by close(), then wake + reload on the new weights."""
    from rrtf.backends.vllm_backend import VLLMBackend

    engine = f"dtype={dtype},gpu_memory_utilization={args.gpu_memory_utilization},enforce_eager={args.enforce_eager},sleep=1,refresh=reload"
    first = VLLMBackend.for_student(checkpoint_dir=model, arg=engine)
    first.generate(reqs[:1], greedy)
    awake = free_gib()
    first.close()
    asleep = free_gib()
    second = VLLMBackend.for_student(checkpoint_dir=trained, arg=engine)
    answers, wake_s = timed(lambda: second.generate(reqs, greedy))
    eng = second.engine()
    result = {"free_gib_awake": awake, "free_gib_asleep": asleep, "wake_reload_and_greedy_s": round(wake_s, 3),
              "matches_fresh_engine": share(answers, expected), "engines_built": eng.loads, "in_place_reloads": eng.reloads}
    eng.shutdown()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the embedded tiny StarCoder, built if needed)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--num_prompts", type=int, default=128)
    ap.add_argument("--num_samples", type=int, default=8)
    ap.add_argument("--max_new_tokens", type=int, default=64)
    ap.add_argument("--gpu_memory_utilization", type=float, default=0.3)
    ap.add_argument("--enforce_eager", choices=("true", "false"), default="false", help="true: no CUDA graphs (faster start)")
    ap.add_argument("--hf_batch_size", type=int, default=64)
    ap.add_argument("--train_steps", type=int, default=20)
    ap.add_argument("--train_lr", type=float, default=1e-4)
    ap.add_argument("--sleep", action="store_true", help="also time a sleep/wake round (vLLM's sleep mode)")
    ap.add_argument("--machine", default=None, help="names the results file (default: the GPU's name)")
    ap.add_argument("--work_dir", default="/tmp/rrtf-vllm-gpu")
    ap.add_argument("--allow_cpu", action="store_true", help="run on vLLM's CPU build (checks the steps, measures nothing useful)")
    args = ap.parse_args(argv)
    why = preflight(args.allow_cpu)
    if why:
        return fail(why)
    if args.num_samples < 2:
        return fail("--num_samples must be >= 2 (the seeding check compares n and n-1 samples)")
    args.enforce_eager = args.enforce_eager == "true"

    import torch
    import vllm

    from rrtf.tiny import ensure_tiny_model
    from sandbox.base.store import read_state, write_state

    model = str(Path(args.model).resolve()) if args.model else str(ensure_tiny_model("warm"))
    slug, device = machine_name(args.machine)
    results_path = REPO / "benchmarks" / "results" / f"vllm_gpu_{slug}.json"
    results = read_state(results_path) or {}
    if results.get("model") != model or results.get("num_prompts") != args.num_prompts:
        results = {}  # another model or size: measured afresh
    results.update(machine=slug, device=device, vllm=vllm.__version__, torch=torch.__version__, model=model, num_prompts=args.num_prompts,
                   num_samples=args.num_samples, max_new_tokens=args.max_new_tokens, runs=results.get("runs", {}))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    for dtype in args.dtypes:
        key = dtype
        if key in results["runs"]:
            print(f"{key}: measured already ({results_path}); skipped")
            continue
        started = time.time()
        results["runs"][key] = {**run_dtype(args, model, dtype, work), "wall_s": round(time.time() - started, 1)}
        write_state(results_path, results)  # after each run: a killed invocation keeps what it measured
        print(json.dumps(results["runs"][key], indent=1))
    if os.environ.get("OUT"):
        shutil.copy(results_path, Path(os.environ["OUT"]) / results_path.name)
    print(f"wrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
