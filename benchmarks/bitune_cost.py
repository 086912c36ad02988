"""What Bitune costs: one training step (forward, backward, AdamW update) of Bitune against LoRA at the
same batch, and Bitune's examples/s at batch 8 against batch 1 -- the official code's only mode
(`assert ... shape[0] == 1`) -- all in one run. Next to the timings, two machine-independent measures of
one step: the activations autograd keeps for the backward pass (weights excluded) and the tokens run
through the transformer (Bitune runs each prompt twice).

Each configuration runs in a fresh child process (same seed, weights and token ids), so its peak memory
is its own: on CPU the peak resident set size during the timed steps (VmHWM after resetting it through
/proc/self/clear_refs), on CUDA torch.cuda.max_memory_allocated. The children run round-robin for
--rounds rounds, so a load change on a shared machine hits every configuration alike. On CPU a step's
cost is the process's CPU time (one thread: other jobs on the machine barely change it, where they
double the wall time); on CUDA the fastest synchronised wall time. Wall times are in the JSON too.
Examples are SFT pairs (the official setting): a prompt of --prompt-tokens (varying by +-25% so the
batch is padded) and an answer of --response-tokens, random token ids.

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
sys.path.insert(0, str(Path(__file__).parent))
from rrtf_step import peak_reset, vm_kib  # noqa: E402  (the same peak-memory measurement as the RRTF step benchmark)


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


def saved_activations(model, layout, batch) -> tuple[float, int]:
    """(MiB of tensors autograd keeps for the backward pass, weights excluded; tokens run through the
    transformer) for one forward: machine-independent measures of what a step costs."""
    import torch

    weights = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}
    tokens = [0]

    def pack(t):
        if t.data_ptr() not in weights and t.device.type != "meta":
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        tokens[0] += ids.numel() if ids is not None else 0

    backbone = getattr(model, "base", model)
    backbone = getattr(backbone, "get_base_model", lambda: backbone)().base_model
    hook = backbone.register_forward_pre_hook(count, with_kwargs=True)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layout.scores(model, batch).sum().backward()
    finally:
        hook.remove()
    model.zero_grad(set_to_none=True)
    return sum(seen.values()) / 2**20, tokens[0]


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
    activations, tokens = saved_activations(model, layout, batch)
    rss_before = vm_kib("VmRSS")
    peak_kind = "peak RSS during the timed steps" if peak_reset() else "peak RSS of the process"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        peak_kind = "cuda max_memory_allocated"
    times, cpu_times = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else vm_kib("VmHWM") / 1024
    return {"method": args.method, "batch": args.batch, "s_per_step": statistics.median(times), "s_per_step_min": min(times),
            "cpu_s_per_step": statistics.median(cpu_times),
            "saved_activations_mib": activations, "tokens_through_model": tokens,
            "peak_mib": peak, "peak_kind": peak_kind, "rss_before_steps_mib": rss_before / 1024}


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
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
        # On CPU: the process's own CPU time per step (one thread), which other jobs on a shared machine barely
        # change, where wall time doubles with the load; on CUDA: wall time (synchronised), the fastest step.
        if args.device == "cpu":
            step = statistics.median(x["cpu_s_per_step"] for x in results)
        else:
            step = min(x["s_per_step_min"] for x in results)
        rows.append({"method": method, "batch": batch, "s_per_step": step, "examples_per_s": batch / step,
                     "wall_s_per_step_median": statistics.median(x["s_per_step"] for x in results),
                     "wall_s_per_step_min": min(x["s_per_step_min"] for x in results),
                     "saved_activations_mib": results[0]["saved_activations_mib"], "tokens_through_model": results[0]["tokens_through_model"],
                     "peak_mib": statistics.median(x["peak_mib"] for x in results), "peak_kind": results[0]["peak_kind"],
                     # on CPU the peak RSS includes the libraries; the growth during the steps is the step's own
                     "step_mib": statistics.median(x["peak_mib"] - (x["rss_before_steps_mib"] if args.device == "cpu" else 0) for x in results),
                     "s_per_step_all": [x["s_per_step"] for x in results]})
    by = {(r["method"], r["batch"]): r for r in rows}
    ratios = {
        "bitune_vs_lora_step_time_batch8": by[("bitune", 8)]["s_per_step"] / by[("lora", 8)]["s_per_step"],
        "bitune_vs_lora_peak_memory_batch8": by[("bitune", 8)]["peak_mib"] / by[("lora", 8)]["peak_mib"],
        "bitune_vs_lora_step_memory_batch8": by[("bitune", 8)]["step_mib"] / max(by[("lora", 8)]["step_mib"], 1e-9),
        "bitune_vs_lora_saved_activations_batch8": by[("bitune", 8)]["saved_activations_mib"] / by[("lora", 8)]["saved_activations_mib"],
        "bitune_vs_lora_tokens_through_model_batch8": by[("bitune", 8)]["tokens_through_model"] / by[("lora", 8)]["tokens_through_model"],
        "bitune_vs_lora_step_time_batch1": by[("bitune", 1)]["s_per_step"] / by[("lora", 1)]["s_per_step"],
        "bitune_examples_per_s_batch8_vs_batch1": by[("bitune", 8)]["examples_per_s"] / by[("bitune", 1)]["examples_per_s"],
    }
    print(f"\nBitune vs LoRA, model {args.size} {SIZES[args.size]}, {args.device}, {args.threads} threads, SFT examples of "
          f"~{args.prompt_tokens} prompt + {args.response_tokens} answer tokens, {args.steps} steps x {args.rounds} rounds; s/step: "
          f"{'CPU time of the process (median)' if args.device == 'cpu' else 'fastest synchronised wall time'}")
    header = f"{'method':<8} {'batch':>5} {'s/step':>8} {'examples/s':>11} {'peak MiB':>9} {'step MiB':>9} {'saved MiB':>10} {'tokens':>7}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['method']:<8} {r['batch']:>5} {r['s_per_step']:>8.3f} {r['examples_per_s']:>11.2f} {r['peak_mib']:>9.0f} "
              f"{r['step_mib']:>9.0f} {r['saved_activations_mib']:>10.1f} {r['tokens_through_model']:>7}")
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
        "step_time": "process CPU time, median" if args.device == "cpu" else "synchronised wall time, fastest step",
        "gpu": "not measured on GPU: no device lent" if args.device == "cpu" else args.device,
    }, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
