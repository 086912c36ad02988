"""Go: HumanEvalPack Go tests (testify's `assert`) rewritten into a program with per-case reports, and the
candidate's code in a program of its own.

A HumanEvalPack Go test is `func TestF(t *testing.T) { assert := assert.New(t); assert.Equal(...) ... }`
(testify, from Debian's golang-github-stretchr-testify-dev). It becomes a `main` package that calls
TestF with its own `t` (testify only needs `Errorf`), each top-level statement of the body holding an
`assert.` call wrapped as one reported case (a panic fails that case), and reports to fd 3, each
line tagged with SipHash-2-4 under a key that exists only as a local value in `main`.

Two programs (sandbox/compiled/go_pair.py): the candidate's code is its own package, `cand`, built with a
dispatcher `main` (the entry point pinned to the prompt's signature) into the candidate's program, which
answers calls of plain data on fd 3 as its own uid (sandbox/compiled/wire.py, codec codecs/wire*.go). The
test's program -- the rewritten test, the prompt's helpers, a stub with the entry point's signature --
holds the key (sent on the report socket) and no candidate code, so a candidate can neither name the
harness's symbols nor find the key in its memory; it is built once per problem and reused. A signature
the wire has no form for keeps the old one-process build (`cand` dot-imported by the test, the key
compiled in), labelled `+one-process` in the verdict; no HumanEvalPack Go problem needs it.

The test function is renamed (`rrtfTest`) so a whole file that brings its own `TestX` still builds.
Compiler directives that reach across packages (`//go:linkname` could bind a candidate variable to the
harness's report emitter in one process) are refused in the raw text (directives are comments), and so
is importing "unsafe", which the compiler requires for linkname (sandbox/compiled/go_source.py: the
candidate's file gets one import list, written by the judge): cheap, and still the only line in the
one-process fallback. cgo is off, so nothing of the candidate runs at build time. Built offline in GOPATH
mode against /usr/share/gocode, with a warm build cache (testify, its dependencies and the codec's
packages compiled once per machine, bound read-only: go uses a read-only cache as it is).
"""
from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

from sandbox.base.records import Problem, Verdict
from sandbox.compiled import go_pair, go_source
from sandbox.compiled.cache import BytesCache
from sandbox.compiled.clike import match_bracket, wrap_cases
from sandbox.compiled.go_build import ENV, GO, GOCODE, build_script, warm_cache, wire_path
from sandbox.compiled.run import PRLIMIT, Build, data_limit
from sandbox.compiled.run import judge as compiled_judge
from sandbox.compiled.toolchain import missing_tools, missing_verdict, refused_verdict
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError

PACKAGES = {GO: "golang-go", f"{GOCODE}/src/github.com/stretchr/testify/assert": "golang-github-stretchr-testify-dev"}
LANGUAGE = Language(
    name="go", display_name="Go", runs_in="isolated", task_id_prefixes=("go",), humanevalpack=True,
    debian_packages=(*PACKAGES.values(), "util-linux"), tools=(GO, "prlimit"),  # prlimit: the data limit
    selftest={"entry_point": "Add", "prompt": "\nfunc Add(x int, y int) int {\n",
              "canonical_solution": "    return x + y\n}\n", "buggy_solution": "    return x - y\n}\n",
              "test_setup": 'package main\n\nimport (\n    "testing"\n    "github.com/stretchr/testify/assert"\n)\n',
              "test": "func TestAdd(t *testing.T) {\n    assert := assert.New(t)\n    assert.Equal(5, Add(2, 3))\n"
                      "    assert.Equal(12, Add(7, 5))\n}\n"})
TEST_FN_RE = re.compile(r"func\s+(Test\w*)\s*\(\s*t\s+\*\s*testing\s*\.\s*T\s*\)\s*\{")
ASSERT_RE = re.compile(r"\bassert\s*\.\s*(?!New\b)\w+\s*\(")
IMPORT_RE = re.compile(r"import\s*(\([^)]*\)|\"[^\"]*\")", re.S)
STD_PACKAGES = ["math", "strings", "sort", "strconv", "fmt", "unicode", "bytes", "regexp", "math/rand", "crypto/md5",
                "encoding/hex", "math/big", "reflect", "time", "bufio", "errors", "container/heap"]
TEST_FN = "rrtfTest"
PROGRAM_NPROC = 64  # the Go runtime's threads
RUNTIME_RESERVE_MB = 768  # address space the Go runtime reserves at start (512 MB in all fails, measured)

# One process (the fallback): the key is compiled in, and a panic is the candidate's.
KEY_SOURCE = """package main

import "fmt"

func rrtfKey() (k [16]byte) {{
\tk = [16]byte{{ {key_bytes} }}
\treturn
}}

func rrtfCaseError(r interface{{}}) string {{
\tif _, ok := r.(rrtfFailNow); ok {{ return "" }}
\treturn rrtfClean(fmt.Sprint("panic: ", r))
}}
"""
# Two programs: the runner writes the key on the report socket first (send_key); the test's program holds
# no candidate code, so it is the same for every sample of a problem and is built once. A call that
# failed fails its case; if the candidate's program has ended, the test stops there (codecs/wire_calls.go).
SEPARATED_SOURCE = """package main

import (
\t"encoding/hex"
\t"fmt"
\t"rrtfwire"
\t"syscall"
)

func rrtfKey() (k [16]byte) {
\tline, b := []byte{}, make([]byte, 1)
\tfor len(line) <= 32 { // the whole line: a socket closed with unread bytes resets the runner's end
\t\tif n, err := syscall.Read(3, b); n != 1 || err != nil || b[0] == '\\n' { break }
\t\tline = append(line, b[0])
\t}
\thex.Decode(k[:], line)
\treturn
}

func rrtfCaseError(r interface{}) string {
\tswitch x := r.(type) {
\tcase rrtfFailNow:
\t\treturn ""
\tcase rrtfwire.CallFailed:
\t\treturn rrtfClean(string(x))
\t}
\treturn rrtfClean(fmt.Sprint("panic: ", r))
}
"""
HARNESS = r"""
type rrtfT struct{ failed bool; msg string }

func (t *rrtfT) Errorf(format string, args ...interface{}) {
	if !t.failed { t.failed, t.msg = true, fmt.Sprintf(format, args...) }
}
func (t *rrtfT) FailNow()                            { t.failed = true; panic(rrtfFailNow{}) }
func (t *rrtfT) Helper()                             {}
func (t *rrtfT) Fail()                               { t.failed = true }
func (t *rrtfT) Error(args ...interface{})           { t.Errorf("%s", fmt.Sprint(args...)) }
func (t *rrtfT) Fatal(args ...interface{})           { t.Error(args...); t.FailNow() }
func (t *rrtfT) Fatalf(f string, args ...interface{}) { t.Errorf(f, args...); t.FailNow() }
func (t *rrtfT) Log(args ...interface{})             {}
func (t *rrtfT) Logf(f string, args ...interface{})  {}

type rrtfFailNow struct{}

var rrtfEmit func(string)
var rrtfCurrent = &rrtfT{}

func rrtfClean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 { s = s[:300] }
	return s
}

func rrtfCase(i int, body func()) {
	rrtfCurrent.failed, rrtfCurrent.msg = false, ""
	errText := ""
	func() {
		defer func() {
			if r := recover(); r != nil { errText = rrtfCaseError(r) }
		}()
		body()
	}()
	if errText == "" && rrtfCurrent.failed { errText = "AssertionError: " + rrtfClean(rrtfCurrent.msg) }
	if errText == "" { rrtfEmit(fmt.Sprintf("%d P", i)) } else { rrtfEmit(fmt.Sprintf("%d F %s", i, errText)) }
}

func rrtfSip(k [16]byte, m []byte) uint64 { // SipHash-2-4 (sandbox/worker/siphash.py)
	k0, k1 := binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])
	v0, v1, v2, v3 := k0^0x736f6d6570736575, k1^0x646f72616e646f6d, k0^0x6c7967656e657261, k1^0x7465646279746573
	round := func() {
		v0 += v1; v1 = bits.RotateLeft64(v1, 13); v1 ^= v0; v0 = bits.RotateLeft64(v0, 32)
		v2 += v3; v3 = bits.RotateLeft64(v3, 16); v3 ^= v2
		v0 += v3; v3 = bits.RotateLeft64(v3, 21); v3 ^= v0
		v2 += v1; v1 = bits.RotateLeft64(v1, 17); v1 ^= v2; v2 = bits.RotateLeft64(v2, 32)
	}
	end := len(m) - len(m)%8
	for i := 0; i < end; i += 8 {
		w := binary.LittleEndian.Uint64(m[i:])
		v3 ^= w; round(); round(); v0 ^= w
	}
	b := uint64(len(m)&0xff) << 56
	for j := 0; j < len(m)%8; j++ { b |= uint64(m[end+j]) << (8 * uint(j)) }
	v3 ^= b; round(); round(); v0 ^= b; v2 ^= 0xff; round(); round(); round(); round()
	return v0 ^ v1 ^ v2 ^ v3
}

func main() {
	key := rrtfKey()
	out := os.NewFile(3, "report")
	rrtfEmit = func(msg string) {
		out.Write([]byte(fmt.Sprintf("%016x %s\n", rrtfSip(key, []byte(msg)), msg)))
	}
	defer func() {
		if r := recover(); r != nil { rrtfEmit("SETUP " + rrtfClean(fmt.Sprint("panic: ", r))) }
	}()
	%(test_fn)s(rrtfCurrent)
	rrtfEmit("END")
}
"""


def rewrite_test(test: str) -> tuple[str, str, list[str]]:
    """(test function rewritten with per-case wrappers, its name, case names)."""
    m = TEST_FN_RE.search(test)
    if not m:
        raise PlanError("no `func TestX(t *testing.T) {` in the Go test")
    close = match_bracket(test, m.end() - 1)
    if close < 0:
        raise PlanError("unbalanced braces in the Go test")
    body, names = wrap_cases(test[m.end(): close], ASSERT_RE, lambda i, stmt: f"\nrrtfCase({i}, func() {{ {stmt}\n}})\n")
    if not names:
        raise PlanError("the Go test has no assert call")
    # renamed: a candidate's whole file may define its own TestX, which the dot-import would clash with
    header = f"func {TEST_FN}(t *rrtfT) {{"
    return test[: m.start()] + header + body + "\n" + test[close:], TEST_FN, names


def _imports(setup: str) -> list[str]:
    paths = []
    for m in IMPORT_RE.finditer(setup):
        paths += re.findall(r'"([^"]+)"', m.group(1))
    return paths


def main_source(problem: Problem) -> tuple[str, list[str]]:
    """The one-process fallback's test package: the imports it uses (from the test set-up and the prompt,
    as the combined file of the reference evaluation had them), the rewritten test, the harness."""
    test, fn, names = rewrite_test(problem.test)
    declared = _imports(problem.test_setup_code) + _imports(problem.prompt)
    used = [p for p in declared if p != "testing" and re.search(rf"\b{re.escape(p.rsplit('/', 1)[-1])}\s*\.", test)]
    lines = ["package main", "", "import ("] + [f'\t"{p}"' for p in dict.fromkeys(used + HARNESS_IMPORTS)] + ['\t. "cand"', ")", ""]
    return "\n".join([*lines, test, HARNESS.replace("%(test_fn)s", fn)]), names


HARNESS_IMPORTS = ["encoding/binary", "fmt", "math/bits", "os", "strings"]


def test_program_files(problem: Problem) -> dict[str, bytes]:
    """The separated test's package (sandbox/compiled/go_pair.py): the rewritten test with the prompt's
    helpers, the harness, the stub with the entry point's signature, the codec. Unsupported if the
    signature has no plain-data form or the test calls a name only the candidate defines."""
    sig, start = go_pair.entry_signature(problem.prompt, problem.entry_point)
    helpers, helper_imports = go_pair.prompt_helpers(problem.prompt, start)
    go_pair.test_calls_only_known_names(problem.test, helpers, problem.entry_point)
    test, fn, _ = rewrite_test(problem.test)
    offered = [p for p in _imports(problem.test_setup_code) + helper_imports if p != "testing"]
    imports = "".join(f'\t"{p}"\n' for p in go_pair.imports_used(helpers + "\n" + test, offered))
    harness = "package main\n\nimport (\n" + "".join(f'\t"{p}"\n' for p in HARNESS_IMPORTS) + ")\n"
    files = {"main.go": f"package main\n\nimport (\n{imports})\n\n{helpers}\n{test}\n",
             "harness.go": harness + HARNESS.replace("%(test_fn)s", fn), "key.go": SEPARATED_SOURCE,
             "stub.go": go_pair.stub_source(sig, problem.entry_point)}
    return {f"src/rrtfmain/{k}": v.encode() for k, v in files.items()}


def candidate_source(problem: Problem, program: str) -> str:
    """Package `cand`: the program with its own package clause and imports merged into one import list
    (sandbox/compiled/go_source.py) -- the standard packages it names, whether it imported them, the
    prompt or the test set-up did (one file in the reference evaluation), or, as goimports would, nobody
    (HumanEvalPack Go/17, 20, 59, 75: the canonical solutions use math, strings or sort that no record
    imports); not the test's own packages."""
    offered = [p for p in _imports(problem.prompt) + _imports(problem.test_setup_code) + STD_PACKAGES
               if p not in ("testing", "github.com/stretchr/testify/assert")]
    return go_source.candidate_file(program, offered)


def toolchain_error() -> str:
    return missing_tools(PACKAGES)


def validate(problem: Problem) -> None:
    if problem.io_cases:
        raise PlanError("Go: stdin/stdout problems are not supported")
    main_source(problem)


def separated_build(problem: Problem, candidate: str, config: SandboxConfig, cache: Path | None) -> Build:
    """Two programs: the candidate's (package cand + a dispatcher main; the codec is the package rrtfwire), and the test's,
    built once per problem (kept stripped, so that it stays under the runner's keep limit) and reused."""
    wire = wire_path()
    if wire is None:
        raise go_pair.Unsupported("the codec's package (rrtfwire) could not be written to the tool cache")
    test_files = test_program_files(problem)
    sig, _ = go_pair.entry_signature(problem.prompt, problem.entry_point)
    cand_files = {"src/cand/cand.go": candidate.encode(),
                  "src/rrtfcand/main.go": go_pair.dispatcher_source(sig, problem.entry_point).encode()}
    key = hashlib.sha256(repr((str(cache), ENV, sorted(test_files.items()))).encode()).hexdigest()
    cached = _TEST_PROGRAMS.get(key)
    # Both programs are linked without symbol table and DWARF (-s -w): the link is most of a build's time, and
    # panics still print their stack (from the pclntab, which stays).
    cand_step = ["run", "cand", build_script(cache, "rrtfcand", "-ldflags=-s\\ -w"), 0]
    steps = [cand_step] if cached else [["parallel", [cand_step, ["run", "test", build_script(cache, "rrtfmain", "-ldflags=-s\\ -w"), 0]]],
                                        ["keep", "test/prog"]]

    def kept(files: dict[str, bytes]) -> None:
        binary = files.get("test/prog", b"")
        if 0 < len(binary) < KEEP_LIMIT:  # the runner reads at most KEEP_LIMIT: a longer one would be cut
            _TEST_PROGRAMS.put(key, zlib.compress(binary, 1))

    data_mb = data_limit(config.memory_mb)
    return Build(units={"cand": cand_files, "test": {"prog": zlib.decompress(cached)} if cached else test_files},
                 steps=steps, install=[["cand/prog", "cand", "exec", "cand"], ["test/prog", "test", "exec", "run"]],
                 run_argv=["../bin/test"], candidate_argv=[PRLIMIT, f"--data={data_mb << 20}", "--", "../bin/cand"]
                 if data_mb else ["../bin/cand"], case_names=rewrite_test(problem.test)[2], send_key=True,
                 memory_mb=config.memory_mb and config.memory_mb + RUNTIME_RESERVE_MB, data_mb=data_mb,
                 nproc=PROGRAM_NPROC, ro_binds=[str(wire), *([str(cache)] if cache else [])], on_kept=None if cached else kept)


_TEST_PROGRAMS = BytesCache(192)  # zlib-compressed test programs, ~1.5 MB each: HumanEvalPack's 164 fit
KEEP_LIMIT = 4 << 20  # sandbox/worker/runner.py's


def one_process_build(problem: Problem, candidate: str, config: SandboxConfig, cache: Path | None, why: str) -> Build:
    """The fallback: the candidate's package and the test in one program, the key compiled in."""
    source, names = main_source(problem)
    return Build(units={"prog": {"src/cand/cand.go": candidate.encode(), "src/rrtfmain/main.go": source.encode()}},
                 steps=[["run", "prog", build_script(cache, "rrtfmain"), 0]],
                 install=[["prog/prog", "prog", "exec"]], run_argv=["../bin/prog"], case_names=names,
                 key_file="prog/src/rrtfmain/key.go", key_source=KEY_SOURCE, one_process=why,
                 memory_mb=config.memory_mb and config.memory_mb + RUNTIME_RESERVE_MB,
                 data_mb=data_limit(config.memory_mb), nproc=PROGRAM_NPROC, ro_binds=[str(cache)] if cache else [])


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    _, names = main_source(problem)
    missing = toolchain_error()
    if missing:
        return missing_verdict(problem.task_id, sample_index, names, missing, config)
    program = problem.program(completion)
    refusal = go_source.refusal(program)
    if refusal:
        return refused_verdict(problem.task_id, sample_index, names, refusal, config)
    candidate = candidate_source(problem, program)
    cache = warm_cache()
    try:
        build = separated_build(problem, candidate, config, cache)
    except go_pair.Unsupported as exc:
        build = one_process_build(problem, candidate, config, cache, str(exc))
    return compiled_judge(problem, completion, sample_index, config, build)
