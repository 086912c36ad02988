"""The Go judge attacked and fed whole-file answers, for real (the `go` toolchain, the public API):
compiler directives that reach across packages never let a wrong answer pass, and a correct answer
written as a whole file (`package main`, its own imports, the function) passes."""
from __future__ import annotations

import dataclasses
import os

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig, Status
from sandbox.compiled import go_source
from sandbox.languages import go

pytestmark = pytest.mark.skipif(not os.path.exists(go.GO), reason=f"{go.GO} not installed")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2, timeout_s=5.0, program_timeout_s=20.0)) as sb:
        yield sb


@pytest.fixture(scope="module")
def problems():
    return load_humanevalpack("go")


def whole(problem):
    """The problem judged against a whole file (code_prefix "", as `python -m sandbox check` does for a
    `solution` and the instruct prompts for extracted code)."""
    return dataclasses.replace(problem, code_prefix="")


# A wrong HasCloseElements (Go/0: 7 cases) that binds the harness's keyed report emitter by name and
# reports every case passed before the test can see its answer.
LINKNAME = '''package main

import (
    "os"
    _ "unsafe"
)

//go:linkname emit main.rrtfEmit
var emit func(string)

func HasCloseElements(numbers []float64, threshold float64) bool {
    for i := 0; i < 64; i++ {
        emit(fmt.Sprintf("%d P", i))
    }
    emit("END")
    os.Exit(0)
    return false
}
'''


def _not_passed(verdicts):
    return all(not v.passed and v.passed_tests == 0 for v in verdicts)


def test_go_linkname_to_the_harness_does_not_pass(sandbox, problems):
    """Before: the ban searched for //go:linkname after stripping comments (a directive is a comment),
    so this passed 7/7."""
    forged = [LINKNAME,
              LINKNAME.replace('_ "unsafe"', '_ "\\x75nsafe"'),  # the path spelled with an escape
              LINKNAME.replace("//go:linkname", "/* a block comment first */\n//go:linkname")]
    verdicts = list(sandbox.check_many([(whole(problems[0]), c, i) for i, c in enumerate(forged)]))
    assert len(verdicts) == 3 and _not_passed(verdicts), [(v.status, v.reason) for v in verdicts]
    assert all(v.status == Status.COMPILE_ERROR and "//go:linkname is not allowed" in v.reason for v in verdicts), verdicts


@pytest.mark.parametrize("form,reason", [
    ("as written", 'import "unsafe" is not allowed'),
    ("escaped path", "is not allowed here"),
    ("import after a declaration", "syntax error"),  # Go 1.19: "non-declaration statement outside function body"
    ("no unsafe import", '//go:linkname only allowed in Go files that import "unsafe"'),
])
def test_go_linkname_needs_unsafe_which_the_one_import_list_refuses(sandbox, problems, monkeypatch, form, reason):
    """The second line, with the directive check off: the compiler takes //go:linkname only in a file
    importing "unsafe", and the candidate's file has one import list, written by the judge, without it
    -- whether the import is written plainly, escaped, or where the judge's header parser stops."""
    monkeypatch.setattr(go_source, "ALLOWED_DIRECTIVES", go_source.ALLOWED_DIRECTIVES | {"linkname"})
    attack = {"as written": LINKNAME,
              "escaped path": LINKNAME.replace('_ "unsafe"', '_ "\\x75nsafe"'),
              "import after a declaration": LINKNAME.replace('    _ "unsafe"\n)\n', ')\n\nvar x = 1\n\nimport _ "unsafe"\n'),
              "no unsafe import": LINKNAME.replace('    _ "unsafe"\n', "")}[form]
    (verdict,) = sandbox.check_many([(whole(problems[0]), attack, 0)])
    assert not verdict.passed and verdict.status == Status.COMPILE_ERROR and reason in verdict.reason, verdict


@pytest.mark.parametrize("directive", [
    '//go:cgo_import_dynamic libc_getpid getpid "libc.so.6"',  # a linker directive ordinary files may use
    "//go:embed cand.go",  # the go command reads files the candidate names
    "//line _cgo_gotypes.go:1",  # CVE-2023-39323: what let //go:cgo_* directives past the compiler
])
def test_go_directives_that_cross_the_boundary_are_refused(sandbox, problems, directive):
    """A correct Go/2 file carrying the directive: it built and passed before; now it is refused."""
    problem = problems[2]
    imports = 'import _ "embed"\n' if "embed" in directive else ""  # math: the judge adds it, as goimports would
    declaration = "var source string" if "embed" in directive else "var _ = 0"
    rest = problem.prompt.split(")\n", 1)[1]  # the documented declaration after the prompt's import block
    answer = f"package main\n\n{imports}\n{directive}\n{declaration}\n{rest}{problem.canonical_solution}"
    (verdict,) = sandbox.check_many([(whole(problem), answer, 0)])
    assert verdict.status == Status.COMPILE_ERROR and "not allowed" in verdict.reason, verdict


def test_go_whole_file_answers_pass(sandbox, problems):
    """Before: the judge added its own `import "math"` next to the answer's: "math redeclared"."""
    p2, p17, p20 = problems[2], problems[17], problems[20]
    body17 = p17.prompt + p17.canonical_solution
    body20 = p20.prompt + p20.canonical_solution
    samples = [
        # Go/2 as a file: package line + the prompt's imports + the canonical function
        (whole(p2), "package main\n\n" + p2.prompt + p2.canonical_solution, 0),
        # ... continuing the prompt's import block (what an instruct prompt keeps of a code prompt)
        (dataclasses.replace(p2, code_prefix='import (\n    "math"\n)\n\n'),
         'package main\n\nimport "math"\n\n' + p2.prompt.split(")\n", 1)[1] + p2.canonical_solution, 1),
        # with a main and its own testify test, as models write whole files
        (whole(p2), 'package main\n\nimport (\n    "fmt"\n    "math"\n    "testing"\n\n'
                    '    "github.com/stretchr/testify/assert"\n)\n\n' + p2.prompt.split(")\n", 1)[1]
         + p2.canonical_solution + "\nfunc main() {\n    fmt.Println(TruncateNumber(3.5))\n}\n\n"
         + "func TestTruncateNumber(t *testing.T) {\n    assert.Equal(t, 0.5, TruncateNumber(3.5))\n}\n", 2),
        # Go/17 and Go/20: imports no record has (strings; math and sort), one statement form and one group
        (whole(p17), 'package main\n\nimport "strings"\n' + body17, 3),
        (whole(p20), 'package main\n\nimport (\n\t"math"\n\t"sort"\n)\n' + body20, 4),
    ]
    verdicts = sorted(sandbox.check_many(samples), key=lambda v: v.sample_index)
    assert [v.status for v in verdicts] == [Status.PASSED] * len(samples), [(v.sample_index, v.reason) for v in verdicts]
    assert all(v.total_tests > 1 for v in verdicts)
    # ... and a wrong one as a whole file is still wrong
    buggy = "package main\n\n" + p2.prompt + p2.buggy_solution
    (verdict,) = sandbox.check_many([(whole(p2), buggy, 0)])
    assert verdict.status == Status.PARTIAL and verdict.passed_tests < verdict.total_tests, verdict


def test_go_allowed_directives_and_continuations_still_build(sandbox, problems):
    """The canonical continuation of the prompt and a code-generation hint (//go:noinline) still pass."""
    p2 = problems[2]
    hinted = p2.prompt.replace("func TruncateNumber", "//go:noinline\nfunc TruncateNumber")
    samples = [(p2, p2.canonical_solution, 0), (whole(p2), "package main\n\n" + hinted + p2.canonical_solution, 1)]
    verdicts = list(sandbox.check_many(samples))
    assert all(v.status == Status.PASSED for v in verdicts), [(v.status, v.reason) for v in verdicts]
