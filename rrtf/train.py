"""`python -m rrtf.train`: evaluate, then R rounds of sample -> judge -> rank -> train, then evaluate.

With no arguments it runs the embedded default (the tiny StarCoder on the procedural tiny-tasks) and
writes to outputs/rrtf-default:

    eval_before.json / eval_after.json   held-out results (+ .samples.jsonl, resumable)
    round{r}/candidates*.jsonl           sampled candidates (one file per rank)
    round{r}/verdicts.rank{k}.jsonl      sandbox verdicts
    round{r}/ranked.jsonl                RankedGroup records: the training data of the round
    round{r}/checkpoints/                Trainer checkpoints (resume with --resume_from_checkpoint)
    round{r}/model/                      the student after the round
    model/                               the final model or adapter
    metrics.json, report.md (+ PNGs), runs/ (TensorBoard)

Every stage resumes: sampling and judging skip finished prompts, finished rounds are skipped, and
`--resume_from_checkpoint` (true for the latest, or a path) continues the interrupted round's
training from its checkpoint instead of silently restarting it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from trl import TrlParser

from rrtf.config import RRTFConfig
from rrtf.evaluate import EvalConfig, evaluate
from rrtf.modeling import load_model, load_tokenizer
from rrtf.ranker import RankerConfig, judge, rank, read_verdicts
from rrtf.records import RankedGroup
from rrtf.report import write_report
from rrtf.sampler import SamplerConfig, read_candidates, sample
from rrtf.trainer import RRTFTrainer
from rrtf.tuning import build_tuning_method
from sandbox import Sandbox, SandboxConfig
from sandbox.store import read_records, write_jsonl
from sandbox.records import Problem

logger = logging.getLogger("rrtf.train")

# Fields whose change makes an existing output dir's samples, verdicts or checkpoints stale.
RUN_IDENTITY = ("model_name_or_path", "dataset", "dataset_split", "max_problems", "num_samples", "temperatures",
                "max_new_tokens", "teachers", "seed", "tuning_method", "rank_loss", "rank_weighted", "sft_weight")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (config,) = TrlParser([RRTFConfig]).parse_args_and_config(args=argv)
    return run(config)


# --------------------------------------------------------------------------------------------
# Data and model
# --------------------------------------------------------------------------------------------


def load_training_problems(config: RRTFConfig) -> tuple[list[Problem], dict[str, list[Problem]]]:
    """Training problems and the evaluation sets {name: problems} (rrtf.datasets)."""
    from rrtf.datasets import is_file_name, load_dataset, parse_name

    spec = None if is_file_name(config.dataset) else parse_name(config.dataset)[0]
    split = config.dataset_split or (spec and (spec.train_split or spec.default_split)) or None
    train = load_dataset(config.dataset, split=split).problems
    if config.max_problems is not None:
        train = train[: config.max_problems]
    if not train:
        raise ValueError(f"dataset {config.dataset!r} (split {split!r}) has no problems to train on")
    eval_name = config.eval_dataset or (f"{spec.name}:{spec.eval_split}" if spec and spec.eval_split else None)
    evals: dict[str, list[Problem]] = {}
    if eval_name:
        problems = load_dataset(eval_name).problems
        evals[eval_name] = problems[: config.eval_max_problems] if config.eval_max_problems else problems
    return train, evals


def base_model_path(config: RRTFConfig) -> str:
    if config.model_name_or_path:
        return config.model_name_or_path
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("warm"))


def load_student(config: RRTFConfig, path: str, adapter_dir: Path | None = None):
    """The base model with the tuning method applied; `adapter_dir` restores a finished round."""
    tokenizer = load_tokenizer(config.tokenizer_name_or_path or path)
    method = build_tuning_method(config.tuning_method)
    if adapter_dir is not None and not method.is_adapter:
        return load_model(adapter_dir, dtype=torch.float32), tokenizer
    model = load_model(path, dtype=torch.float32)  # the Trainer casts for bf16 autocast itself
    if adapter_dir is not None:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True), tokenizer
    return method.apply(model, config), tokenizer


def fingerprint(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().to(torch.float32).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


class Run:
    def __init__(self, config: RRTFConfig):
        self.config = config
        # TrainingArguments set up the distributed state (DDP/FSDP/DeepSpeed, from the launcher).
        self.state: PartialState = config.distributed_state or PartialState()
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = not config.disable_tqdm and self.state.is_local_main_process

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def check_identity(self) -> None:
        """Refuse to mix a run's outputs with those of a different configuration."""
        identity = {k: getattr(self.config, k) for k in RUN_IDENTITY}
        path = self.path("run_identity.json")
        if path.exists():
            old = json.loads(path.read_text())
            changed = [k for k in RUN_IDENTITY if old.get(k) != identity[k]]
            if changed:
                raise ValueError(
                    f"{self.out} holds a run with different {', '.join(changed)} "
                    f"({', '.join(f'{k}={old.get(k)!r}' for k in changed)}); use another --output_dir"
                )
        elif self.state.is_main_process:
            path.write_text(json.dumps(identity, indent=1))

    def evaluate(self, name: str, model, tokenizer, problems: dict[str, list[Problem]], sandbox) -> dict[str, Any]:
        """Greedy pass@1 on the main process (cached in NAME.json); other ranks wait."""
        path = self.path(f"{name}.json")
        result: dict[str, Any] = {}
        if self.state.is_main_process and problems:
            if path.exists():
                result = json.loads(path.read_text())
            else:
                from rrtf.backends import build_backend

                cfg = EvalConfig(datasets=list(problems), num_samples=0, greedy=True, max_new_tokens=self.config.max_new_tokens,
                                 prompt_template=self.config.prompt_template,
                                 output_file=None, samples_file=str(self.path(f"{name}.samples.jsonl")), seed=self.config.seed)
                backend = build_backend("transformers", model=model, tokenizer=tokenizer)
                res = evaluate(problems, backend, sandbox, cfg)
                print(res.table())
                summary = {k: dataclasses.asdict(v) for k, v in res.datasets.items()}
                first = next(iter(res.datasets.values()))
                result = {"pass@1": first.greedy_pass_at_1, "dataset": first.name, "datasets": summary}
                path.write_text(json.dumps(result, indent=1))
        self.state.wait_for_everyone()
        return result

    def sample_and_rank(self, r: int, model, tokenizer, problems: list[Problem], sandbox) -> tuple[list[RankedGroup], dict]:
        from rrtf.backends import build_backend

        rd = self.path(f"round{r}")
        ranked_path = rd / "ranked.jsonl"
        stats_path = rd / "rank_stats.json"
        if not (ranked_path.exists() and stats_path.exists()):
            cfg = SamplerConfig.from_config(self.config, progress=self.progress)
            student = build_backend("transformers", model=model, tokenizer=tokenizer)
            mine = sample(problems, student, cfg.teachers, cfg, rd / "candidates.jsonl", round=r,
                          rank=self.state.process_index, world_size=self.state.num_processes)
            judge(problems, mine, sandbox, rd / f"verdicts.rank{self.state.process_index}.jsonl", progress=self.progress)
            self.state.wait_for_everyone()
            if self.state.is_main_process:
                candidates = read_candidates(rd / "candidates.jsonl", round=r)
                verdicts = read_verdicts(sorted(rd.glob("verdicts.rank*.jsonl")), round=r)
                groups, stats = rank(problems, candidates, verdicts, RankerConfig.from_config(self.config))
                print(stats.summary())
                write_jsonl(ranked_path, [g.to_record() for g in groups])
                stats_path.write_text(json.dumps(stats.to_record(), indent=1))
        self.state.wait_for_everyone()
        return read_records(ranked_path, RankedGroup.from_record), json.loads(stats_path.read_text())

    def train_round(self, r: int, model, tokenizer, groups: list[RankedGroup]):
        rd = self.path(f"round{r}")
        # TensorBoard logs of every round go to one place (transformers 5 reads this variable).
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(self.path("runs")))
        args = dataclasses.replace(self.config, output_dir=str(rd / "checkpoints"))
        trainer = RRTFTrainer(model=model, args=args, train_dataset=[g.to_record() for g in groups], processing_class=tokenizer)
        resume = self.config.resume_from_checkpoint
        if isinstance(resume, str) and resume.lower() in ("true", "latest", "last"):
            from transformers.trainer_utils import get_last_checkpoint

            resume = get_last_checkpoint(str(rd / "checkpoints")) if (rd / "checkpoints").is_dir() else None
            if resume:
                logger.warning("round %d: resuming training from %s", r, resume)
        elif isinstance(resume, str) and not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no such checkpoint directory")
        trainer.train(resume_from_checkpoint=resume or None)
        trainer.save_model(str(rd / "model"))
        if self.state.is_main_process:
            tokenizer.save_pretrained(str(rd / "model"))
        self.state.wait_for_everyone()
        return trainer.model, trainer.state.log_history

    def done_rounds(self) -> int:
        path = self.path("state.json")
        return json.loads(path.read_text())["rounds_done"] if path.exists() else 0

    def mark_round_done(self, r: int, log_history: list[dict]) -> None:
        if self.state.is_main_process:
            (self.path(f"round{r}") / "log_history.json").write_text(json.dumps(log_history))
            self.path("state.json").write_text(json.dumps({"rounds_done": r + 1}))
        self.state.wait_for_everyone()


def run(config: RRTFConfig) -> dict[str, Any]:
    start = time.time()
    runner = Run(config)
    runner.check_identity()
    train_problems, eval_problems = load_training_problems(config)
    base = base_model_path(config)
    done = runner.done_rounds() if config.resume_from_checkpoint else 0
    resume_dir = runner.path(f"round{done - 1}", "model") if done else None
    model, tokenizer = load_student(config, base, resume_dir)
    if runner.state.is_main_process:
        print(f"rrtf: {len(train_problems)} training problems from {config.dataset}, "
              f"eval on {', '.join(f'{k} ({len(v)})' for k, v in eval_problems.items()) or 'nothing'}; "
              f"{runner.state.num_processes} process(es)")

    workers = config.sandbox_workers
    with Sandbox(SandboxConfig(**({"workers": workers} if workers else {}))) as sandbox:
        before_model = model
        if done and not runner.path("eval_before.json").exists():
            before_model = load_student(config, base)[0]  # "before" is the base model, not the resumed one
        before = runner.evaluate("eval_before", before_model, tokenizer, eval_problems, sandbox)
        log_history: list[dict] = []
        verdicts: dict[str, dict[str, int]] = {}
        for r in range(config.rounds):
            groups, stats = runner.sample_and_rank(r, model, tokenizer, train_problems, sandbox)
            for source, counts in stats.get("statuses", {}).items():
                verdicts[f"round {r} {source}"] = counts
            if r < done:
                log_history += json.loads((runner.path(f"round{r}") / "log_history.json").read_text())
                continue
            if not groups:
                raise ValueError(f"round {r}: ranking kept no prompt to train on ({stats.get('dropped')}); see {runner.path(f'round{r}')}")
            model, history = runner.train_round(r, model, tokenizer, groups)
            log_history += history
            runner.mark_round_done(r, history)
        after = runner.evaluate("eval_after", model, tokenizer, eval_problems, sandbox)

    prints = gather_object([fingerprint(model)])
    metrics = {
        "model": base, "dataset": config.dataset, "train_problems": len(train_problems),
        "eval_dataset": next(iter(eval_problems), None), "eval_problems": sum(map(len, eval_problems.values())),
        "rank_loss": config.rank_loss, "rounds": config.rounds, "eval_before": before, "eval_after": after,
        "verdicts": verdicts, "rank_fingerprints": prints, "world_size": runner.state.num_processes,
        "wall_time_s": time.time() - start,
    }
    if runner.state.is_main_process:
        final = runner.path("model")
        unwrapped = getattr(model, "module", model)
        unwrapped.save_pretrained(str(final))
        tokenizer.save_pretrained(str(final))
        runner.path("metrics.json").write_text(json.dumps(metrics, indent=1))
        if before and after:
            write_report(runner.out, metrics, log_history)
            print(f"held-out pass@1: before {before['pass@1']:.3f} -> after {after['pass@1']:.3f}  "
                  f"({runner.out / 'report.md'})")
        if len(set(prints)) > 1:
            logger.error("ranks ended with different weights: %s", prints)
    runner.state.wait_for_everyone()
    # Tear the process group down ourselves: left to interpreter exit, gloo sometimes aborts a rank
    # ("terminate called without an active exception") and the launcher reports a failed run.
    runner.state.destroy_process_group()
    return metrics


if __name__ == "__main__":
    main()
