"""What Bitune costs: one training step (forward, backward, AdamW update) of Bitune against LoRA at the
same batch, and Bitune's examples/s at batch 8 against batch 1 -- the official code's only mode
(`assert ... shape[0] == 1`) -- all in one run.

Each configuration runs in a fresh child process (same seed, weights and token ids), so its peak memory
is its own: on CPU the peak resident set size during the timed steps (VmHWM after resetting it through
/proc/self/clear_refs), on CUDA torch.cuda.max_memory_allocated. The children run round-robin for
--rounds rounds and each configuration reports its median, so a load change on a shared machine hits
every configuration alike. Examples are SFT pairs (the official setting): a prompt of --prompt-tokens
(varying by +-25% so the batch is padded) and an answer of --response-tokens, random token ids.

    python benchmarks/bitune_cost.py                        # a small GPTBigCode (4 layers, 256 wide), CPU
    python benchmarks/bitune_cost.py --size starcoderbase-1b --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"tiny": dict(n_layer=2, n_embd=64, n_head=4), "small": dict(n_layer=4, n_embd=256, n_head=8),
         "starcoderbase-1b": dict(n_layer=24, n_embd=2048, n_head=16, n_inner=8192)}
CONFIGS = [("lora", 8), ("bitune", 8), ("lora", 1), ("bitune", 1)]
RESULTS = Path(__file__).parent / "results" / "bitune_cost.json"


def make_groups(args, vocab_size: int, eos: int, batch: int):
    import torch

    from rrtf.packing import EncodedGroup

    gen = torch.Generator().manual_seed(args.seed)
    groups = []
    for g in range(batch):
        n = args.prompt_tokens + int(torch.randint(-args.prompt_tokens // 4, args.prompt_tokens // 4 + 1, (1,), generator=gen))
        prompt = torch.randint(1, vocab_size, (n,), generator=gen).tolist()
        answer = torch.randint(1, vocab_size, (args.response_tokens - 1,), generator=gen).tolist() + [eos]
        groups.append(EncodedGroup(task_id=f"g{g}", prompt_ids=prompt, response_ids=[answer], rewards=[1.0], best=0))
    return groups


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker(args) -> dict:
    """Time one (method, batch) configuration in this process."""
    import torch
    from transformers import GPTBigCodeForCausalLM

    from rrtf.losses import rrtf_loss
    from rrtf.modeling import load_starcoder_tokenizer, tiny_starcoder_config
    from rrtf.packing import LAYOUTS
    from rrtf.tuning import build_tuning_method

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tok = load_starcoder_tokenizer()
    cfg = tiny_starcoder_config(len(tok), n_positions=max(1024, 2 * args.prompt_tokens + args.response_tokens), **SIZES[args.size])
    cfg.n_inner = SIZES[args.size].get("n_inner")
    torch.manual_seed(args.seed)
    method = build_tuning_method(args.method)
    model = method.apply(GPTBigCodeForCausalLM(cfg).to(device).train())
    layout = method.layout(LAYOUTS["packed"]())
    batch = {k: v.to(device) for k, v in LAYOUTS["packed"]().collate(make_groups(args, len(tok), tok.eos_token_id, args.batch),
                                                                     tok.pad_token_id).items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        p = layout.scores(model, batch)
        loss, _ = rrtf_loss(p, batch["rewards"], batch["candidate_mask"], batch["best_index"], rank=False)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    sync()
    rss_before = vm_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        peak_kind = "peak RSS during the timed steps"
    except OSError:
        peak_kind = "peak RSS of the process"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        peak_kind = "cuda max_memory_allocated"
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else vm_kib("VmHWM") / 1024
    return {"method": args.method, "batch": args.batch, "s_per_step": statistics.median(times), "peak_mib": peak, "peak_kind": peak_kind,
            "rss_before_steps_mib": rss_before / 1024}


def child(args, method: str, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--method", method, "--batch", str(batch), "--size", args.size,
           "--prompt-tokens", str(args.prompt_tokens), "--response-tokens", str(args.response_tokens), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device, "--seed", str(args.seed)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{method} batch {batch} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--prompt-tokens", type=int, default=96)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return

    load_before = os.getloadavg()
    runs: dict[tuple[str, int], list[dict]] = {c: [] for c in CONFIGS}
    for r in range(args.rounds):
        for method, batch in CONFIGS:
            runs[(method, batch)].append(child(args, method, batch))
            print(f"  round {r + 1}: {method} batch {batch} done", file=sys.stderr)
    rows = []
    for (method, batch), results in runs.items():
        step = statistics.median(x["s_per_step"] for x in results)
        rows.append({"method": method, "batch": batch, "s_per_step": step, "examples_per_s": batch / step,
                     "peak_mib": statistics.median(x["peak_mib"] for x in results), "peak_kind": results[0]["peak_kind"],
                     # on CPU the peak RSS includes the libraries; the growth during the steps is the step's own
                     "step_mib": statistics.median(x["peak_mib"] - (x["rss_before_steps_mib"] if args.device == "cpu" else 0) for x in results),
                     "s_per_step_all": [x["s_per_step"] for x in results]})
    by = {(r["method"], r["batch"]): r for r in rows}
    ratios = {
        "bitune_vs_lora_step_time_batch8": by[("bitune", 8)]["s_per_step"] / by[("lora", 8)]["s_per_step"],
        "bitune_vs_lora_peak_memory_batch8": by[("bitune", 8)]["peak_mib"] / by[("lora", 8)]["peak_mib"],
        "bitune_vs_lora_step_memory_batch8": by[("bitune", 8)]["step_mib"] / max(by[("lora", 8)]["step_mib"], 1e-9),
        "bitune_vs_lora_step_time_batch1": by[("bitune", 1)]["s_per_step"] / by[("lora", 1)]["s_per_step"],
        "bitune_examples_per_s_batch8_vs_batch1": by[("bitune", 8)]["examples_per_s"] / by[("bitune", 1)]["examples_per_s"],
    }
    print(f"\nBitune vs LoRA, model {args.size} {SIZES[args.size]}, {args.device}, {args.threads} threads, SFT examples of "
          f"~{args.prompt_tokens} prompt + {args.response_tokens} answer tokens, median of {args.steps} steps x {args.rounds} rounds")
    header = f"{'method':<8} {'batch':>5} {'s/step':>8} {'examples/s':>11} {'peak MiB':>9} {'step MiB':>9}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['method']:<8} {r['batch']:>5} {r['s_per_step']:>8.3f} {r['examples_per_s']:>11.2f} {r['peak_mib']:>9.0f} {r['step_mib']:>9.0f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "benchmark": "bitune_cost", "machine": platform.node(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "device": args.device, "threads": args.threads, "size": args.size, "shape": SIZES[args.size],
        "prompt_tokens": args.prompt_tokens, "response_tokens": args.response_tokens, "steps": args.steps, "rounds": args.rounds,
        "load_average_before": load_before, "load_average_after": load_after, "rows": rows, "ratios": ratios,
        "gpu": "not measured on GPU: no device lent" if args.device == "cpu" else args.device,
    }, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
