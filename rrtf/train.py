"""`python -m rrtf.train`: evaluate, then R rounds of sample -> judge -> rank -> train, then evaluate.

`--method NAME` chooses what a round does (rrtf.methods, docs/methods.md): rrtf (the default), rrtf_gap,
sft, rft, dpo, grpo, multi_round; everything else here -- resume, evaluation, report -- is the same for all.

With no arguments it runs the embedded default (the tiny StarCoder on the procedural tiny-tasks) and
writes to outputs/rrtf-default (another configuration gets a directory named by its identity):

    run_identity.json, state.json        what the run is, and which rounds are done
    student_sampler.json                 what sampled the student: its backend's identity, precision included
    eval_before.json / eval_after.json   held-out results (+ .samples.jsonl, resumable)
    round{r}/candidates*.jsonl           sampled candidates (one file per process)
    round{r}/verdicts.process{k}.jsonl      sandbox verdicts, keyed by the hash of the judged code
    round{r}/ranked.jsonl                RankedGroup records: the training data of the round
    round{r}/checkpoints/                Trainer checkpoints
    round{r}/model/                      the student after the round (as its tuning method saves it)
    model/                               the final model or adapter
    metrics.json, report.md (+ PNGs), runs/ (TensorBoard)

Every stage resumes: sampling and judging skip finished prompts, finished rounds and evaluations are
always skipped, and `--resume_from_checkpoint` (true for the newest valid one, or a path) makes an
interrupted round's training continue from its checkpoint instead of starting the round afresh.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import rrtf.cli  # noqa: F401  (first: it drops known third-party import noise, rrtf.cli.KNOWN_NOISE)
from rrtf.config import RRTFConfig, parse_train_args
from rrtf.records import RankedGroup
from rrtf.rollout import AskedProblem
from sandbox.base.records import Problem
from sandbox.base.store import read_records, read_state, write_atomic, write_jsonl, write_state

logger = logging.getLogger("rrtf.train")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from rrtf.cli import check_output_path

    config = parse_train_args(argv)
    check_output_path(config.output_dir, "--output_dir", directory=True)  # before any work: one line naming it
    return run(config)


# --------------------------------------------------------------------------------------------
# Data, model, backends
# --------------------------------------------------------------------------------------------


def load_training_problems(config: RRTFConfig) -> tuple[list[AskedProblem], dict[str, list[Problem]]]:
    """Training problems as their dataset asks them (rrtf.rollout.ask: the strategy of the dataset's task,
    as evaluation asks it) and the evaluation sets {name: problems} (rrtf.datasets)."""
    from rrtf.datasets import is_file_name, limit_problems, load_dataset, parse_name
    from rrtf.rollout import ask

    spec = None if is_file_name(config.dataset) else parse_name(config.dataset)[0]
    split = config.dataset_split or (spec and (spec.train_split or spec.default_split)) or None
    problems = load_dataset(config.dataset, split=split).problems
    if config.max_problems is not None:
        problems = problems[: config.max_problems]
    if not problems:
        raise ValueError(f"dataset {config.dataset!r} (split {split!r}) has no problems to train on")
    train = ask(config.dataset, problems)
    if train[0].asks.two_step:
        raise ValueError(f"dataset {config.dataset!r} asks in two steps ({train[0].strategy}: a description, then code from it); "
                         "RRTF ranks answers to one prompt: train on another task of it (e.g. :synthesize or :fix)")
    eval_name = config.eval_dataset or (f"{spec.name}:{spec.eval_split}" if spec and spec.eval_split else None)
    names = list(dict.fromkeys(([eval_name] if eval_name else []) + list(config.eval_datasets)))
    for name in names:  # every name checked before anything is loaded: a typo fails at once
        if not is_file_name(name):
            parse_name(name)
    evals: dict[str, list[Problem]] = {}
    for name in names:
        ds = load_dataset(name)
        evals[name] = limit_problems(ds.problems, config.eval_max_problems, ds.spec)
    return train, evals


def base_model_path(config: RRTFConfig) -> str:
    if config.model_name_or_path:
        from rrtf.modeling import check_model_dir

        return check_model_dir(config.model_name_or_path)
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("warm"))


def student_backend_class(config: RRTFConfig):
    from rrtf.backends import BACKENDS

    kind = config.backend.split(":")[0]
    try:
        cls = BACKENDS.get(kind)
    except ValueError as exc:
        raise ValueError(f"--backend {config.backend}: {exc}") from None
    if not cls.can_sample_student:
        students = [name for name, c in BACKENDS.items() if c.can_sample_student]
        raise ValueError(f"--backend {config.backend}: backend {kind!r} cannot sample the student; use one of {', '.join(students)}")
    try:
        cls.check_usable()  # e.g. vllm without vLLM or a GPU: one line, before any model or data loads
    except ValueError as exc:
        raise ValueError(f"--backend {config.backend}: {exc}") from None
    return cls


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


class Run:
    def __init__(self, config: RRTFConfig):
        from accelerate import PartialState

        self.config = config
        # TrainingArguments set up the distributed state (DDP/FSDP/DeepSpeed, from the launcher).
        self.state = config.distributed_state or PartialState()
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = not config.disable_tqdm and self.state.is_local_main_process

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def check_identity(self) -> None:
        """Refuse to mix a run's outputs with those of a different configuration."""
        identity = self.config.run_identity()
        path = self.path("run_identity.json")
        old = read_state(path)
        if isinstance(old, dict):  # runs made before `method` and `rank_weighting` existed read as what they were
            old = {"method": "rrtf", **old}
            if "rank_weighted" in old:
                old["rank_weighting"] = "score_gap" if old.pop("rank_weighted") else "paper"
        if old is not None:
            changed, details = _differences(old, identity)
            if changed:
                suggestion = dataclasses.replace(self.config, output_dir=None).default_output_dir()
                raise ValueError(f"{self.out} holds a run with different {', '.join(changed)} ({details}); "
                                 f"choose another --output_dir (this run's own default is {suggestion}) or delete {self.out}")
        elif self.state.is_main_process:
            write_state(path, identity)
        self.state.wait_for_everyone()

    def evaluate(self, name: str, model, tokenizer, problems: dict[str, list[Problem]], sandbox) -> dict[str, Any]:
        """Greedy pass@1 on the main process (cached in NAME.json); other processes wait."""
        path = self.path(f"{name}.json")
        result: dict[str, Any] = {}
        if self.state.is_main_process and problems:
            result = read_state(path) or {}
            if set(result.get("datasets", {})) != set(problems):  # another set of evaluation datasets: evaluate (resumes per sample)
                result = {}
            if not result:
                from rrtf.backends import build_backend
                from rrtf.evaluate import EvalConfig, evaluate

                cfg = EvalConfig(datasets=list(problems), num_samples=0, greedy=True, max_new_tokens=self.config.max_new_tokens,
                                 prompt_template=self.config.prompt_template, output_file=None,
                                 samples_file=str(self.path(f"{name}.samples.jsonl")), seed=self.config.seed, tag=name)
                backend = build_backend("transformers", model=model, tokenizer=tokenizer)
                res = evaluate(problems, backend, sandbox, cfg)  # its results' config names the backend and its precision
                print(res.table())
                from rrtf.evaluate.summary import markdown

                write_atomic(self.path(f"{name}.md"), (markdown(res) + "\n").encode())
                summary = {k: dataclasses.asdict(v) for k, v in res.datasets.items()}
                first = next(iter(res.datasets.values()))
                result = {"pass@1": first.greedy_pass_at_1, "dataset": first.name, "datasets": summary, "backend": backend.identity()}
                write_state(path, result)
        self.state.wait_for_everyone()
        return result

    def student_backend(self, r: int, model, tokenizer, method, base: str):
        """The backend that samples the student this round: the in-memory model, or -- for a served
        backend -- its merged checkpoint (the base model itself before any training)."""
        cls = student_backend_class(self.config)
        arg = self.config.backend.partition(":")[2]
        if cls.uses_in_memory_model:
            return self.record_sampler(
                cls.for_student(model=method.generation_model(getattr(model, "module", model)), tokenizer=tokenizer, arg=arg))
        from rrtf.checkpoints import export_student

        ckpt = base if r == 0 and not self.done_rounds() and not method.is_adapter else None  # untrained: the base itself
        if ckpt is None:
            ckpt = str(self.path(f"round{r}", "student"))
            if self.state.is_main_process:
                export_student(model, tokenizer, method, Path(ckpt))
            self.state.wait_for_everyone()
        return self.record_sampler(cls.for_student(checkpoint_dir=ckpt, tokenizer=tokenizer, arg=arg))

    def record_sampler(self, backend):
        """Record what samples the student (student_sampler.json: its backend's identity, precision included,
        less the model, which changes each round) and refuse a sampler that would sample differently from the
        one that sampled this run's earlier rounds: the precision is part of the method (docs/quantize.md)."""
        sampler = {k: v for k, v in backend.identity().items() if k != "model"}
        path = self.path("student_sampler.json")
        old = read_state(path)
        if old is not None and old != sampler:
            backend.close()
            raise ValueError(f"{self.out} sampled its student with another sampler ({_differences(old, sampler)[1]}); "
                             f"choose another --output_dir or delete {self.out}")
        if old is None and self.state.is_main_process:
            write_state(path, sampler)
        return backend

    def sample_and_rank(self, r: int, student, problems: list[AskedProblem], sandbox, **sampler_overrides
                        ) -> tuple[list[RankedGroup], dict]:
        from rrtf.ranker import RankerConfig, rank_groups
        from rrtf.records import check_verdict_files
        from rrtf.rollout.engine import engine_of
        from rrtf.rollout.judge import align as align_verdicts
        from rrtf.rollout.judge import judge, read_verdicts
        from rrtf.sampler import SamplerConfig, read_candidates, sample

        rd = self.path(f"round{r}")
        ranked_path, stats_path = rd / "ranked.jsonl", rd / "rank_stats.json"
        stats = read_state(stats_path)
        if stats is None or not ranked_path.exists():
            check_verdict_files(sorted(rd.glob("verdicts.process*.jsonl")))  # before sampling: FILE:LINE and field
            cfg = SamplerConfig.from_config(self.config, progress=self.progress, **sampler_overrides)
            backend = student()
            try:
                mine = sample(problems, backend, cfg.teachers, cfg, rd / "candidates.jsonl", round=r,
                              process_index=self.state.process_index, num_processes=self.state.num_processes, engine=engine_of(sandbox))
            finally:
                backend.close()  # sampling is over: a served student gives the accelerator back to training (vllm's sleep=1)
            judge(problems, mine, sandbox, rd / f"verdicts.process{self.state.process_index}.jsonl", progress=self.progress)
            self.state.wait_for_everyone()
            if self.state.is_main_process:
                candidates = read_candidates(rd / "candidates.jsonl", round=r)
                verdicts = align_verdicts(candidates, read_verdicts(sorted(rd.glob("verdicts.process*.jsonl"))))
                groups, rank_stats = rank_groups([a.problem for a in problems], candidates, verdicts, RankerConfig.from_config(self.config))
                print(rank_stats.summary())
                write_jsonl(ranked_path, [g.to_record() for g in groups])
                write_state(stats_path, rank_stats.to_record())  # written last: its presence means "ranked"
        self.state.wait_for_everyone()
        return read_records(ranked_path, RankedGroup.from_record, allow_empty=True), read_state(stats_path) or {}

    def train_round(self, r: int, model, tokenizer, groups: list[RankedGroup], method, make_trainer=None):
        """Train one round (resuming from its newest valid checkpoint when asked) and save its model.
        make_trainer(args) -> a Trainer, or None for RRTFTrainer on `groups` (rrtf.methods: DPO, GRPO)."""
        from rrtf.checkpoints import last_valid_checkpoint
        from rrtf.trainer import RRTFTrainer

        rd = self.path(f"round{r}")
        # TensorBoard logs of every round go to one place (transformers 5 reads this variable).
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(self.path("runs")))
        args = dataclasses.replace(self.config, output_dir=str(rd / "checkpoints"))
        args.tuning_options = self.config.tuning_options
        trainer = make_trainer(args) if make_trainer is not None else None
        if trainer is None:
            trainer = RRTFTrainer(model=model, args=args, train_dataset=[g.to_record() for g in groups], processing_class=tokenizer,
                                  tuning_method=method)
        resume = self.config.resume_from_checkpoint
        if isinstance(resume, str) and resume.lower() in ("true", "latest", "last"):
            resume = last_valid_checkpoint(rd / "checkpoints") if self.state.is_main_process else None
            resume = _broadcast(resume)
            if resume:
                logger.warning("round %d: resuming training from %s", r, resume)
        elif isinstance(resume, str) and not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no such checkpoint directory")
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        if self.state.is_main_process:
            method.save(trainer.model, rd / "model")
            tokenizer.save_pretrained(str(rd / "model"))
        self.state.wait_for_everyone()
        return trainer.model, trainer.state.log_history

    def done_rounds(self) -> int:
        done = (read_state(self.path("state.json")) or {}).get("rounds_done", 0)
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            logger.warning("%s: rounds_done %r is not a round count; treated as 0 (finished stages are skipped by their files)",
                           self.path("state.json"), done)
            return 0
        return done

    def mark_round_done(self, r: int, log_history: list[dict]) -> None:
        if self.state.is_main_process:
            write_state(self.path(f"round{r}", "log_history.json"), log_history)
            write_state(self.path("state.json"), {"rounds_done": r + 1})
        self.state.wait_for_everyone()


def _differences(old: dict, new: dict) -> tuple[list[str], str]:
    """The keys whose values differ, and "key: old -> new; ..." naming them."""
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return changed, "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)


def _broadcast(value):
    from accelerate.utils import broadcast_object_list

    box = [value]
    try:
        broadcast_object_list(box)
    except (RuntimeError, ValueError):  # a single process: nothing to broadcast
        pass
    return box[0]


def run(config: RRTFConfig) -> dict[str, Any]:
    import torch
    from accelerate.utils import gather_object

    from rrtf.checkpoints import weights_fingerprint
    from rrtf.methods import build_method
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.report import write_report
    from rrtf.rollout.engine import engine_from
    from rrtf.sampler import resolve_teachers
    from rrtf.tuning import build_tuning_method

    start = time.time()
    training = build_method(config)  # what a round does: RRTF, SFT, RFT, DPO, GRPO, ... (rrtf.methods)
    method = build_tuning_method(config)
    resolve_teachers(config.teachers)  # a teacher this machine cannot run (vllm without a GPU) is one line now, not after loading
    if not student_backend_class(config).uses_in_memory_model:
        method.check_mergeable()  # a served student needs merged weights: say so before any long work
    base = base_model_path(config)
    runner = Run(config)
    runner.check_identity()
    train_problems, eval_problems = load_training_problems(config)
    done = runner.done_rounds()
    tokenizer = load_tokenizer(config.tokenizer_name_or_path or base)
    if done:
        model = method.load(base, runner.path(f"round{done - 1}", "model"))
    else:
        model = method.apply(load_model(base, dtype=torch.float32), config)  # the Trainer casts for bf16 itself
    if runner.state.is_main_process:
        print(f"rrtf: {len(train_problems)} training problems from {config.dataset}, "
              f"eval on {', '.join(f'{k} ({len(v)})' for k, v in eval_problems.items()) or 'nothing'}; "
              f"{runner.state.num_processes} process(es); output in {runner.out}"
              + (f"; rounds done: {done}" if done else ""))

    with engine_from(config) as engine, engine.sandbox(config.sandbox_config()) as sandbox:  # local, or --rollout ray
        before_model = method.generation_model(model)
        if (done or not method.identity_at_init) and read_state(runner.path("eval_before.json")) is None:
            # "before" is the base model: not the resumed one, nor one the method changed before training
            before_model = load_model(base, dtype=torch.float32).to(next(model.parameters()).device)
        before = runner.evaluate("eval_before", before_model, tokenizer, eval_problems, sandbox)
        del before_model
        log_history: list[dict] = []
        verdicts: dict[str, dict[str, int]] = {}
        for r in range(config.rounds):
            if r < done:  # finished work is always skipped
                stats = read_state(runner.path(f"round{r}", "rank_stats.json")) or {}
                log_history += read_state(runner.path(f"round{r}", "log_history.json"), expect=list) or []
            else:
                student = lambda r=r, model=model: runner.student_backend(r, model, tokenizer, method, base)
                model, history, stats = training.run_round(runner, r, model, tokenizer, train_problems, sandbox, student, method)
                log_history += history
                runner.mark_round_done(r, history)
            for source, counts in stats.get("statuses", {}).items():
                verdicts[f"round {r} {source}"] = counts
        after = runner.evaluate("eval_after", method.generation_model(model), tokenizer, eval_problems, sandbox)

    prints = gather_object([weights_fingerprint(model)])
    metrics = {
        "model": base, "dataset": config.dataset, "train_problems": len(train_problems),
        "eval_dataset": next(iter(eval_problems), None), "eval_problems": sum(map(len, eval_problems.values())),
        "method": config.method, "rank_loss": config.rank_loss, "rounds": config.rounds, "tuning_method": config.tuning_method, "backend": config.backend,
        "student_sampler": read_state(runner.path("student_sampler.json")),  # None when the method samples itself (grpo)
        "eval_before": before, "eval_after": after, "verdicts": verdicts, "process_fingerprints": prints,
        "world_size": runner.state.num_processes, "wall_time_s": time.time() - start,
    }
    if runner.state.is_main_process:
        method.save(model, runner.path("model"))
        tokenizer.save_pretrained(str(runner.path("model")))
        write_state(runner.path("metrics.json"), metrics)
        if before and after:
            write_report(runner.out, metrics, log_history)
            print(f"held-out pass@1: before {before['pass@1']:.3f} -> after {after['pass@1']:.3f}  ({runner.out / 'report.md'})")
        if len(set(prints)) > 1:
            logger.error("processes ended with different weights: %s", prints)
    runner.state.wait_for_everyone()
    # Tear the process group down ourselves: left to interpreter exit, gloo sometimes aborts a process
    # ("terminate called without an active exception") and the launcher reports a failed run.
    runner.state.destroy_process_group()
    return metrics


if __name__ == "__main__":
    from rrtf.cli import run_cli

    sys.exit(run_cli(main, prog="python -m rrtf.train"))
