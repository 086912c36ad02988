"""HumanEvalPack (Muennighoff et al. 2023, OctoPack; MIT): HumanEval's 164 problems in six languages,
with the three tasks of the paper, prompted as bigcode-evaluation-harness's `instruct` prompt does:

- synthesize: continue the documented prompt (HumanEvalSynthesize, `continue` prompt).
- fix: the buggy function with its docstring, "Fix bugs in f.", continue the documented prompt
  (HumanEvalFixDocs). fix-tests: the buggy function without docstring followed by its tests, continue
  the bare declaration (HumanEvalFixTests, the paper's HumanEvalFix).
- explain: describe the declaration + canonical body within the docstring's length, then write the
  function from the description alone, continuing the declaration (HumanEvalExplain; rrtf.prompts
  strategy "explain").

Rust prompts start with `fn main(){}` as the harness's do. A language the sandbox does not know
(e.g. `rust` before its toolchain module is installed) makes the dataset unavailable, not an error
of the rest of an evaluation.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from rrtf.datasets import DatasetSpec, DatasetUnavailable, register
from rrtf.paths import DATA_DIR
from rrtf.prompts.octopack import describe_instruction, fix_instruction
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl
from sandbox.registry import languages, problem_from_record

LANGUAGES = tuple(lang.name for lang in languages() if lang.humanevalpack)  # the sandbox's language records say which
TASKS = {"synthesize": "continue", "fix": "instruct-continue", "fix-tests": "instruct-continue", "explain": "explain"}
RUST_MAIN = "fn main(){}\n"


@functools.cache
def _records(language: str) -> tuple[tuple[str, dict], ...]:
    from sandbox.languages import NAMES

    if language not in NAMES:
        raise DatasetUnavailable(f"humanevalpack-{language}: the sandbox has no {language!r} language here "
                                 f"(known: {', '.join(NAMES)}); install the sandbox module and toolchain for it")
    path = DATA_DIR / "humanevalpack" / f"humanevalpack_{language}.jsonl"
    return tuple(iter_jsonl(path))


def declaration(rec: dict, language: str) -> str:
    """The function's bare declaration, what fix-tests and explain continue (the harness's prompt base)."""
    return RUST_MAIN + rec["declaration"] if language == "rust" else rec["declaration"]


def task_record(rec: dict, language: str, task: str) -> dict:
    """The record as the task asks it: `prompt` is the instruction, `code_prefix` what the answer continues."""
    if task == "synthesize":
        return rec
    if task == "fix":
        base = rec["prompt"]
        instruction = f"{base}{rec['buggy_solution']}\n{fix_instruction(rec['entry_point'])}"
    elif task == "fix-tests":
        base = declaration(rec, language)
        instruction = f"{base}{rec['buggy_solution']}\n{rec['test']}\n{fix_instruction(rec['entry_point'])}"
    else:  # explain
        base = declaration(rec, language)
        instruction = f"{base}{rec['canonical_solution']}\n{describe_instruction(rec['docstring'])}"
    out = {**rec, "prompt": instruction, "code_prefix": base}
    if language == "go":
        # The test package may use what the documented prompt imported (the harness's combined file had it).
        out["test_setup"] = rec.get("test_setup", "") + rec.get("import", "")
    return out


def load_humanevalpack(language: str = "python", task: str = "synthesize") -> list[Problem]:
    source = f"humanevalpack-{language}"
    return [problem_from_record({**task_record(rec, language, task), "source": source, "split": "test"}, where=where)
            for where, rec in _records(language)]


def _loader(language: str) -> Callable[[str], list[Problem]]:
    return lambda split: load_humanevalpack(language)


def _task_loader(language: str) -> Callable[[str, str], list[Problem]]:
    return lambda split, task: load_humanevalpack(language, task)


for _lang in LANGUAGES:
    register(DatasetSpec(f"humanevalpack-{_lang}", _loader(_lang), ("test",), "test", dict(TASKS), load_task=_task_loader(_lang),
                         description=f"HumanEvalPack {_lang}: HumanEval's 164 problems with {_lang} tests; synthesize, fix "
                                     "(with docstring), fix-tests (with the tests), explain (describe, then synthesize)"))
