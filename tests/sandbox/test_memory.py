"""One memory bound in every compiled language: a candidate that allocates ~1.5 GB outside its runtime's
heap (node `Uint8Array`, the JVM's `Unsafe.allocateMemory`, Go slices, C++ `new`, Rust `Vec`) under the
default `memory_mb` (512) is a runtime error with reason `memory_limit`, while canonical HumanEvalPack
solutions still pass under the same limit (docs/sandbox.md, "Memory"). Each bomb then returns the right
answer: only the memory bound stands between it and a pass."""
from __future__ import annotations

import os
import shutil

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig, Status
from sandbox.compiled.run import PRLIMIT, data_limit
from sandbox.languages import go, js, rust

CHUNKS = 15  # x 100 MiB, each written so that it is really there

BOMBS = {
    "js": f"  globalThis.__keep = [];\n  for (let i = 0; i < {CHUNKS}; i++) {{ const b = new Uint8Array(100 << 20); "
          "b.fill(1); globalThis.__keep.push(b); }\n",
    "java": "        try {\n"
            "            java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField(\"theUnsafe\");\n"
            "            f.setAccessible(true);\n"
            "            sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);\n"
            f"            for (int i = 0; i < {CHUNKS}; i++) {{ long p = u.allocateMemory(100L << 20); "
            "u.setMemory(p, 100L << 20, (byte) 1); }\n"
            "        } catch (ReflectiveOperationException e) { throw new RuntimeException(e); }\n",
    "go": f"    var keep [][]byte\n    for i := 0; i < {CHUNKS}; i++ {{\n        b := make([]byte, 100<<20)\n"
          "        for j := range b {\n            b[j] = 1\n        }\n        keep = append(keep, b)\n    }\n"
          "    _ = keep\n",
    "cpp": f"    static vector<vector<char>> keep;\n    for (int i = 0; i < {CHUNKS}; i++) keep.emplace_back(100 << 20, 1);\n",
    "rust": f"    let mut keep: Vec<Vec<u8>> = Vec::new();\n    for _ in 0..{CHUNKS} {{ keep.push(vec![1u8; 100 << 20]); }}\n"
            "    for v in &keep { unsafe { std::ptr::read_volatile(&v[v.len() - 1]); } }\n",
}
TOOLS = {"js": js.NODE, "java": shutil.which("java") or "/nonexistent/java", "go": go.GO,
         "cpp": shutil.which("g++") or "/nonexistent/g++", "rust": rust.RUSTC}


def _lang(lang: str):
    return pytest.param(lang, marks=pytest.mark.skipif(not os.path.exists(TOOLS[lang]), reason=f"no {lang} toolchain"))


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(workers=2, timeout_s=30, program_timeout_s=60)  # generous time, default memory
    assert config.memory_mb == 512
    with Sandbox(config) as sb:
        yield sb


def test_the_data_limit_is_memory_mb_plus_the_runtime_allowance():
    assert data_limit(512) == 768 and data_limit(None) is None
    assert os.path.exists(PRLIMIT)


@pytest.mark.parametrize("lang", [_lang(lang) for lang in BOMBS])
def test_off_heap_memory_bomb_is_a_memory_limit_error(sandbox, lang):
    problem = load_humanevalpack(lang)[0]
    bomb = BOMBS[lang] + problem.canonical_solution.lstrip("\n")
    v = sandbox.check(problem, bomb)
    assert v.status == Status.RUNTIME_ERROR and v.reason == "memory_limit", v
    assert v.duration_s < 30, v


@pytest.mark.parametrize("lang", [_lang(lang) for lang in BOMBS])
def test_canonical_solutions_pass_under_the_default_memory_limit(sandbox, lang):
    problems = load_humanevalpack(lang)[:3]
    verdicts = sandbox.check_many([(p, p.canonical_solution, 0) for p in problems])
    assert all(v.status == Status.PASSED for v in verdicts), [(v.task_id, v.status, v.reason) for v in verdicts]


@pytest.mark.parametrize("run,reason", [
    ({"signal": "SIGABRT", "stderr": "memory allocation of 104857600 bytes failed\n"}, "memory_limit (crashed (SIGABRT))"),
    ({"rc": 2, "stderr": "fatal error: runtime: out of memory\n"}, "memory_limit (exit status 2)"),
    ({"signal": "SIGABRT", "stderr": "FATAL ERROR: ... JavaScript heap out of memory"}, "memory_limit (crashed (SIGABRT))"),
    ({"rc": 1, "stderr": "Exception in thread \"main\" java.lang.OutOfMemoryError: Unable to allocate"},
     "memory_limit (exit status 1)"),
    ({"signal": "SIGXCPU", "stderr": "out of memory"}, "timeout"),
    ({"timed_out": True, "signal": "SIGKILL", "stderr": "out of memory"}, "timeout"),
    ({"rc": 0, "stderr": "out of memory"}, ""),
    ({"signal": "SIGSEGV", "stderr": ""}, "crashed (SIGSEGV)"),
    ({"rc": 3, "stderr": "bad input"}, "exit status 3"),
])
def test_a_runtime_refused_memory_is_reported_as_the_memory_limit(run, reason):
    from sandbox.compiled.run import exit_reason
    from sandbox.verdicts import reason_for
    assert exit_reason(run) == reason
    assert (reason_for(reason) == "memory_limit") == reason.startswith("memory_limit")
