"""Java, process-separated: the candidate's program and the test's program, from the prompt's signatures.

The candidate's program is its `Solution` (package `cand`, as before), the codec (codecs/Wire.java, package
`rrtf_w`) and a generated dispatcher `cand.Rrtf_Dispatch__` whose `main` reads calls on fd 3, decodes the
arguments by the declared parameter types, calls the method and writes the result (or the exception) back.
The test's program is the rewritten test main (package `rrtf_t`), the reporter `R`, the codec and a trusted
`Solution`: the prompt's own text -- its helper methods run there, verbatim -- with the entry point's body
replaced by a stub that sends the call and decodes the reply as the declared return type. So the test's
program holds no candidate code and only JDK values that it decoded itself.

Signatures are read from the prompt (trusted) and validated against the types the codec decodes; anything
else (type variables, wildcards, a method the test calls that cannot be stubbed) is a `Fallback` with the
reason, and the problem keeps the one-process build (languages/java.py labels its verdicts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.compiled.clike import code_matches, split_top_level, strip_comments

WIRE_SOURCE = (Path(__file__).parent / "codecs" / "Wire.java").read_text()
WIRE_PACKAGE, CAND_PACKAGE, TEST_PACKAGE = "rrtf_w", "cand", "rrtf_t"
DISPATCH_CLASS = "Rrtf_Dispatch__"
# A method declaration that opens its body: modifiers, return type, name, parameters (no type variables).
DECL_RE = re.compile(r"(?P<mods>(?:\b(?:public|protected|private|static|final|synchronized)\s+)*)"
                     r"(?P<ret>\b[A-Za-z_][\w.]*\s*(?:<[\w.\s,<>\[\]?]*>)?(?:\s*\[\s*\])*)\s+(?P<name>[A-Za-z_]\w*)\s*"
                     r"\((?P<params>[^()]*)\)\s*(?:throws\s+[\w.,\s]+)?\{")
QUALIFIED = {**{n: f"java.util.{n}" for n in (
    "List", "ArrayList", "LinkedList", "Collection", "Set", "HashSet", "LinkedHashSet", "TreeSet", "Map", "HashMap",
    "LinkedHashMap", "TreeMap", "Optional")},
    **{n: f"java.lang.{n}" for n in ("Integer", "Long", "Short", "Byte", "Double", "Float", "Boolean", "Character",
                                     "String", "CharSequence", "Object", "Iterable")},
    "BigInteger": "java.math.BigInteger"}
PRIMITIVES = {"int", "long", "short", "byte", "double", "float", "boolean", "char"}
ARITY = {**{n: 1 for n in ("List", "ArrayList", "LinkedList", "Collection", "Iterable", "Set", "HashSet", "LinkedHashSet",
                           "TreeSet", "Optional")}, **{n: 2 for n in ("Map", "HashMap", "LinkedHashMap", "TreeMap")}}
OBJECT_METHODS = {"equals", "hashCode", "toString", "getClass", "notify", "notifyAll", "wait"}


class Fallback(ValueError):
    """The problem cannot be separated; the message says why (it labels the verdict)."""


@dataclass(frozen=True)
class JType:
    name: str  # a simple name, a primitive, "void" or "[]" (an array of args[0])
    args: tuple[JType, ...] = ()

    def wire(self) -> str:
        """The text Wire.type() parses."""
        if self.name == "[]":
            return self.args[0].wire() + "[]"
        return self.name + (f"<{','.join(a.wire() for a in self.args)}>" if self.args else "")

    def java(self) -> str:
        """Java source for the type, fully qualified (generated code does not depend on imports)."""
        if self.name == "[]":
            return self.args[0].java() + "[]"
        base = QUALIFIED.get(self.name, self.name)
        return base + (f"<{', '.join(a.java() for a in self.args)}>" if self.args else "")


def parse_type(text: str, *, result: bool = False) -> JType:
    """A declared type, validated against what the codec decodes; Fallback otherwise."""
    s = re.sub(r"\s+", "", text)
    s = re.sub(r"\bjava\.(?:util|lang|math)\.", "", s)
    s = s.replace("...", "[]")  # varargs receive an array
    pos = 0

    def one() -> JType:
        nonlocal pos
        m = re.compile(r"[A-Za-z_]\w*").match(s, pos)
        if not m:
            raise Fallback(f"type {text!r} is outside the codec")
        name, pos = m.group(), m.end()
        args: list[JType] = []
        if s.startswith("<", pos):
            pos += 1
            args.append(one())
            while s.startswith(",", pos):
                pos += 1
                args.append(one())
            if not s.startswith(">", pos):
                raise Fallback(f"type {text!r} is outside the codec")
            pos += 1
        ok = name in PRIMITIVES and not args or name in QUALIFIED and len(args) in (0, ARITY.get(name, 0))
        if not ok:
            raise Fallback(f"type {text!r} is outside the codec ({name})")
        t = JType(name, tuple(args))
        while s.startswith("[]", pos):
            pos, t = pos + 2, JType("[]", (t,))
        return t

    if result and s == "void":
        return JType("void")
    t = one()
    if pos != len(s):
        raise Fallback(f"type {text!r} is outside the codec")
    return t


@dataclass(frozen=True)
class Method:
    name: str
    static: bool
    ret: JType
    ret_text: str
    params: tuple[tuple[JType, str], ...]  # (type, parameter name)


def parse_decl(m: re.Match) -> Method:
    params = []
    for p in split_top_level(m.group("params"), generics=True):
        words = re.sub(r"@\w+|\bfinal\b", " ", p).strip()
        pm = re.fullmatch(r"(.+?)\s*\b([A-Za-z_]\w*)", words, re.S)
        if not words:
            continue
        if not pm:
            raise Fallback(f"cannot read the parameter {p.strip()!r}")
        params.append((parse_type(pm.group(1)), pm.group(2)))
    return Method(m.group("name"), "static" in m.group("mods").split(), parse_type(m.group("ret"), result=True),
                  m.group("ret").strip(), tuple(params))


def entry_method(prefix: str) -> tuple[Method, re.Match]:
    """The method whose body the prompt opens (its last declaration, ending the prefix)."""
    end = len(prefix.rstrip())
    last = None
    for m in code_matches(prefix, DECL_RE):
        if m.end() == end and last is None:  # the first match: later ones start inside it, without the modifiers
            last = m
    if last is None:
        raise Fallback("the prompt does not end with a method declaration")
    return parse_decl(last), last


def called_methods(test: str, variables: set[str], cls: str) -> set[str]:
    names = set()
    for target in (*variables, cls):
        names |= {m.group(1) for m in code_matches(test, re.compile(rf"\b{re.escape(target)}\s*\.\s*(\w+)\s*\("))}
    return names - OBJECT_METHODS


def candidate_methods(completion: str, names: set[str]) -> list[Method]:
    """Stubs for methods the test calls that only the candidate defines: from its own signatures (it can only
    hurt itself), rebuilt from the validated parts, never copied as text into the test's program."""
    found: dict[str, list[Method]] = {}
    ends = set()
    for m in code_matches(strip_comments(completion), DECL_RE):
        if m.group("name") in names and m.end() not in ends:  # one declaration per body (see entry_method)
            ends.add(m.end())
            found.setdefault(m.group("name"), []).append(parse_decl(m))
    missing = names - set(found)
    if missing:
        raise Fallback(f"the test calls {', '.join(sorted(missing))}, which neither the prompt nor the candidate declares")
    if any(len(ms) > 1 for ms in found.values()):
        raise Fallback("the test calls an overloaded method of the candidate")
    return [ms[0] for ms in found.values()]


def _stub(method: Method) -> str:
    args = ", ".join(name for _, name in method.params)
    call = (f'{WIRE_PACKAGE}.Wire.call("{method.name}", {WIRE_PACKAGE}.Wire.type("{method.ret.wire()}"), '
            f"new Object[] {{{args}}})")
    return f"        {call};\n" if method.ret.name == "void" else f"        return ({method.ret.java()}) {call};\n"


def _declaration(method: Method) -> str:
    params = ", ".join(f"{t.java()} {name}" for t, name in method.params)
    ret = "void" if method.ret.name == "void" else method.ret.java()
    return f"    public {'static ' * method.static}{ret} {method.name}({params}) {{\n"


def trusted_solution(prefix: str, entry: Method, extras: list[Method]) -> str:
    """The test's `Solution`: the prompt verbatim (helpers included), the entry point's body a stub."""
    more = "".join(_declaration(m) + _stub(m) + "    }\n" for m in extras)
    return f"package {TEST_PACKAGE};\n{prefix}{_stub(entry)}    }}\n{more}}}\n"


def dispatcher(methods: list[Method], cls: str) -> str:
    cases = []
    for m in methods:
        types = ", ".join(f'"{t.wire()}"' for t, _ in m.params)
        args = ", ".join(f"({t.java()}) a[{i}]" for i, (t, _) in enumerate(m.params))
        target = cls if m.static else "self()"
        call = f"{target}.{m.name}({args})"
        done = f"{call}; w.reply(null);" if m.ret.name == "void" else f"w.reply({call});"
        cases.append(f'                case "{m.name}": {{ Object[] a = w.args({WIRE_PACKAGE}.Wire.types({types})); {done} break; }}')
    return f"""package {CAND_PACKAGE};

@SuppressWarnings("unchecked")
public final class {DISPATCH_CLASS} {{
    private static {cls} instance;

    private static {cls} self() {{  // made at the first call, as the test made its own
        if (instance == null) instance = new {cls}();
        return instance;
    }}

    public static void main(String[] argv) throws Exception {{
        {WIRE_PACKAGE}.Wire.Server w = new {WIRE_PACKAGE}.Wire.Server();
        for (String name; (name = w.next()) != null; ) {{
            try {{
                switch (name) {{
{chr(10).join(cases)}
                default: throw new IllegalStateException("no method " + name);
                }}
            }} catch (Throwable t) {{
                w.raise(t);
            }}
        }}
        System.exit(0);
    }}
}}
"""


def wire_source() -> str:
    return f"package {WIRE_PACKAGE};\n{WIRE_SOURCE}"
