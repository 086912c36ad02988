"""Java, process-separated (sandbox/compiled/java_pair.py, codecs/Wire.java): the candidate's code runs in a JVM
of its own and the test reaches it only through calls that cross as plain data. Real processes, real javac
and JVMs, the default isolation.

The codec is checked against the grammar's reference (sandbox/compiled/wire.py) in both directions by one
candidate that takes the calls socket over at its first call: it prints every call's payload (the test's
Java encoder; decoded here by wire.py) and answers with replies that wire.py encoded (decoded by the test's
typed Java decoder, compared in Java), some of them malformed on purpose."""
from __future__ import annotations

import base64
import math
import shutil

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig, Status
from sandbox.base.records import Problem
from sandbox.compiled import wire
from sandbox.compiled.wire import Char, Some, float32

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="JDK not installed")
NAN, INF = float("nan"), float("inf")


class F32(float):
    """An argument sent as a Java float: compared after rounding to float32."""


def ok(value) -> bytes:
    return b"R" + wire.encode(value)


PREFIX = "import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    public List<Integer> first(List<Integer> xs) {\n"
# (test expression, method, its arguments as wire.py decodes them, reply payload, passes, error text)
CASES = [
    ("s.i(-2147483648) == 2147483647", "i", [-2**31], ok(2**31 - 1), True, ""),
    ("s.l(Long.MIN_VALUE) == Long.MAX_VALUE", "l", [-2**63], ok(2**63 - 1), True, ""),
    ("Double.isNaN(s.d(Double.NaN))", "d", [NAN], ok(NAN), True, ""),
    ("Double.doubleToRawLongBits(s.d(-0.0)) == Double.doubleToRawLongBits(-0.0)", "d", [-0.0], ok(-0.0), True, ""),
    ("s.d(Double.POSITIVE_INFINITY) == Double.NEGATIVE_INFINITY", "d", [INF], ok(-INF), True, ""),
    ("s.d(4.9E-324) == 0.1 + 0.2", "d", [5e-324], ok(0.1 + 0.2), True, ""),
    ("s.f(0.1f) == 0.1f", "f", [F32(0.1)], ok(float32(0.1)), True, ""),
    ("s.b(true) == false", "b", [True], ok(False), True, ""),
    ("s.c('\\u0436') == '\\u00e9'", "c", [Char("ж")], ok(Char("é")), True, ""),
    ('s.s("h\\u00e9llo \\ud834\\udd1e").equals("\\ud800x")', "s", ["héllo 𝄞"], ok("\ud800x"), True, ""),
    ('s.s("").isEmpty()', "s", [""], ok(""), True, ""),
    ('s.o(2.5).equals(List.of(1, "x", \'c\', List.of()))', "o", [2.5], ok([1, "x", Char("c"), []]), True, ""),
    ("s.o(null) == null", "o", [None], ok(None), True, ""),
    ("s.ll(List.of(List.of(), List.of(1, -2))).equals(List.of(List.of(3), List.of()))", "ll", [[[], [1, -2]]],
     ok([[3], []]), True, ""),
    ("s.lo(List.of(Optional.of(1), Optional.empty())).equals(Arrays.asList(Optional.empty(), Optional.of(-7)))", "lo",
     [[Some(1), None]], ok([None, Some(-7)]), True, ""),
    ("s.ld(List.of(1.5, -0.0)).equals(List.of(Double.NaN, 1e300))", "ld", [[1.5, -0.0]], ok([NAN, 1e300]), True, ""),
    ('s.ls(List.of("a", "")).equals(List.of("\\u00fc", "b c"))', "ls", [["a", ""]], ok(["ü", "b c"]), True, ""),
    ('s.lob(Arrays.asList(1, "a", \'c\', 2.5, true, null, Map.of(), List.of())).equals(Arrays.asList(1L << 40, null))',
     "lob", [[1, "a", Char("c"), 2.5, True, None, {}, []]], ok([2**40, None]), True, ""),
    ('s.msi(new LinkedHashMap<>(Map.of("a", 1))).equals(Map.of("", -1, "z", 2147483647))', "msi", [{"a": 1}],
     ok({"": -1, "z": 2**31 - 1}), True, ""),
    ('s.moo(new HashMap<>(Map.of(5, "x"))).equals(Map.of(1, List.of("y"), "k", Map.of()))', "moo", [{5: "x"}],
     ok({1: ["y"], "k": {}}), True, ""),
    ("s.oi(Optional.of(3)).get() == -3", "oi", [Some(3)], ok(Some(-3)), True, ""),
    ("s.os(Optional.empty()).isEmpty()", "os", [None], ok(None), True, ""),
    ('s.oo(Optional.of("q")).get().equals(List.of(1))', "oo", [Some("q")], ok(Some([1])), True, ""),
    ("Arrays.equals(s.ai(new int[] {1, -2}), new int[] {})", "ai", [[1, -2]], ok([]), True, ""),
    ('Arrays.equals(s.as(new String[] {"x"}), new String[] {"y", null})', "as", [["x"]], ok(["y", None]), True, ""),
    ("s.args(Long.MIN_VALUE, Integer.MIN_VALUE, 1e-310, 3.4028235e38f, Double.NEGATIVE_INFINITY)", "args",
     [-2**63, -2**31, 1e-310, F32(3.4028235e38), -INF], ok(True), True, ""),
    # Replies the typed decoder refuses: each fails its own case, the run goes on.
    ("s.i(1) == 1", "i", [1], b"Rs3:abc", False, "expected int"),
    ("s.i(2) == 2", "i", [2], b"Ri2147483648;", False, "does not fit int"),
    ("s.l(3) == 3", "l", [3], b"Ri" + b"1" * 41 + b";", False, "number too long"),
    ('s.s("a").equals("a")', "s", ["a"], b"Rs2:\xff\xfe", False, "bad UTF-8"),
    ("s.ll(List.of()).isEmpty()", "ll", [[]], b"Rl5:l0:", False, "length beyond the frame"),
    ("s.i(4) == 4", "i", [4], b"Ri4;i4;", False, "trailing bytes"),
    ("s.o(1) == null", "o", [1], b"R" + b"l1:" * 150 + b"l0:", False, "nested too deeply"),
    ("s.oi(Optional.empty()).isEmpty()", "oi", [None], b"Ron", False, "Optional of null"),
    ("s.b(true)", "b", [True], b"Es4:boom", False, "candidate raised: boom"),
    ("s.b(false)", "b", [False], b"X", False, "not a reply"),
    ("s.i(5) == 5", "i", [5], None, False, "over the limit"),  # a frame header announcing 99,999,999 bytes
    ("s.i(6) == 6", "i", None, None, False, "bad reply from the candidate's program"),  # the stream is lost: not sent
]
SIGNATURES = """
    public int i(int x) { return 0; }
    public long l(long x) { return 0; }
    public double d(double x) { return 0; }
    public float f(float x) { return 0; }
    public boolean b(boolean x) { return false; }
    public char c(char x) { return 'x'; }
    public String s(String x) { return x; }
    public Object o(Object x) { return x; }
    public List<List<Integer>> ll(List<List<Integer>> x) { return x; }
    public List<Optional<Integer>> lo(List<Optional<Integer>> x) { return x; }
    public List<Double> ld(List<Double> x) { return x; }
    public List<String> ls(List<String> x) { return x; }
    public List<Object> lob(List<Object> x) { return x; }
    public Map<String, Integer> msi(Map<String, Integer> x) { return x; }
    public Map<Object, Object> moo(Map<Object, Object> x) { return x; }
    public Optional<Integer> oi(Optional<Integer> x) { return x; }
    public Optional<String> os(Optional<String> x) { return x; }
    public Optional<Object> oo(Optional<Object> x) { return x; }
    public int[] ai(int[] x) { return x; }
    public String[] as(String[] x) { return x; }
    public void v(int x) { }
    public boolean args(long a, int b, double c, float d, double e) { return false; }
"""
# The candidate answers its first call itself and then serves the socket by hand: prints each call's payload,
# writes the next prepared reply (already framed) as raw bytes.
TAKE_OVER = """        try {
            java.io.FileDescriptor fd = new java.io.FileDescriptor();
            java.lang.reflect.Field f = java.io.FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            f.setInt(fd, 3);
            java.io.InputStream in = new java.io.BufferedInputStream(new java.io.FileInputStream(fd));
            java.io.OutputStream out = new java.io.FileOutputStream(fd);
            String[] replies = {REPLIES};
            for (int k = 0; k < replies.length; k++) {
                if (k > 0) {
                    int n = 0, c;
                    while ((c = in.read()) != '\\n') { if (c < 0) Runtime.getRuntime().halt(0); n = n * 10 + c - '0'; }
                    byte[] p = in.readNBytes(n);
                    System.out.println("CALL " + Base64.getEncoder().encodeToString(p));
                }
                out.write(Base64.getDecoder().decode(replies[k]));
                out.flush();
            }
            while (in.read() >= 0) { }
        } catch (Exception e) { e.printStackTrace(); }
        Runtime.getRuntime().halt(0);
        return null;
    }
""" + SIGNATURES + "}\n"


def round_trip_problem() -> tuple[Problem, str]:
    checks = ",\n                ".join(["f0.equals(List.of(7))", *(c[0] for c in CASES)])
    test = ("public class Main {\n    public static void main(String[] args) {\n        Solution s = new Solution();\n"
            "        List<Integer> f0 = s.first(new ArrayList<>(List.of(1, 2)));\n        s.v(7);\n"
            f"        List<Boolean> correct = Arrays.asList(\n                {checks}\n        );\n"
            "        if (correct.contains(false)) {\n            throw new AssertionError();\n        }\n    }\n}\n")
    replies = [wire.frame(b"R" + wire.encode([7])), wire.frame(b"Rn")]
    replies += [wire.frame(c[3]) if c[3] is not None else b"99999999\n" for c in CASES if c[2] is not None]
    text = ", ".join(f'"{base64.b64encode(r).decode()}"' for r in replies)
    problem = Problem(task_id="Java/wire", prompt=PREFIX, code_prefix=PREFIX, entry_point="first", language="java", test=test)
    return problem, TAKE_OVER.replace("REPLIES", text)


def same(got, want) -> bool:
    """Equal as wire values: float bits (NaN, -0.0), Char and Some kept apart from str and plain values."""
    if isinstance(want, F32):
        return isinstance(got, float) and float32(got) == float32(want)
    if isinstance(want, float):
        return isinstance(got, float) and (math.isnan(got) and math.isnan(want) or got == want and
                                           math.copysign(1, got) == math.copysign(1, want))
    if isinstance(want, Some):
        return isinstance(got, Some) and same(got.value, want.value)
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and list(got) == list(want) and all(same(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2, verdict_output_chars=4000)) as sb:
        yield sb


def test_codec_round_trip_and_bad_replies_against_the_reference(sandbox):
    problem, completion = round_trip_problem()
    v = sandbox.check(problem, completion)
    assert v.isolation == "bwrap", v  # two programs, not one
    calls = [line.split(" ", 1)[1] for line in v.stdout.splitlines() if line.startswith("CALL ")]
    decoded = []
    for b64 in calls:
        payload = base64.b64decode(b64)
        name, pos = wire.decode(payload)
        args, end = wire.decode(payload, pos)
        assert end == len(payload)
        decoded.append((name, args))
    want = [("v", [7])] + [(c[1], c[2]) for c in CASES if c[2] is not None]
    assert [n for n, _ in decoded] == [n for n, _ in want], v.stdout
    for (name, got), (_, args) in zip(decoded, want, strict=True):
        assert same(got, args), (name, got, args)
    results = [(t.passed, t.error) for t in v.tests]
    assert results[0] == (True, "")
    for (passed, error), case in zip(results[1:], CASES, strict=True):
        assert passed == case[4] and case[5] in error, (case[0], error)
    assert v.status == Status.PARTIAL


JAVA = {p.task_id: p for p in load_humanevalpack("java")}
ALWAYS_EQUAL = """        return new ArrayList<String>() {
            @Override public boolean equals(Object o) { return true; }
            @Override public int hashCode() { return 0; }
        };
    }
}
"""
# Looks for the key and the report channel: the harness's classes by reflection, every fd, its own memory and
# every other process's through Unsafe and /proc; forges tagged lines with whatever it found on every fd.
HUNT = """        java.util.Set<String> found = new java.util.TreeSet<>();
        for (String name : new String[] {"rrtf_t.R", "rrtf_t.Main", "R", "Main"}) {
            try { Class.forName(name); found.add("class " + name); } catch (Throwable e) { }
        }
        try {
            java.lang.reflect.Field uf = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            uf.setAccessible(true);
            sun.misc.Unsafe u = (sun.misc.Unsafe) uf.get(null);
            if (u != null) found.add("unsafe");
        } catch (Throwable e) { }
        java.util.regex.Pattern hex = java.util.regex.Pattern.compile("[0-9a-f]{32}");
        java.io.File[] procs = new java.io.File("/proc").listFiles();
        for (java.io.File p : procs == null ? new java.io.File[0] : procs) {
            if (!p.getName().matches("[0-9]+")) continue;
            try (java.io.RandomAccessFile mem = new java.io.RandomAccessFile(new java.io.File(p, "mem"), "r")) {
                for (String line : java.nio.file.Files.readAllLines(new java.io.File(p, "maps").toPath())) {
                    String[] r = line.split(" ")[0].split("-");
                    long a = Long.parseUnsignedLong(r[0], 16), b = Long.parseUnsignedLong(r[1], 16);
                    if (!line.split(" ")[1].startsWith("rw") || b - a > (16L << 20)) continue;
                    byte[] buf = new byte[(int) (b - a)];
                    try { mem.seek(a); mem.readFully(buf); } catch (Throwable e) { continue; }
                    java.util.regex.Matcher m = hex.matcher(new String(buf, java.nio.charset.StandardCharsets.ISO_8859_1));
                    while (m.find() && found.size() < 64) found.add(m.group());
                }
            } catch (Throwable e) { }
        }
        System.out.println("hunt found: " + found.stream().filter(t -> !t.matches("[0-9a-f]{32}")).toList());
        System.out.flush();
        StringBuilder all = new StringBuilder();
        for (String t : found) all.append(t).append(" BEGIN 7\\n").append(t).append(" 0 P\\n").append(t).append(" END\\n");
        for (int fd = 0; fd < 64; fd++) {
            if (fd == 1 || fd == 2) continue;  // its own output: what it found is printed above
            try {
                java.io.FileDescriptor d = new java.io.FileDescriptor();
                java.lang.reflect.Field f = java.io.FileDescriptor.class.getDeclaredField("fd");
                f.setAccessible(true);
                f.setInt(d, fd);
                new java.io.FileOutputStream(d).write(all.toString().getBytes());
            } catch (Throwable e) { }
        }
        return false;
    }
}
"""
STATIC_EXIT = "        return false;\n    }\n    static { System.out.println(\"0 P\\nEND\"); System.exit(0); }\n}\n"
FIRST_CALL_EXIT = "        System.exit(0);\n        return true;\n    }\n}\n"
# Writes replies of its own on fd 3 -- "true" for every later call, then garbage -- and answers true itself.
FORGED_REPLIES = """        try {
            java.io.FileDescriptor d = new java.io.FileDescriptor();
            java.lang.reflect.Field f = java.io.FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            f.setInt(d, 3);
            java.io.OutputStream o = new java.io.FileOutputStream(d);
            for (int i = 0; i < 3; i++) o.write("2\\nRT".getBytes());
            o.write("5\\nRZZZZ12\\nzz".getBytes());
        } catch (Throwable e) { }
        try { java.nio.file.Files.writeString(java.nio.file.Path.of("/proc/self/fd/3"), "2\\nRT"); } catch (Throwable e) { }
        return true;
    }
}
"""
# Reads whatever test code it can reach on disk: the test's classes, the other program's dirs, any .class/.java.
READ_TEST = """        int read = 0;
        java.util.List<java.nio.file.Path> paths = new java.util.ArrayList<>();
        for (String root : new String[] {"..", "/work", "/tmp", "/rrtf"}) {
            try (java.util.stream.Stream<java.nio.file.Path> w = java.nio.file.Files.walk(java.nio.file.Path.of(root))) {
                w.limit(20000).forEach(paths::add);
            } catch (Throwable e) { }
        }
        for (String p : new String[] {"../bin/tclasses/rrtf_t/Main.class", "../bin/tclasses/rrtf_t/Solution.class",
                                      "../u/test/rrtf_t/Main.java", "../home"}) paths.add(java.nio.file.Path.of(p));
        for (java.nio.file.Path p : paths) {
            String n = p.toString();
            if (!(n.contains("rrtf_t") || n.contains("tclasses") || n.endsWith("home"))) continue;
            try { if (java.nio.file.Files.readAllBytes(p).length > 0) read++; } catch (Throwable e) { }
            try (java.util.stream.Stream<java.nio.file.Path> l = java.nio.file.Files.list(p)) { read += l.count(); } catch (Throwable e) { }
        }
        System.out.println("test files read: " + read);
        return true;
    }
}
"""
CRASH_MID_RUN = """        if (threshold == 0.3) return false;
        Runtime.getRuntime().halt(3);
        return true;
    }
}
"""


def test_attacks_are_not_passed_and_crashes_are_runtime_errors(sandbox):
    java0, java1 = JAVA["Java/0"], JAVA["Java/1"]  # hasCloseElements (boolean), separateParenGroups (List<String>)
    samples = {"equals": (java1, ALWAYS_EQUAL), "hunt": (java0, HUNT), "static": (java0, STATIC_EXIT),
               "exit": (java0, FIRST_CALL_EXIT), "forged": (java0, FORGED_REPLIES), "read": (java0, READ_TEST),
               "crash": (java0, CRASH_MID_RUN), "right": (java1, java1.canonical_solution)}
    keys = list(samples)
    verdicts = {keys[v.sample_index]: v for v in sandbox.check_many([(p, c, i) for i, (p, c) in enumerate(samples.values())])}
    assert verdicts["right"].passed and verdicts["right"].isolation == "bwrap", verdicts["right"]
    for key in keys[:-1]:
        v = verdicts[key]
        assert not v.passed and v.isolation == "bwrap", (key, v)
    assert verdicts["equals"].passed_tests == 0
    assert "hunt found: [unsafe]" in verdicts["hunt"].stdout, verdicts["hunt"].stdout  # no harness class in its JVM
    assert verdicts["hunt"].passed_tests < 7
    for key in ("static", "exit"):  # the candidate's program ended at the first call: every case failed
        v = verdicts[key]
        assert v.status == Status.RUNTIME_ERROR and v.passed_tests == 0, (key, v)
        assert "candidate's program" in v.reason, (key, v.reason)
    assert "test files read: 0" in verdicts["read"].stdout, verdicts["read"].stdout
    assert verdicts["forged"].passed_tests < 7
    crash = verdicts["crash"]  # wrong at its first call, gone at its second
    assert crash.status == Status.RUNTIME_ERROR and "ended before it replied" in crash.reason, crash
    assert crash.tests[0].error.startswith("AssertionError") and "ended" in crash.tests[1].error


GENERIC_PREFIX = "import java.util.*;\n\nclass Solution {\n    public <T> List<T> twice(List<T> xs) {\n"
GENERIC = Problem(task_id="Java/generic", prompt=GENERIC_PREFIX, code_prefix=GENERIC_PREFIX, entry_point="twice",
                  language="java", test="""public class Main {
    public static void main(String[] args) {
        Solution s = new Solution();
        List<Boolean> correct = Arrays.asList(
                s.twice(List.of(1)).equals(List.of(1, 1)),
                s.twice(List.of("a")).size() == 2
        );
        if (correct.contains(false)) {
            throw new AssertionError();
        }
    }
}
""")


def test_a_signature_outside_the_codec_keeps_one_process_and_says_so(sandbox):
    right = "        List<T> out = new ArrayList<>(xs);\n        out.addAll(xs);\n        return out;\n    }\n}\n"
    v = sandbox.check(GENERIC, right)
    assert v.isolation == "bwrap+one-process", v
    assert v.passed, v
