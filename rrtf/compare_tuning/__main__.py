"""The CLI of rrtf.compare_tuning (see its package docstring)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import rrtf.cli  # noqa: F401  (first: it drops known third-party import noise, rrtf.cli.KNOWN_NOISE)
from rrtf.compare_tuning.config import BASE, CompareConfig

IDENTITY_FILE = "compare_identity.json"


def check_identity(cfg: CompareConfig, out: Path) -> None:
    """Refuse to mix runs of another configuration into this output directory."""
    from sandbox.base.store import read_state, write_state

    old, new = read_state(out / IDENTITY_FILE), cfg.identity()
    if old is not None and old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(f"{out} holds a comparison with different {', '.join(changed)}; choose another --output_dir or delete it")
    write_state(out / IDENTITY_FILE, new)


def run_one(cfg: CompareConfig, out: Path, method: str, seed: int) -> dict:
    """One method x seed in its own process (its own peak memory); its result.json is the record."""
    from rrtf.compare_tuning.unit import run_dir
    from sandbox.base.store import read_state

    where = run_dir(out, method, seed)
    result = read_state(where / "result.json")
    if result is None:
        where.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads), "TOKENIZERS_PARALLELISM": "false"}
        with (where / "log.txt").open("w") as log:
            proc = subprocess.run([sys.executable, "-m", "rrtf.compare_tuning.unit", "--output_dir", str(out), "--method", method,
                                   "--seed", str(seed)], env=env, stdout=log, stderr=subprocess.STDOUT)
        result = read_state(where / "result.json")
        if proc.returncode != 0 or result is None:
            tail = (where / "log.txt").read_text()[-2000:]
            raise RuntimeError(f"{method} seed {seed} failed (exit {proc.returncode}); log {where / 'log.txt'}:\n{tail}")
    return result


def context(cfg: CompareConfig, data) -> dict:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, {cfg.threads} thread(s) per run)"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    groups = len(data.train)
    return {"description": f"{data.base} on {cfg.dataset}: {groups} ranked groups from the base model "
                           f"({'RRTF' if cfg.rank_loss else 'SFT'}), {cfg.max_steps} steps x {cfg.per_device_train_batch_size} groups, "
                           f"{cfg.lr_scheduler_type} schedule, learning rate {cfg.learning_rate} "
                           f"{'(' + ', '.join(cfg.learning_rates) + ')' if cfg.learning_rates else 'for every method'}; held-out: "
                           f"{sum(map(len, data.heldout.values()))} problems ({', '.join(data.heldout)}), greedy pass@1; seeds {cfg.seeds}. "
                           f"Device: {device}.",
            "config": asdict(cfg), "machine": platform.node(), "platform": platform.platform(), "device": device,
            "load_average_at_end": load, "torch": torch.__version__}


def main(argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm
    from trl import TrlParser

    from rrtf.compare_tuning.data import prepare
    from rrtf.compare_tuning.report import table, write_report
    from rrtf.compare_tuning.unit import CONFIG_FILE
    from sandbox.base.store import JsonlStore, write_state

    (cfg,) = TrlParser([CompareConfig]).parse_args_and_config(args=argv)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_identity(cfg, out)
    write_state(out / CONFIG_FILE, asdict(cfg))
    data = prepare(cfg, out)
    store = JsonlStore(out / "results.jsonl", key=lambda r: (r["method"], r["seed"]))
    try:
        units = [(m, s) for m in cfg.methods for s in (cfg.seeds[:1] if m == BASE else cfg.seeds)]  # nothing random in "base"
        for method, seed in tqdm(units, desc="methods x seeds", disable=cfg.disable_tqdm):
            if (method, seed) not in store.done:
                store.write_many([run_one(cfg, out, method, seed)])
        records = [r for r in store.records if (r["method"], r["seed"]) in set(units)]
    finally:
        store.close()
    summary = write_report(records, cfg.methods, out, context(cfg, data))
    print(table(summary["rows"]))
    print("\n".join(summary["findings"]))
    print(f"report: {out / 'report.md'}")
    if cfg.results_json:
        Path(cfg.results_json).parent.mkdir(parents=True, exist_ok=True)
        write_state(Path(cfg.results_json), summary)
    return summary


if __name__ == "__main__":
    from rrtf.cli import run_cli

    sys.exit(run_cli(main, prog="python -m rrtf.compare_tuning"))
