"""Rust: HumanEvalPack Rust tests (`#[cfg(test)] mod tests { #[test] fn ... }`) rewritten into a
program with per-case reports, built so that the test is out of the candidate's reach.

Two crates, two uids (as C++'s two units):
- `cand`, an rlib: the prompt + completion, with the entry point (and any top-level type or function
  the test names) made `pub`. It is compiled as the candidate unit's uid, which cannot read the test's
  unit (`include_bytes!` reads files at compile time); no build scripts, no proc macros, so nothing of
  the candidate runs while building.
- the test's binary: the prompt's own `use` lines and helpers (so Rust/32's `poly` is the prompt's,
  not the candidate's), a wrapper `fn entry(..) -> T { cand::entry(..) }` with the prompt's own
  signature -- the test then only ever holds values of the declared types, compared by std's
  `PartialEq` --, the names it uses from `cand` imported one by one (never a glob: no candidate macro
  can shadow `assert_eq!`, no prelude or primitive name is taken from `cand`), the rewritten test and
  the reporter. Each case runs under `catch_unwind`; lines go to fd 3 tagged with SipHash-2-4 under a
  per-run key that exists only in the test's unit and the execute-only program.
- A candidate could still override a C symbol the test's std uses (`#[no_mangle] fn bcmp` makes
  every slice compare equal): the attributes and macros that name symbols or sections
  (`no_mangle`, `export_name`, `link_section`, `link_name`, `asm!`, `global_asm!`) are refused, and the
  compiled rlib's defined global symbols must all be compiler-mangled names (checked with `nm`).

Dependencies: the reference evaluation builds with cargo and the crates `rand`, `regex`, `md5`;
here Debian's packaged crates (/usr/share/cargo/registry) are built once per machine with cargo,
offline, into a read-only cache, and each sample is two plain `rustc` runs against those rlibs --
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
from pathlib import Path

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.run import Build
from sandbox.compiled.run import judge as compiled_judge
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
HARNESS = r"""
#[path = "key.rs"]
mod rrtf_key;
mod rrtf_h {
    use std::io::Write;
    use std::os::unix::io::FromRawFd;
    fn rounds(v: &mut [u64; 4], n: usize) {
        for _ in 0..n {
            v[0] = v[0].wrapping_add(v[1]); v[1] = v[1].rotate_left(13) ^ v[0]; v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[3]); v[3] = v[3].rotate_left(16) ^ v[2];
            v[0] = v[0].wrapping_add(v[3]); v[3] = v[3].rotate_left(21) ^ v[0];
            v[2] = v[2].wrapping_add(v[1]); v[1] = v[1].rotate_left(17) ^ v[2]; v[2] = v[2].rotate_left(32);
        }
    }
    fn sip(k: &[u8; 16], m: &[u8]) -> u64 {  // SipHash-2-4 (sandbox/worker/siphash.py)
        let mut a = [0u8; 8]; a.copy_from_slice(&k[..8]); let k0 = u64::from_le_bytes(a);
        a.copy_from_slice(&k[8..]); let k1 = u64::from_le_bytes(a);
        let mut v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573];
        let end = m.len() - m.len() % 8;
        for c in m[..end].chunks(8) {
            a.copy_from_slice(c); let w = u64::from_le_bytes(a);
            v[3] ^= w; rounds(&mut v, 2); v[0] ^= w;
        }
        let mut b = ((m.len() & 0xff) as u64) << 56;
        for (j, x) in m[end..].iter().enumerate() { b |= (*x as u64) << (8 * j); }
        v[3] ^= b; rounds(&mut v, 2); v[0] ^= b; v[2] ^= 0xff; rounds(&mut v, 4);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
    pub fn emit(msg: &str) {  // one write per line: what was reported before a crash is kept
        let line = format!("{:016x} {}\n", sip(&super::rrtf_key::KEY, msg.as_bytes()), msg);
        let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
        let _ = out.write_all(line.as_bytes());
    }
    fn clean(s: &str) -> String { s.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect() }
    pub fn case<F: FnOnce()>(i: usize, f: F) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => emit(&format!("{} P", i)),
            Err(payload) => {
                let text = if let Some(s) = payload.downcast_ref::<&str>() { s.to_string() }
                           else if let Some(s) = payload.downcast_ref::<String>() { s.clone() }
                           else { "panic".to_string() };
                std::mem::forget(payload);  // a candidate's payload may panic when dropped
                emit(&format!("{} F AssertionError: {}", i, clean(&text)));
            }
        }
    }
}
fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    tests::%(test_fn)s();
    rrtf_h::emit("END");
}
"""
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
    key = hashlib.sha256(f"{version}|{EDITION}|{CRATES}|{CRATE_FEATURES}|{crates}".encode()).hexdigest()[:16]

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
        for name in ("target", "home", "src"):
            shutil.rmtree(tmp / name, ignore_errors=True)
        (tmp / "deps" / "externs.json").write_text(json.dumps(files))
        return len(files) == len(CRATES)

    built = build_once(f"rust-deps-{key}", "deps/externs.json", build)
    if built is None:
        return None
    return built / "deps", json.loads((built / "deps" / "externs.json").read_text())


def test_source(problem: Problem, program: str) -> tuple[str, str, list[str]]:
    """(the test crate's main.rs, the candidate crate's source, case names)."""
    test, fn, names = rewrite_test(problem.test)
    prefix = problem.code_prefix
    header = entry_header(prefix, problem.entry_point) if prefix else None
    own = set()  # what the test's crate defines itself: the prompt's helpers and the entry's wrapper
    entry = problem.entry_point
    if header is not None:
        before, signature, params, entry = header
        before = before.replace("fn main(){}", "").replace("use rand::Rng;", "use crate::rrtf_rand04::Rng;")
        own = {name for _, name, _ in top_level_items(before)} | {entry}
        wrapper = f"{signature} {{ cand::{entry}({', '.join(params)}) }}\n"
        root = before + "\n" + wrapper
    else:  # no prompt to take the signature from: the entry point is imported as it is
        root = ""
    used, macros = identifiers(problem.test)
    imported = set()
    for line in mask(root).splitlines():
        if line.strip().startswith("use "):
            imported |= identifiers(line)[0]
    wanted = {entry} | {name for _, name, _ in top_level_items(program) if name in used}
    take = sorted(n for n in wanted - own - macros - PRELUDE - imported if n in used or (n == entry and header is None))
    imports = f"use cand::{{{', '.join(take)}}};\n" if take else ""
    main = RAND04 + root + imports + test + HARNESS.replace("%(test_fn)s", fn)
    return main, make_public(program, wanted), names


def validate(problem: Problem) -> None:
    if problem.io_cases:
        raise PlanError("Rust: stdin/stdout problems are not supported")
    rewrite_test(problem.test)


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    program = problem.program(completion)
    main, cand, names = test_source(problem, program)
    missing = toolchain_error()
    deps = None if missing else dependencies()
    if missing or deps is None:
        why = f" ({BUILD_ERRORS[-1][:200]})" if BUILD_ERRORS else ""
        return missing_verdict(problem.task_id, sample_index, names, missing or f"{MISSING}: the crates {', '.join(CRATES)} "
                               f"could not be built from {REGISTRY}{why}", config)
    refused = REFUSED.search(mask(program))
    if refused:
        return refused_verdict(problem.task_id, sample_index, names, f"compile error: `{refused.group()}` is not allowed", config)
    deps_dir, externs = deps
    flags = [f"--edition={EDITION}", "-A", "warnings", "-C", "debuginfo=0", "-L", f"dependency={deps_dir}",
             *[a for c, f in externs.items() for a in ("--extern", f"{c}={deps_dir}/{f}")]]
    gold = ["-C", "link-arg=-fuse-ld=gold"] if shutil.which("ld.gold") else []
    check = (f'{RUSTC} {" ".join(flags)} -C opt-level=2 --crate-type rlib --crate-name cand cand.rs -o libcand.rlib || exit 1; '
             f"bad=$(nm -g --defined-only libcand.rlib 2>/dev/null | awk 'NF==3 {{print $3}}' | grep -Ev '{SYMBOLS_OK}' | head -3); "
             f'[ -z "$bad" ] || {{ echo "error: the candidate defines symbols outside its crate:" $bad; exit 1; }}')
    build = Build(units={"cand": {"cand.rs": cand.encode()}, "test": {"main.rs": main.encode()}},
                  steps=[["run", "cand", ["/bin/sh", "-c", f"export TMPDIR=$PWD; {check}"], 0],
                         ["move", "cand/libcand.rlib", "test/libcand.rlib"],
                         ["run", "test", ["/usr/bin/env", "TMPDIR=.", RUSTC, *flags, *gold, "-C", "opt-level=1",
                                          "--extern", "cand=libcand.rlib", "main.rs", "-o", "prog"], 0]],
                  install=[["test/prog", "prog", "exec"]], run_argv=["../bin/prog"], case_names=names,
                  key_file="test/key.rs", key_source=KEY_SOURCE, memory_mb=config.memory_mb, nproc=PROGRAM_NPROC,
                  ro_binds=[str(deps_dir)])
    return compiled_judge(problem, completion, sample_index, config, build)
