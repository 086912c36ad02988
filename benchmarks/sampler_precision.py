"""Does the student sampler's precision change what RRTF learns? The embedded default
(`python -m rrtf.train`, configs/default.yaml) trained once per arm -- the student sampled by
CTranslate2 int8, by CTranslate2 float32, by the transformers backend (the in-memory float32 model) --
at the same seed, in one run, and held-out greedy pass@1 after training compared.

    python benchmarks/sampler_precision.py                       # arms ct2-int8 ct2-float32 transformers, seed 42
    python benchmarks/sampler_precision.py --seeds 42 1 2 --arms ct2-int8 ct2-float32 transformers ct2-int8-novnni \
        --repeat ct2-float32                                     # what docs/quantize.md reports

An arm is a `--backend` and the environment it runs in: `ct2-int8-novnni` is `ct2:int8` with
ONEDNN_MAX_CPU_ISA=AVX2, which makes CTranslate2 run the int8 GEMM a CPU without VNNI runs (int16
accumulation with saturation, docs/quantize.md) -- the kernel under which int8 disagrees most with
float32; torch is unaffected by the cap (checked when the arm was added: the default model's logits and
gradients are bit-identical with and without it), so only the sampler changes.

Also measured: greedy agreement of each CTranslate2 build with the float32 transformers model on the
first 32 held-out prompts (the base model round 0 samples, and a trained model), under this CPU's
int8 kernel and under the capped one; how many round-0 student candidates each arm shares with the
float32 arm (same seeds, so a difference is the precision's); and which held-out problems flip.

`--repeat ARM` trains ARM a second time (`ARM-repeat`, the same inputs): how far two identical runs land
apart is the yardstick for the differences between arms. Every arm is a full run in its own process and
output directory under --work_dir; a finished arm (its `bench.json`) is reused, so a killed benchmark
resumes. Writes benchmarks/results/sampler_precision.json (the machine, each run's load after it) and
prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results"
NO_VNNI = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
ARMS = {  # name: (--backend, environment)
    "ct2-int8": ("ct2:int8", {}),
    "ct2-float32": ("ct2:float32", {}),
    "transformers": ("transformers", {}),
    "ct2-int8-novnni": ("ct2:int8", NO_VNNI),
}
AGREEMENT_BUILDS = ("int8", "float32")
REPEAT = "-repeat"


def agreement(model_dir: str, n_prompts: int, max_new_tokens: int) -> dict:
    """Greedy answers of each CTranslate2 build of `model_dir` equal to the float32 transformers model's,
    on the first n held-out prompts (as asked in training and evaluation: the dataset's strategy and stops)."""
    from quantize.ct2 import cached_ct2, int8_cpu_kernel
    from rrtf.backends import GenerationRequest, SamplingParams, build_backend
    from rrtf.rollout import ask

    asked = ask("tiny-tasks:heldout", _heldout()[:n_prompts])
    requests = [GenerationRequest(prompt=a.prompt(None), key=a.task_id) for a in asked]
    params = SamplingParams(max_new_tokens=max_new_tokens, stop=tuple(asked[0].stop() or ()))
    reference = build_backend("transformers", model_name_or_path=model_dir).generate(requests, params)
    out = {"prompts": len(requests), "int8_kernel": int8_cpu_kernel(), "builds": {}}
    for quantization in AGREEMENT_BUILDS:
        backend = build_backend("ct2", model_dir=cached_ct2(model_dir, quantization)[0], intra_threads=os.cpu_count())
        answers = backend.generate(requests, params)
        out["builds"][quantization] = {"precision": backend.identity()["precision"],
                                       "agree": sum(a == b for a, b in zip(answers, reference))}
        backend.close()
    return out


def _heldout():
    from rrtf.datasets import load_dataset

    return load_dataset("tiny-tasks:heldout").problems


def agreement_in_process(model_dir: str, env: dict, args) -> dict:
    """`agreement` in a fresh process: oneDNN reads ONEDNN_MAX_CPU_ISA once, when it starts."""
    cmd = [sys.executable, __file__, "--agreement_of", model_dir, "--prompts", str(args.prompts), "--max_new_tokens", str(args.max_new_tokens)]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"agreement of {model_dir} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_arm(name: str, seed: int, work: Path, extra: list[str]) -> dict:
    """One full `python -m rrtf.train` of the default with this arm's sampler; its bench.json when done."""
    backend, env = ARMS[name.removesuffix(REPEAT)]
    out = work / f"seed{seed}" / name
    done = out / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "rrtf.train", "--backend", backend, "--seed", str(seed), "--output_dir", str(out),
           "--disable_tqdm", "true", *extra]
    start = time.time()
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.time() - start
    if proc.returncode:
        raise RuntimeError(f"arm {name} seed {seed} failed (exit {proc.returncode}); see {out / 'train.log'}")
    metrics = json.loads((out / "metrics.json").read_text())
    row = {"arm": name, "backend": backend, "env": env, "seed": seed, "output_dir": str(out),
           "student_sampler": metrics.get("student_sampler"), "int8_kernel": _kernel(env),
           "before": metrics["eval_before"]["pass@1"], "after": metrics["eval_after"]["pass@1"],
           "wall_s": round(wall, 1), "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    done.write_text(json.dumps(row, indent=1))
    return row


def _kernel(env: dict) -> str:
    from quantize.ct2 import int8_cpu_kernel

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return int8_cpu_kernel()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def student_candidates(out: Path) -> dict[tuple, str]:
    rows = (json.loads(line) for line in (out / "round0" / "candidates.jsonl").read_text().splitlines() if line.strip())
    return {(r["task_id"], r["index"]): r["response"] for r in rows if r["source"] == "student"}


def heldout_passed(out: Path) -> set[str]:
    rows = (json.loads(line) for line in (out / "eval_after.verdicts.jsonl").read_text().splitlines() if line.strip())
    return {r["task_id"] for r in rows if r["status"] == "passed"}


def compare_with(rows: list[dict], base_arm: str) -> None:
    """Per arm, against base_arm of the same seed: identical round-0 student candidates, held-out flips."""
    base = {r["seed"]: r for r in rows if r["arm"] == base_arm}
    for r in rows:
        ref = base.get(r["seed"])
        if ref is None or r is ref:
            continue
        mine, theirs = student_candidates(Path(r["output_dir"])), student_candidates(Path(ref["output_dir"]))
        r[f"candidates_equal_to_{base_arm}"] = [sum(mine.get(k) == v for k, v in theirs.items()), len(theirs)]
        passed, ref_passed = heldout_passed(Path(r["output_dir"])), heldout_passed(Path(ref["output_dir"]))
        r[f"heldout_flips_vs_{base_arm}"] = {"gained": len(passed - ref_passed), "lost": len(ref_passed - passed)}


def table(rows: list[dict], agreements: dict, budget: str) -> str:
    lines = [f"budget: {budget}", "", "| seed | arm | sampler precision | int8 kernel | held-out pass@1 before -> after | "
             "round-0 student candidates = ct2-float32 | held-out flips vs ct2-float32 (+/-) | wall (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        eq = r.get("candidates_equal_to_ct2-float32")
        flips = r.get("heldout_flips_vs_ct2-float32")
        flips = f"+{flips['gained']}/-{flips['lost']}" if flips else "-"
        lines.append(f"| {r['seed']} | {r['arm']} | {(r['student_sampler'] or {}).get('precision')} | {r['int8_kernel']} | "
                     f"{r['before']:.3f} -> {r['after']:.3f} | {f'{eq[0]}/{eq[1]}' if eq else '-'} | "
                     f"{flips} | {r['wall_s']:.0f} |")
    lines += ["", "| greedy agreement with float32 transformers | int8 kernel | " + " | ".join(f"ct2 {q}" for q in AGREEMENT_BUILDS) + " |",
              "|---|---|" + "---|" * len(AGREEMENT_BUILDS)]
    for label, a in agreements.items():
        lines.append(f"| {label} | {a['int8_kernel']} | " + " | ".join(f"{a['builds'][q]['agree']}/{a['prompts']}" for q in AGREEMENT_BUILDS) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", nargs="+", default=["ct2-int8", "ct2-float32", "transformers"], choices=sorted(ARMS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[42])
    ap.add_argument("--repeat", nargs="*", default=[], choices=sorted(ARMS), help="arms trained twice per seed (run-to-run spread)")
    ap.add_argument("--prompts", type=int, default=32, help="held-out prompts of the agreement measurement")
    ap.add_argument("--max_new_tokens", type=int, default=64, help="of the agreement measurement (training's default)")
    ap.add_argument("--train_args", default="", help="extra rrtf.train flags: a reduced budget (recorded); default none, the full default")
    ap.add_argument("--work_dir", default="outputs/sampler-precision")
    ap.add_argument("--out", default=str(RESULTS / "sampler_precision.json"))
    ap.add_argument("--agreement_of", default=None, help=argparse.SUPPRESS)  # the subprocess of agreement_in_process
    args = ap.parse_args(argv)
    if args.agreement_of:
        print(json.dumps(agreement(args.agreement_of, args.prompts, args.max_new_tokens)))
        return {}

    from quantize.report import machine
    from rrtf.tiny import ensure_tiny_model
    from sandbox.base.store import write_state

    work = Path(args.work_dir)
    start_machine = machine()
    extra = args.train_args.split()
    rows = []
    for seed in args.seeds:
        for name in [*args.arms, *(a + REPEAT for a in args.repeat)]:
            print(f"seed {seed}, arm {name} ...", flush=True)
            rows.append(run_arm(name, seed, work, extra))
            print(f"  {rows[-1]['before']:.3f} -> {rows[-1]['after']:.3f} in {rows[-1]['wall_s']:.0f} s", flush=True)
    if "ct2-float32" in args.arms:
        compare_with(rows, "ct2-float32")
    base = str(ensure_tiny_model("warm"))
    trained = next((r for r in rows if r["arm"] == "transformers"), rows[0])  # the default's own trained model, where run
    agreements = {}
    for label, model in (("base (what round 0 samples)", base), (f"trained ({trained['arm']}, seed {trained['seed']})",
                                                                   trained["output_dir"] + "/model")):
        agreements[f"{label}, this CPU"] = agreement_in_process(model, {}, args)
        agreements[f"{label}, ONEDNN_MAX_CPU_ISA=AVX2"] = agreement_in_process(model, NO_VNNI, args)
    budget = "full default (configs/default.yaml)" + (f" with {args.train_args}" if args.train_args else "")
    result = {"benchmark": "sampler_precision", "budget": budget, "machine": start_machine, "machine_after": machine(),
              "arms": {n: {"backend": ARMS[n][0], "env": ARMS[n][1]} for n in args.arms}, "rows": rows, "agreement": agreements,
              "agreement_setup": {"prompts": f"first {args.prompts} of tiny-tasks:heldout", "max_new_tokens": args.max_new_tokens,
                                  "reference": "transformers backend, float32"}}
    text = table(rows, agreements, budget)
    result["table"] = text
    print(text)
    write_state(Path(args.out), result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
