"""The CLI of rrtf.compare_methods (see its package docstring)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import rrtf.cli  # noqa: F401  (first: it drops known third-party import noise, rrtf.cli.KNOWN_NOISE)
from rrtf.compare_methods.config import CompareMethodsConfig

IDENTITY_FILE = "compare_identity.json"


def check_identity(cfg: CompareMethodsConfig, out: Path) -> None:
    """Refuse to mix runs of another budget into this output directory."""
    from sandbox.base.store import read_state, write_state

    old, new = read_state(out / IDENTITY_FILE), cfg.identity()
    if old is not None and old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(f"{out} holds a comparison with different {', '.join(changed)}; choose another --output_dir or delete it")
    write_state(out / IDENTITY_FILE, new)


def run_unit(cfg: CompareMethodsConfig, out: Path, where: Path, condition: str, seed: int, method: str | None) -> dict:
    """One unit in its own process (its own memory and torch state); its result.json is the record."""
    from sandbox.base.store import read_state

    result = read_state(where / "result.json")
    if result is None:
        where.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads), "TOKENIZERS_PARALLELISM": "false"}
        which = ["--shared"] if method is None else ["--method", method]
        with (where / "log.txt").open("a") as log:
            proc = subprocess.run([sys.executable, "-m", "rrtf.compare_methods.unit", "--output_dir", str(out), "--condition", condition,
                                   "--seed", str(seed), *which], env=env, stdout=log, stderr=subprocess.STDOUT)
        result = read_state(where / "result.json")
        if proc.returncode != 0 or result is None:
            tail = (where / "log.txt").read_text()[-2000:]
            raise RuntimeError(f"{method or 'shared stage'} ({condition}, seed {seed}) failed (exit {proc.returncode}); "
                               f"log {where / 'log.txt'}:\n{tail}")
    return result


def ensure_paper_dataset(cfg: CompareMethodsConfig) -> None:
    """The paper's condition trains on `python -m data_evol`'s problems: made once if missing (rrtf runs the
    job as a command; it never imports data_evol)."""
    path = Path(cfg.paper_dataset)
    if path.exists():
        return
    print(f"{path} is missing: running python -m data_evol --output_dir {path.parent}")
    subprocess.run([sys.executable, "-m", "data_evol", "--output_dir", str(path.parent)], check=True)
    if not path.exists():
        raise FileNotFoundError(f"python -m data_evol did not write {path}; make it and pass --paper_dataset")


def context(cfg: CompareMethodsConfig) -> dict:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, {cfg.threads} thread(s) per run)"
    return {"config": asdict(cfg), "machine": platform.node(), "device": device, "torch": torch.__version__,
            "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm
    from trl import TrlParser

    from rrtf.compare_methods.report import write_report
    from rrtf.compare_methods.unit import CONFIG_FILE, run_dir, shared_dir
    from rrtf.methods import METHODS
    from sandbox.base.store import JsonlStore, write_state

    (cfg,) = TrlParser([CompareMethodsConfig]).parse_args_and_config(args=argv)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_identity(cfg, out)
    write_state(out / CONFIG_FILE, asdict(cfg))
    if "paper" in cfg.conditions:
        ensure_paper_dataset(cfg)
    # SFT on the best teacher answer has nothing to train on without a teacher: not run there (said in the table).
    units = [(c, s, m) for c in cfg.conditions for s in cfg.seeds for m in [None, *cfg.methods]
             if not (m is not None and c == "no_teacher" and METHODS.get(m).needs_teacher)]
    store = JsonlStore(out / "results.jsonl", key=lambda r: (r["condition"], r["method"], r["seed"]))
    try:
        with tqdm(units, desc="conditions x seeds x methods", disable=cfg.disable_tqdm) as bar:
            for condition, seed, method in bar:
                bar.set_postfix_str(f"{condition} seed {seed} {method or 'shared: sample + rank'}")
                if (condition, method or "base", seed) in store.done:
                    continue
                where = shared_dir(out, condition, seed) if method is None else run_dir(out, condition, method, seed)
                record = run_unit(cfg, out, where, condition, seed, method)
                store.write_many([record])
                if method is not None:
                    tqdm.write(f"{condition} seed {seed} {method}: pass@1 {record['pass_at_1_before']:.3f} -> {record['pass_at_1']:.3f}, "
                               f"{record['wall_time_s']:.0f} s")
        # Every run of these conditions and seeds is reported, also a method an earlier call added
        # (`--conditions no_teacher --methods rrtf_best`): its rows follow the requested methods'.
        asked = {(c, s) for c in cfg.conditions for s in cfg.seeds}
        records = [r for r in store.records if (r["condition"], r["seed"]) in asked]
    finally:
        store.close()
    summary = write_report(records, cfg, out, context(cfg))
    print((out / "results.md").read_text())
    return summary


if __name__ == "__main__":
    from rrtf.cli import run_cli

    sys.exit(run_cli(main, prog="python -m rrtf.compare_methods"))
