"""Rust: HumanEvalPack Rust tests (`#[cfg(test)] mod tests { #[test] fn ... }`) rewritten into a
program with per-case reports, built so that the test is out of the candidate's reach.

Two programs, two uids (sandbox/compiled/rust_pair.py; the wire: sandbox/compiled/wire.py):
- the candidate's program: the prompt + completion (its own `fn main` renamed), a generated `main` that
  serves calls on fd 3 and the codec (codecs/wire.rs). It runs as its own uid with no key, no test and
  no report socket: whatever it does to its own memory, symbols (`#[no_mangle]`), constructors or
  values reaches the test only as the plain data of its replies.
- the test's program: the prompt's own `use` lines and helpers (so Rust/32's `poly` is the prompt's),
  a stub with the **prompt's signature** that calls the candidate over fd 4 and decodes the reply into
  the declared std types -- compared by std's `PartialEq` --, the rewritten test and the reporter. Each
  case runs under `catch_unwind`; lines go to the report socket tagged with SipHash-2-4 under a per-run
  key the runner writes on that socket first. It contains no candidate code and depends on the problem
  only, so it is compiled once per problem and reused (`_TEST_PROGRAMS`): a sample costs one rustc.
- Fallback (`Build.one_process`, the verdict's isolation then says "+one-process"): a signature the codec
  does not carry (HumanEvalPack Rust/22 and Rust/137: `dyn Any` values, whose Rust type the wire cannot
  name) keeps the older build -- the candidate's code an rlib `cand`, compiled as its own uid, linked into
  the test's program behind a wrapper with the prompt's signature, the names the test uses imported one
  by one (never a glob, a macro or a prelude name), the key compiled in. There a `#[no_mangle] fn bcmp`
  would make every slice compare equal, so the rlib's defined global symbols must all be compiler-mangled
  (`nm`). In both builds the attributes and macros that name symbols or sections (`no_mangle`,
  `export_name`, `link_section`, `link_name`, `asm!`, `global_asm!`) are refused in the source: harmless
  in a program of the candidate's own, and no HumanEval answer needs them.

Dependencies: the reference evaluation builds with cargo and the crates `rand`, `regex`, `md5`;
here Debian's packaged crates (/usr/share/cargo/registry) are built once per machine with cargo,
offline, into a read-only cache, and each sample is plain `rustc` runs against those rlibs --
cargo per sample would resolve and fingerprint the whole dependency graph every time (~1 s).
The tests were written for rand 0.4 (`rng.gen_range(0, 4)`); Debian packages 0.8, so the test's
crate sees a 0.4-style `Rng` (gen_range(low, high), gen) implemented with 0.8, and its `rand::thread_rng()`
and `rand::random()` are seeded (42, as HumanEval's Python tests seed theirs): the unseeded originals
made Rust/32's canonical solution pass or time out at random.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.cache import BytesCache
from sandbox.compiled.run import Build
from sandbox.compiled.run import judge as compiled_judge
from sandbox.compiled.rust_pair import WIRE_RS, Signature, Unsupported, candidate_program, harness, parse_signature, stub
from sandbox.compiled.rust_source import entry_header, identifiers, make_public, mask, rewrite_test, top_level_items
from sandbox.compiled.toolchain import MISSING, missing_tools, missing_verdict, refused_verdict
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError
from sandbox.toolcache import build_once

RUSTC, CARGO = "/usr/bin/rustc", "/usr/bin/cargo"
REGISTRY = "/usr/share/cargo/registry"
CRATES = {"rand": "0.8", "regex": "1", "md5": "0.7"}  # what HumanEvalPack's prompts `use`
# regex without its default "perf" features: those pull aho-corasick and memchr, which Debian ships only
# as recommended packages (absent after --no-install-recommends); the tests need no regex speed.
CRATE_FEATURES = {"regex": 'default-features = false, features = ["std", "unicode"]'}
LANGUAGE = Language(
    name="rust", display_name="Rust", runs_in="isolated", task_id_prefixes=("rust",), humanevalpack=True,
    debian_packages=("rustc", "cargo", "binutils", *(f"librust-{c}-dev" for c in CRATES)),  # binutils: nm
    tools=(RUSTC, CARGO, "nm"),  # executables it runs
    selftest={"entry_point": "add",  # uses the crates: they must build
              "prompt": "fn main(){}\n\nuse rand::Rng;\nuse regex::Regex;\nuse md5;\n\nfn add(x:i32, y:i32) -> i32{\n",
              "canonical_solution": "    return x + y;\n}\n", "buggy_solution": "    return x - y;\n}\n",
              "test": "\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn test_add() {\n"
                      "        assert!(add(2, 3) == 5);\n        assert!(add(7, 5) == 12);\n    }\n\n}\n"})
EDITION = "2021"
PROGRAM_NPROC = 32
REFUSED = re.compile(r"\b(no_mangle|export_name|link_section|link_name|global_asm|asm)\b")
PRELUDE = set("""Vec String Box Option Some None Result Ok Err ToString ToOwned Clone Copy Iterator IntoIterator Into From
TryFrom TryInto PartialEq Eq PartialOrd Ord Default Drop Fn FnMut FnOnce Send Sync Sized Unpin AsRef AsMut Extend
DoubleEndedIterator ExactSizeIterator FromIterator drop Self self super crate std core alloc cand tests main rrtf_h
rrtf_key rrtf_rand04 i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str""".split()) | set(CRATES)
SYMBOLS_OK = r"^(_ZN[0-9A-Za-z_$.]*17h[0-9a-f]{16}E|anon\.[0-9a-f]+\.[0-9]+)(\.llvm\.[0-9]+)?$"
RAND04 = """mod rrtf_rand04 {  // the rand 0.4 API the tests were written for, on rand 0.8
    pub trait Rng: rand::RngCore {
        fn gen_range<T: rand::distributions::uniform::SampleUniform + PartialOrd>(&mut self, low: T, high: T) -> T {
            rand::Rng::gen_range(self, low..high)
        }
        fn gen<T>(&mut self) -> T where rand::distributions::Standard: rand::distributions::Distribution<T> {
            rand::Rng::gen(self)
        }
    }
    impl<R: rand::RngCore + ?Sized> Rng for R {}
}
mod rand {  // what the tests draw is seeded: a verdict must not depend on luck (Rust/32's Newton
    pub use ::rand::*;  // iteration diverges on some polynomials)
    thread_local!(static RNG: std::cell::RefCell<rngs::StdRng> = std::cell::RefCell::new(SeedableRng::seed_from_u64(42)));
    pub fn thread_rng() -> rngs::StdRng { RNG.with(|r| SeedableRng::seed_from_u64(::rand::RngCore::next_u64(&mut *r.borrow_mut()))) }
    pub fn random<T>() -> T where distributions::Standard: distributions::Distribution<T> {
        RNG.with(|r| ::rand::Rng::gen(&mut *r.borrow_mut()))
    }
}
"""
CANDIDATE_OPT = ["-C", "opt-level=2"]  # the candidate's code runs as fast as it did in its rlib
TEST_OPT = ["-C", "opt-level=1", "-C", "strip=symbols"]  # compiled once per problem; stripped to stay under KEEP_LIMIT
KEEP_LIMIT = 4 << 20  # what the runner's "keep" step returns at most (sandbox/worker/runner.py)
_TEST_PROGRAMS = BytesCache(256)  # zlib-compressed test programs: a suite's 164 fit (an LRU smaller than a cycle misses every time)
KEY_SOURCE = "pub const KEY: [u8; 16] = [{key_bytes}];\n"


def _registry_dirs(crate: str) -> list[str]:
    return sorted(glob.glob(f"{REGISTRY}/{crate}-[0-9]*"))


def toolchain_error() -> str:
    missing = missing_tools({RUSTC: "rustc", CARGO: "cargo"})
    absent = [f"librust-{c}-dev" for c in CRATES if not _registry_dirs(c)]
    if absent:
        listed = missing[len(MISSING + ": install the Debian package(s) "):].split(", ") if missing else []
        missing = f"{MISSING}: install the Debian package(s) {', '.join(sorted(listed + absent))}"
    return missing


BUILD_ERRORS: list[str] = []  # why the one-time build of the crates failed, for the verdict


@functools.cache
def dependencies() -> tuple[Path, dict[str, str]] | None:
    """(dir of the prebuilt rlibs, {crate: rlib file name}) built once per machine, or None."""
    try:
        version = subprocess.run([RUSTC, "-vV"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    crates = [os.path.basename(d) for d in sorted(os.listdir(REGISTRY))] if os.path.isdir(REGISTRY) else []
    key = hashlib.sha256(f"{version}|{EDITION}|{CRATES}|{CRATE_FEATURES}|{crates}|{WIRE_RS}".encode()).hexdigest()[:16]

    def build(tmp: Path) -> bool:
        (tmp / "src").mkdir()
        (tmp / "src" / "lib.rs").write_text("".join(f"pub use {c};\n" for c in CRATES))
        deps = "".join(f'{c} = {{ version = "{v}", {CRATE_FEATURES[c]} }}\n' if c in CRATE_FEATURES else f'{c} = "{v}"\n'
                       for c, v in CRATES.items())
        (tmp / "Cargo.toml").write_text(f'[package]\nname = "rrtf_deps"\nversion = "0.1.0"\nedition = "{EDITION}"\n'
                                        f"[dependencies]\n{deps}")
        (tmp / "home").mkdir()
        (tmp / "home" / "config.toml").write_text(f'[source.crates-io]\nreplace-with = "debian"\n[source.debian]\n'
                                                  f'directory = "{REGISTRY}"\n[net]\noffline = true\n')
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "CARGO_HOME": str(tmp / "home"), "RUSTC": RUSTC,
               "CARGO_TARGET_DIR": str(tmp / "target")}
        try:
            done = subprocess.run([CARGO, "build", "--release", "--offline", "-j", "2"], cwd=tmp, env=env,
                                  capture_output=True, text=True, errors="replace", timeout=1800)
        except (OSError, subprocess.SubprocessError) as exc:
            BUILD_ERRORS.append(str(exc))
            return False
        if done.returncode != 0:  # kept for the verdict: cargo's own first error says which crate is missing
            BUILD_ERRORS.append(next((ln.strip() for ln in done.stderr.splitlines() if ln.startswith("error")), done.stderr[-300:]))
            return False
        os.rename(tmp / "target" / "release" / "deps", tmp / "deps")
        files = {c: os.path.basename(p) for c in CRATES for p in glob.glob(str(tmp / "deps" / f"lib{c}-*.rlib"))}
        # The wire's codec (sandbox/compiled/codecs/wire.rs) as a crate of its own, compiled once here: both programs of a
        # separated run use it, and compiling it into each candidate's program cost ~1 s of a ~1.3 s build (measured).
        (tmp / "wire.rs").write_text(WIRE_RS)
        wire = subprocess.run([RUSTC, f"--edition={EDITION}", "--crate-type", "rlib", "--crate-name", "rrtf_wire", "-C", "opt-level=2",
                               "-C", "debuginfo=0", str(tmp / "wire.rs"), "-o", str(tmp / "deps" / "librrtf_wire.rlib")],
                              capture_output=True, text=True, errors="replace", timeout=600)
        if wire.returncode != 0:
            BUILD_ERRORS.append(f"the wire codec: {wire.stderr[-300:]}")
            return False
        files["rrtf_wire"] = "librrtf_wire.rlib"
        for name in ("target", "home", "src"):
            shutil.rmtree(tmp / name, ignore_errors=True)
        (tmp / "deps" / "externs.json").write_text(json.dumps(files))
        return len(files) == len(CRATES) + 1

    built = build_once(f"rust-deps-{key}", "deps/externs.json", build)
    if built is None:
        return None
    return built / "deps", json.loads((built / "deps" / "externs.json").read_text())


def _root(prefix: str, entry: str) -> tuple[str, str, list[str], str, set[str]] | None:
    """(the prompt's helpers and `use` lines for the test's crate, the entry point's header, its parameter names, its
    name, what the test's crate defines itself), or None where the prompt does not open the entry point's body."""
    header = entry_header(prefix, entry) if prefix else None
    if header is None:
        return None
    before, signature, params, entry = header
    before = before.replace("fn main(){}", "").replace("use rand::Rng;", "use crate::rrtf_rand04::Rng;")
    return before, signature, params, entry, {name for _, name, _ in top_level_items(before)} | {entry}


def _taken(test: str, program: str, root: str, own: set[str], entry: str, headless: bool) -> list[str]:
    """The names the test uses that only the candidate's code defines (one by one: never a macro, a prelude name)."""
    used, macros = identifiers(test)
    imported = set()
    for line in mask(root).splitlines():
        if line.strip().startswith("use "):
            imported |= identifiers(line)[0]
    wanted = {entry} | {name for _, name, _ in top_level_items(program) if name in used}
    return sorted(n for n in wanted - own - macros - PRELUDE - imported if n in used or (n == entry and headless))


def test_source(problem: Problem, program: str) -> tuple[str, str, list[str]]:
    """One-process build: (the test crate's main.rs, the candidate crate's source, case names)."""
    test, fn, names = rewrite_test(problem.test)
    found = _root(problem.code_prefix, problem.entry_point)
    if found is not None:  # the test calls a wrapper with the prompt's own signature
        before, signature, params, entry, own = found
        root = before + "\n" + f"{signature} {{ cand::{entry}({', '.join(params)}) }}\n"
    else:  # no prompt to take the signature from: the entry point is imported as it is
        root, entry, own = "", problem.entry_point, set()
    take = _taken(problem.test, program, root, own, entry, found is None)
    imports = f"use cand::{{{', '.join(take)}}};\n" if take else ""
    main = RAND04 + root + imports + test + harness(fn, separated=False)
    wanted = {entry} | {name for _, name, _ in top_level_items(program) if name in identifiers(problem.test)[0]}
    return main, make_public(program, wanted), names


@dataclass
class Pair:
    """How a problem is judged: separated (its signature, the test's whole program) or why not."""

    signature: Signature | None
    test_main: str
    names: list[str]
    one_process: str = ""


@functools.lru_cache(maxsize=256)
def _pair(prefix: str, entry: str, test: str, canonical: str) -> Pair:
    rewritten, fn, names = rewrite_test(test)
    found = _root(prefix, entry)
    if found is None:
        return Pair(None, "", names, "the prompt does not open the entry point's body: no signature to call through")
    before, signature, _, name, own = found
    try:
        sig = parse_signature(signature)
    except Unsupported as exc:
        return Pair(None, "", names, f"signature outside the wire's codec ({exc}): {signature[:200]}")
    # Decided from trusted text only (the canonical solution), never from a candidate's code.
    taken = [n for n in _taken(test, prefix + canonical, before, own, name, False) if n != name]
    if taken:
        return Pair(None, "", names, f"the test names what the candidate's code defines: {', '.join(taken)}")
    return Pair(sig, RAND04 + before + "\n" + stub(sig) + rewritten + harness(fn, separated=True), names)


def pair(problem: Problem) -> Pair:
    return _pair(problem.code_prefix, problem.entry_point, problem.test, problem.canonical_solution)


def validate(problem: Problem) -> None:
    if problem.io_cases:
        raise PlanError("Rust: stdin/stdout problems are not supported")
    rewrite_test(problem.test)


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    program = problem.program(completion)
    plan = pair(problem)
    missing = toolchain_error()
    deps = None if missing else dependencies()
    if missing or deps is None:
        why = f" ({BUILD_ERRORS[-1][:200]})" if BUILD_ERRORS else ""
        return missing_verdict(problem.task_id, sample_index, plan.names, missing or f"{MISSING}: the crates "
                               f"{', '.join(CRATES)} could not be built from {REGISTRY}{why}", config)
    # Refused in both builds: harmless in a program of the candidate's own, but there is no reason to allow them.
    refused = REFUSED.search(mask(program))
    if refused:
        return refused_verdict(problem.task_id, sample_index, plan.names, f"compile error: `{refused.group()}` is not allowed",
                               config)
    deps_dir, externs = deps
    flags = [f"--edition={EDITION}", "-A", "warnings", "-C", "debuginfo=0", "-L", f"dependency={deps_dir}",
             *[a for c, f in externs.items() for a in ("--extern", f"{c}={deps_dir}/{f}")]]
    gold = ["-C", "link-arg=-fuse-ld=gold"] if shutil.which("ld.gold") else []
    rustc = ["/usr/bin/env", "TMPDIR=.", RUSTC, *flags, *gold]
    build = _pair_build(plan, program, rustc) if plan.signature else _one_process_build(problem, program, flags, rustc)
    build.memory_mb, build.nproc, build.ro_binds = config.memory_mb, PROGRAM_NPROC, [str(deps_dir)]
    return compiled_judge(problem, completion, sample_index, config, build)


def _pair_build(plan: Pair, program: str, rustc: list[str]) -> Build:
    """Two programs: the candidate's (its code, the dispatcher, the codec; its own uid, no key) and the test's,
    compiled once per problem (it depends on nothing else) and reused from _TEST_PROGRAMS."""
    cache_key = hashlib.sha256(f"{rustc}|{TEST_OPT}|{plan.test_main}".encode()).hexdigest()
    cached = _TEST_PROGRAMS.get(cache_key)
    cached = zlib.decompress(cached) if cached else None
    cand = ["run", "cand", [*rustc, *CANDIDATE_OPT, "cand.rs", "-o", "cprog"], 0]
    # The test's program first and kept at once: a candidate that does not compile still leaves it for the next sample.
    steps = [cand] if cached else [["run", "test", [*rustc, *TEST_OPT, "main.rs", "-o", "prog"], 0], ["keep", "test/prog"], cand]

    def keep(kept: dict[str, bytes]) -> None:
        data = kept.get("test/prog") or b""
        if len(data) < KEEP_LIMIT:  # the runner returns at most KEEP_LIMIT bytes: a longer program is cut
            _TEST_PROGRAMS.put(cache_key, zlib.compress(data, 1))

    return Build(units={"cand": {"cand.rs": candidate_program(program, plan.signature).encode()},
                        "test": {"prog": cached} if cached else {"main.rs": plan.test_main.encode()}},
                 steps=steps, install=[["test/prog", "prog", "exec", "run"], ["cand/cprog", "cprog", "exec", "cand"]],
                 run_argv=["../bin/prog"], candidate_argv=["../bin/cprog"], case_names=plan.names, send_key=True,
                 on_kept=None if cached else keep)


def _one_process_build(problem: Problem, program: str, flags: list[str], rustc: list[str]) -> Build:
    """The candidate's rlib linked into the test's program (the key compiled in): for signatures outside the codec."""
    main, cand, names = test_source(problem, program)
    check = (f'{RUSTC} {" ".join(flags)} -C opt-level=2 --crate-type rlib --crate-name cand cand.rs -o libcand.rlib || exit 1; '
             f"bad=$(nm -g --defined-only libcand.rlib 2>/dev/null | awk 'NF==3 {{print $3}}' | grep -Ev '{SYMBOLS_OK}' | head -3); "
             f'[ -z "$bad" ] || {{ echo "error: the candidate defines symbols outside its crate:" $bad; exit 1; }}')
    return Build(units={"cand": {"cand.rs": cand.encode()}, "test": {"main.rs": main.encode()}},
                 steps=[["run", "cand", ["/bin/sh", "-c", f"export TMPDIR=$PWD; {check}"], 0],
                        ["move", "cand/libcand.rlib", "test/libcand.rlib"],
                        ["run", "test", [*rustc, "-C", "opt-level=1", "--extern", "cand=libcand.rlib", "main.rs", "-o", "prog"], 0]],
                 install=[["test/prog", "prog", "exec"]], run_argv=["../bin/prog"], case_names=names,
                 key_file="test/key.rs", key_source=KEY_SOURCE, one_process=pair(problem).one_process)
