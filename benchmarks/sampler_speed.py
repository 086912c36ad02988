"""Sampling speed of the student: candidates/s of the ct2 backend (CTranslate2) against the
transformers backend's `generate`, same run, same prompts, same decoding settings -- what RRTF's
sampling stage asks for (n samples per prompt at temperature T, the problem's stop strings,
`prompts_per_call` prompts per call, seeded per request).

    python benchmarks/sampler_speed.py                                # the embedded default model
    python benchmarks/sampler_speed.py --shape starcoderbase-1b --max_new_tokens 32 --calls 1

Both backends go through `GenerationBackend.generate` exactly as the sampler calls it. The
transformers backend samples the float32 model (the one being trained), with a seeded generator per
row; "transformers generate (HF sampler)" is transformers' own sampler on the same model and
settings with one seed per call -- the faster peer without per-row seeds. ct2 samples its int8 export
(`--backend ct2` in training), with per-request seeding ("request", the default: exact seeds, a
generator per request) and per-batch seeding ("batch": faster, reproducible only batch by batch).
Each backend gets one warm-up call, then `--calls` timed calls. A random-weights model rarely stops
early, so on the 1B shape every candidate is max_new_tokens long; on the trained default model the
candidates stop at EOS or a stop string, so tokens/s is reported next to candidates/s.

Writes benchmarks/results/sampler_speed[_SHAPE].json (with the machine and its load).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"


def prompts_and_stops(n_prompts: int, template: str | None = None):
    from rrtf.datasets import load_dataset
    from rrtf.prompts import get_strategy

    ds = load_dataset("tiny-tasks:train")
    strategy = get_strategy(ds.strategy)
    problems = ds.problems[:n_prompts]
    stops = {tuple(strategy.stop(p) or ()) for p in problems}
    return [strategy.prompt(p, template) for p in problems], next(iter(stops)) if len(stops) == 1 else ()


def time_backend(backend, prompts, params, calls: int, per_call: int, tokenizer) -> dict:
    from rrtf.backends import GenerationRequest

    def requests(c):
        return [GenerationRequest(prompt=p, key=f"0|task-{c}-{i}|student@{params.temperature:g}")
                for i, p in enumerate(prompts[c * per_call:(c + 1) * per_call])]

    backend.generate(requests(calls), params)  # warm-up: a batch that is not timed
    start = time.perf_counter()
    outputs = [backend.generate(requests(c), params) for c in range(calls)]
    elapsed = time.perf_counter() - start
    texts = [t for out in outputs for row in out for t in row]
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return {"seconds": round(elapsed, 3), "candidates": len(texts), "candidates_per_s": round(len(texts) / elapsed, 2),
            "new_tokens": tokens, "tokens_per_s": round(tokens / elapsed, 1)}


class PlainGenerate:
    """transformers' own sampler (`model.generate(do_sample=True, num_return_sequences=n)`, one global
    seed per call, stop strings through StopStringCriteria): the lower bound of what the transformers
    backend costs without its per-row seeding."""

    def __init__(self, model_dir, batch_size: int):
        import torch

        from rrtf.modeling import load_model, load_tokenizer

        self.model = load_model(model_dir, dtype=torch.float32).eval()
        self.tokenizer = load_tokenizer(model_dir)
        self.batch_size = batch_size

    def generate(self, requests, params):
        import torch
        from transformers import StopStringCriteria

        torch.manual_seed(params.seed)
        stop = [StopStringCriteria(self.tokenizer, list(params.stop))] if params.stop else None
        enc = self.tokenizer([r.prompt for r in requests], return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=False)
        with torch.inference_mode():
            out = self.model.generate(**enc, do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
                                      num_return_sequences=params.n, max_new_tokens=params.max_new_tokens, stopping_criteria=stop,
                                      pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return [texts[i * params.n:(i + 1) * params.n] for i in range(len(requests))]

    def close(self):
        self.model = None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default=None, help="randomly initialised shape (quantize.shapes) instead of the embedded default model")
    ap.add_argument("--num_samples", type=int, default=6)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max_new_tokens", type=int, default=64)
    ap.add_argument("--prompts_per_call", type=int, default=8)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quantization", default="int8")
    ap.add_argument("--work_dir", default="outputs/bench-work")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    from quantize.ct2 import cached_ct2
    from quantize.report import machine
    from rrtf.backends import SamplingParams, build_backend
    from rrtf.modeling import load_tokenizer
    from sandbox.base.store import write_state

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.shape:
        from quantize.shapes import build_random_model

        model_dir = build_random_model(args.shape, Path(args.work_dir) / f"source-{args.shape}")
    else:
        from rrtf.tiny import ensure_tiny_model

        model_dir = ensure_tiny_model("warm")
    ct2_dir, _ = cached_ct2(model_dir, args.quantization, Path(args.work_dir) / f"{Path(model_dir).name}-ct2-{args.quantization}")
    tokenizer = load_tokenizer(model_dir)
    prompts, stop = prompts_and_stops(args.prompts_per_call * (args.calls + 1))
    params = SamplingParams(n=args.num_samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens, stop=stop, seed=42)
    load_before = os.getloadavg()
    rows = []
    contenders = [("transformers float32", lambda: build_backend("transformers", model_name_or_path=model_dir, dtype="float32",
                                                                    batch_size=args.prompts_per_call * args.num_samples)),
                  ("transformers generate (HF sampler)", lambda: PlainGenerate(model_dir, args.prompts_per_call * args.num_samples)),
                  (f"ct2 {args.quantization} (seeding=request)", lambda: build_backend("ct2", model_dir=ct2_dir, intra_threads=args.threads)),
                  (f"ct2 {args.quantization} (seeding=batch)", lambda: build_backend("ct2", model_dir=ct2_dir, intra_threads=args.threads,
                                                                                   seeding="batch"))]
    for name, make in contenders:
        backend = make()
        row = {"backend": name, **time_backend(backend, prompts, params, args.calls, args.prompts_per_call, tokenizer)}
        if hasattr(backend, "loads"):
            row["generator_loads"] = backend.loads
        backend.close()
        del backend
        gc.collect()
        rows.append(row)
        print(f"{name:<32} {row['candidates_per_s']:>8.2f} candidates/s {row['tokens_per_s']:>9.1f} tokens/s  ({row['seconds']} s)",
              flush=True)
    base = rows[0]
    for r in rows:
        r["speedup_candidates"] = round(r["candidates_per_s"] / base["candidates_per_s"], 2)
        r["speedup_tokens"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
    result = {"benchmark": "sampler_speed", "model": args.shape or f"embedded default ({Path(model_dir).name})",
              "settings": {**vars(args), "stop": list(stop)}, "machine": {**machine(), "load_average_before": load_before}, "rows": rows}
    print("\n| backend | candidates/s | tokens/s | × candidates/s | × tokens/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['candidates_per_s']} | {r['tokens_per_s']} | {r['speedup_candidates']} | {r['speedup_tokens']} |")
    out = Path(args.out) if args.out else RESULTS / f"sampler_speed{'_' + args.shape if args.shape else ''}.json"
    write_state(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
