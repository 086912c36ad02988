"""Rust, process-separated: the candidate's code and the test run as two programs that meet only
through the plain-data wire (sandbox/compiled/wire.py; the Rust codec is codecs/wire.rs).

- The entry point's signature is taken from the prompt (trusted) and parsed here; a signature whose
  types the codec does not carry (e.g. `Vec<Box<dyn Any>>`: the wire cannot name a value's Rust type)
  makes the problem keep the one-process build, with the reason (`Unsupported`).
- The candidate's program is its own code with its top-level `fn main` renamed, a generated `main`
  that serves calls from fd 3 (arguments decoded by the declared types, the entry point called under
  `catch_unwind`, `R`/`E` replies), and the codec. Nothing of it is trusted.
- The test's program is the rewritten test, the prompt's helpers, the reporter and a stub with the
  entry point's exact signature that encodes the arguments, calls over fd 4 and decodes the reply
  into the declared type: the test only ever holds std values it decoded, compared by std's
  `PartialEq`. The key arrives on the report socket (Build.send_key), so this program depends on the
  problem only and is compiled once per problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.compiled.rust_source import mask, top_level_items

WIRE_RS = (Path(__file__).parent / "codecs" / "wire.rs").read_text()
INTS = set("i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize".split())
LEAVES = INTS | {"f32", "f64", "bool", "char", "String"}
GENERICS = {"Vec": 1, "VecDeque": 1, "HashSet": 1, "BTreeSet": 1, "Option": 1, "Box": 1, "HashMap": 2, "BTreeMap": 2}
STD_PREFIXES = {"std", "core", "alloc", "collections", "string", "vec", "option", "boxed"}  # `std::collections::HashMap`
MAX_TUPLE = 12  # std's PartialEq/Debug for tuples, and the codec's impls
TOKEN_RE = re.compile(r"\s*(->|::|'[A-Za-z_]\w*|[A-Za-z_]\w*|\d+|\S)")


class Unsupported(ValueError):
    """A signature the wire's codec does not carry: the problem keeps the one-process build."""


@dataclass
class Type:
    kind: str  # "path" | "ref" | "tuple" | "slice" | "array"
    name: str = ""  # path: the whole path as written ("std::collections::HashMap"); array: its length
    args: tuple = ()  # path: type arguments; ref/slice/array: (inner,); tuple: items
    mut: bool = False  # ref: `&mut`

    def last(self) -> str:
        return self.name.rsplit("::", 1)[-1]

    def render(self) -> str:
        """Rust text of the type, named lifetimes made 'static (the dispatcher's locals have no generics)."""
        if self.kind == "ref":
            return "&'static " + ("mut " if self.mut else "") + self.args[0].render()
        if self.kind == "tuple":
            return "(" + "".join(a.render() + ", " for a in self.args) + ")" if self.args else "()"
        if self.kind == "slice":
            return f"[{self.args[0].render()}]"
        if self.kind == "array":
            return f"[{self.args[0].render()}; {self.name}]"
        return self.name + (f"<{', '.join(a.render() for a in self.args)}>" if self.args else "")


@dataclass
class Signature:
    name: str
    params: list[tuple[str, Type]]  # (name, declared type)
    returns: Type | None
    text: str  # as the prompt writes it, from `fn` to the body's `{`


class _Tokens:
    def __init__(self, text: str):
        self.items, self.i = TOKEN_RE.findall(text), 0

    def peek(self) -> str:
        return self.items[self.i] if self.i < len(self.items) else ""

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if not tok or (want is not None and tok != want):
            raise Unsupported(f"expected {want or 'more'} at {tok or 'the end'!r}")
        self.i += 1
        return tok


def _type(t: _Tokens) -> Type:
    tok = t.take()
    if tok == "&":
        if t.peek().startswith("'"):
            t.take()
        mut = t.peek() == "mut" and bool(t.take())
        return Type("ref", args=(_type(t),), mut=mut)
    if tok == "(":
        items = []
        while t.peek() != ")":
            items.append(_type(t))
            if t.peek() != ")":
                t.take(",")
        t.take(")")
        return items[0] if len(items) == 1 and t.items[t.i - 2] != "," else Type("tuple", args=tuple(items))
    if tok == "[":
        inner = _type(t)
        if t.peek() == ";":
            t.take()
            n = t.take()
            t.take("]")
            if not n.isdigit():
                raise Unsupported(f"array length {n!r}")
            return Type("array", name=n, args=(inner,))
        t.take("]")
        return Type("slice", args=(inner,))
    if not re.fullmatch(r"[A-Za-z_]\w*", tok) or tok in ("dyn", "impl", "fn", "mut"):
        raise Unsupported(f"`{tok}` types")
    path = tok
    while t.peek() == "::":
        t.take()
        path += "::" + t.take()
    args = []
    if t.peek() == "<":
        t.take()
        while t.peek() != ">":
            if t.peek().startswith("'"):
                raise Unsupported(f"lifetime arguments of {path}")
            args.append(_type(t))
            if t.peek() != ">":
                t.take(",")
        t.take(">")
    return Type("path", name=path, args=tuple(args))


def check(ty: Type, behind_ref: bool = False, top: bool = False) -> None:
    """Raise Unsupported unless the codec (codecs/wire.rs) carries values of `ty` (`top`: a parameter's own type,
    where `&mut` is passed as a local of the dispatcher; a nested or returned one has no wire form)."""
    if ty.kind == "ref":
        if ty.mut and not top:
            raise Unsupported("`&mut` inside a type or as a result")
        check(ty.args[0], behind_ref=True)
    elif ty.kind == "slice":
        if not behind_ref:
            raise Unsupported("unsized slice")
        check(ty.args[0])
    elif ty.kind in ("tuple", "array"):
        if len(ty.args) > MAX_TUPLE:
            raise Unsupported(f"tuples of more than {MAX_TUPLE}")
        for a in ty.args:
            check(a)
    else:
        *prefix, last = ty.name.split("::")
        if any(p not in STD_PREFIXES for p in prefix):
            raise Unsupported(f"type {ty.name}")
        if last == "str" and behind_ref and not ty.args:
            return
        if last in LEAVES and not ty.args:
            return
        if GENERICS.get(last) != len(ty.args):
            raise Unsupported(f"type {ty.render()}")
        for a in ty.args:
            check(a)


def parse_signature(text: str) -> Signature:
    """The entry point's header (`fn f<'a>(x: T, mut y: U) -> R`, as rust_source.entry_header returns it)."""
    t = _Tokens(text)
    t.take("fn")
    name = t.take()
    if t.peek() == "<":  # lifetimes only: a type or const parameter has no single wire form
        t.take()
        while t.peek() != ">":
            if not t.take().startswith("'") or t.peek() not in (",", ">"):
                raise Unsupported("generic parameters")
            if t.peek() == ",":
                t.take()
        t.take(">")
    t.take("(")
    params = []
    while t.peek() != ")":
        if t.peek() == "mut":
            t.take()
        pname = t.take()
        if not re.fullmatch(r"[A-Za-z_]\w*", pname):
            raise Unsupported(f"parameter pattern {pname!r}")
        t.take(":")
        ty = _type(t)
        check(ty, top=True)
        params.append((pname, ty))
        if t.peek() != ")":
            t.take(",")
    t.take(")")
    returns = None
    if t.peek() == "->":
        t.take()
        returns = _type(t)
        check(returns)
    if t.peek():
        raise Unsupported(f"`{t.peek()}` after the signature")
    return Signature(name, params, returns, text)


# --------------------------------------------------------------------------- the candidate's program

def _local(ty: Type) -> tuple[str, str]:
    """(the local's type, how it is passed) for a parameter: top-level references own their value."""
    if ty.kind != "ref":
        return ty.render(), ""
    inner = ty.args[0]
    if inner.kind == "path" and inner.last() == "str":
        owned = "::std::string::String"
    elif inner.kind == "slice":
        owned = f"::std::vec::Vec<{inner.args[0].render()}>"
    else:
        owned = inner.render()
    return owned, "&mut " if ty.mut else "&"


def candidate_program(program: str, sig: Signature) -> str:
    """The candidate's code, its own `fn main` renamed, with the dispatcher and the codec after it."""
    masked = mask(program)
    for kind, name, start in reversed(top_level_items(program)):
        if kind == "fn" and name == "main":
            m = re.compile(r"fn\s+main\b").search(masked, start)
            program = program[:m.start()] + "fn rrtf_candidate_main" + program[m.end():]
    lets, args = [], []
    for i, (_, ty) in enumerate(sig.params):
        local, how = _local(ty)
        lets.append(f"    let mut rrtf_a{i}: {local} = rrtf_wire::Dec::dec(rrtf_r)?;\n")
        args.append(f"{how}rrtf_a{i}")
    return (program + "\n\nfn main() { rrtf_wire::serve(rrtf_dispatch) }\n"
            "fn rrtf_dispatch(rrtf_name: &str, rrtf_n: usize, rrtf_r: &mut rrtf_wire::Reader)"
            " -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {\n"
            f"    if rrtf_name != {_rust_str(sig.name)} {{ return Err(::std::format!(\"no function {{}}\", rrtf_name)); }}\n"
            f"    rrtf_wire::arity(rrtf_n, {len(sig.params)})?;\n" + "".join(lets) +
            "    rrtf_r.finish()?;\n"
            f"    Ok(rrtf_wire::reply(|| {sig.name}({', '.join(args)})))\n}}\n")  # rrtf_wire: the codec's crate (languages/rust.py)


def _rust_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- the test's program

def stub(sig: Signature) -> str:
    """The entry point as the test sees it: the prompt's signature, a call over the wire as its body."""
    puts = "".join(f"    rrtf_wire::Enc::enc(&{name}, &mut rrtf_args);\n" for name, _ in sig.params)
    return (f"{sig.text} {{\n    let mut rrtf_args: ::std::vec::Vec<u8> = ::std::vec::Vec::new();\n{puts}"
            f"    match rrtf_wire::call({_rust_str(sig.name)}, {len(sig.params)}, &rrtf_args) "
            "{ Ok(v) => v, Err(e) => rrtf_h::call_failed(e) }\n}\n")


SIPHASH = r"""
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
        let line = format!("{:016x} {}\n", sip(&key(), msg.as_bytes()), msg);
        let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
        let _ = out.write_all(line.as_bytes());
    }
    fn clean(s: &str) -> String { s.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect() }
    fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() { format!("AssertionError: {}", s) }
        else if let Some(s) = payload.downcast_ref::<String>() { format!("AssertionError: {}", s) }
        %(call_failed_text)s
        else { "AssertionError: panic".to_string() }
    }
    pub fn case<F: FnOnce()>(i: usize, f: F) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => emit(&format!("{} P", i)),
            Err(payload) => {
                let text = panic_text(&*payload);
                std::mem::forget(payload);  // a candidate's payload may panic when dropped
                emit(&format!("{} F {}", i, clean(&text)));
            }
        }
    }
"""
# The separated test's reporter: the key is the first line on the report socket (the runner writes it
# before the program starts); a failed call fails its case with the call's own message; when the
# candidate's program has ended, the test says so on stderr and stops without its END, so the verdict
# gives the candidate's own end as one process did: a crash, memory, or "exited before the tests finished".
PAIR_KEY = r"""
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];  // rustc 1.63: no OnceLock
    fn key() -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&KEY[0].load(Ordering::SeqCst).to_le_bytes());
        k[8..].copy_from_slice(&KEY[1].load(Ordering::SeqCst).to_le_bytes());
        k
    }
    pub fn read_key() {
        let mut channel = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
        let (mut line, mut b) = (Vec::new(), [0u8; 1]);
        while line.len() <= 32 && matches!(channel.read(&mut b), Ok(1)) && b[0] != b'\n' { line.push(b[0]); }
        let mut k = [0u8; 16];
        for (i, pair) in line.chunks(2).enumerate().take(16) {
            k[i] = std::str::from_utf8(pair).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        }
        if line.len() != 32 { std::process::exit(3); }
        let mut half = [0u8; 8];
        half.copy_from_slice(&k[..8]);
        KEY[0].store(u64::from_le_bytes(half), Ordering::SeqCst);
        half.copy_from_slice(&k[8..]);
        KEY[1].store(u64::from_le_bytes(half), Ordering::SeqCst);
    }
    extern "C" { fn fork() -> i32; fn close(fd: i32) -> i32; }
    pub fn call_failed(e: ::rrtf_wire::CallError) -> ! {
        match e {
            ::rrtf_wire::CallError::Failed(msg) => std::panic::panic_any(::rrtf_wire::CallFailed(msg)),
            ::rrtf_wire::CallError::Gone(msg) => {
                eprintln!("the test stopped: {}", msg);
                // The runner collects the candidate's exit status (a crash, its memory: the verdict's reason) only
                // if it sees this program end while some output of the run is still open (Runner.wait in
                // sandbox/worker/runner.py): a child keeps stderr open a moment; the runner then kills it.
                if unsafe { fork() } == 0 {
                    unsafe { close(1); close(3); close(4); }
                    std::thread::sleep(std::time::Duration::from_secs(2));
                }
                std::process::exit(0)
            }
        }
    }
"""
PAIR_HOOKS = {"call_failed_text": "else if let Some(c) = payload.downcast_ref::<::rrtf_wire::CallFailed>() { c.0.clone() }"}
ONE_PROCESS_HOOKS = {"call_failed_text": ""}


def harness(test_fn: str, separated: bool) -> str:
    """The reporter module and `main` of the test's program (one-process: the key is compiled in, key.rs)."""
    body = SIPHASH
    for name, text in (PAIR_HOOKS if separated else ONE_PROCESS_HOOKS).items():
        body = body.replace(f"%({name})s", text)
    key = PAIR_KEY if separated else "    fn key() -> [u8; 16] { super::rrtf_key::KEY }\n"
    head = "" if separated else '#[path = "key.rs"]\nmod rrtf_key;\n'
    return (f"\n{head}mod rrtf_h {{\n    use std::io::Write;\n    use std::os::unix::io::FromRawFd;\n{key}{body}}}\n"
            f"fn main() {{\n    std::panic::set_hook(Box::new(|_| {{}}));\n{'    rrtf_h::read_key();' if separated else ''}\n"
            f"    tests::{test_fn}();\n    rrtf_h::emit(\"END\");\n}}\n")
