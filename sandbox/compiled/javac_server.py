"""A warm javac: one long-lived, isolated compiler JVM per worker thread instead of a javac per candidate.

A cold `javac` costs ~0.5-1 s of CPU (JVM start, loading and warming up the compiler); a warm one
compiles a HumanEval-sized file in ~60 ms. The server runs inside bubblewrap (no network, read-only
system, unprivileged uid) like everything else that touches candidate text, but it never runs
candidate code: `-proc:none` disables annotation processors, so compiling is pure parsing/type
checking. The class files it returns are then run by `compiled.check_compiled` in a fresh sandbox per
candidate. Used at isolation level "bwrap" only; other levels compile in the run sandbox.

The wire codec of process-separated runs (codecs/Wire.java, sandbox/compiled/java_pair.py) is compiled once
per JDK into the host cache and put on the server's class path, so a sample compiles only its own code and
the generated dispatcher against it (compiling the codec with every sample cost ~3x the compile); its class
files are then added to both programs (`wire_classes`).

Protocol (stdin/stdout, big-endian, java.io.Data*Stream): request = int n, n x (UTF name, int len,
bytes); reply = bool ok, int len + diagnostics, int m, m x (UTF class name, int len, bytes).
"""
from __future__ import annotations

import atexit
import hashlib
import os
import select
import shutil
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import isolation, seccomp, supervise
from sandbox.toolcache import build_once

SERVER_CLASS = "RrtfJavac"
RESTART_AFTER = 500  # compiles per server: bounds heap growth and any state javac keeps
SERVER_HEAP_MB = 512
JVM_FLAGS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"]

SERVER_SOURCE = r"""import javax.tools.*;
import java.io.*;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.*;

/** A warm javac: reads sources on stdin, answers with class files or diagnostics on stdout. */
public class RrtfJavac {
    static final class Source extends SimpleJavaFileObject {
        final String code;
        Source(String name, String code) { super(URI.create("string:///" + name), Kind.SOURCE); this.code = code; }
        @Override public CharSequence getCharContent(boolean ignoreEncodingErrors) { return code; }
    }
    static final class ClassOut extends SimpleJavaFileObject {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ClassOut(String className) { super(URI.create("mem:///" + className.replace('.', '/') + ".class"), Kind.CLASS); }
        @Override public OutputStream openOutputStream() { return bytes; }
    }
    public static void main(String[] args) throws IOException {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager std = javac.getStandardFileManager(null, null, StandardCharsets.UTF_8);
        List<String> options = new ArrayList<>(Arrays.asList("-nowarn", "-Xlint:none", "-proc:none", "-implicit:none", "-g:none"));
        if (args.length > 0) options.addAll(Arrays.asList("-classpath", args[0]));  // precompiled classes (the wire codec)
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(System.out));
        while (true) {
            int n;
            try { n = in.readInt(); } catch (EOFException e) { return; }
            List<JavaFileObject> sources = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String name = in.readUTF();
                byte[] b = new byte[in.readInt()];
                in.readFully(b);
                sources.add(new Source(name, new String(b, StandardCharsets.UTF_8)));
            }
            Map<String, ClassOut> classes = new LinkedHashMap<>();
            JavaFileManager fm = new ForwardingJavaFileManager<JavaFileManager>(std) {
                @Override public JavaFileObject getJavaFileForOutput(Location location, String className,
                        JavaFileObject.Kind kind, FileObject sibling) {
                    ClassOut o = new ClassOut(className);
                    classes.put(className, o);
                    return o;
                }
            };
            StringWriter diagnostics = new StringWriter();
            boolean ok;
            try {
                ok = javac.getTask(diagnostics, fm, null, options, null, sources).call();
            } catch (Throwable t) {
                ok = false;
                diagnostics.write("error: compiler crashed: " + t);
            }
            byte[] d = diagnostics.toString().getBytes(StandardCharsets.UTF_8);
            out.writeBoolean(ok);
            out.writeInt(d.length);
            out.write(d);
            out.writeInt(ok ? classes.size() : 0);
            if (ok) {
                for (Map.Entry<String, ClassOut> e : classes.entrySet()) {
                    byte[] b = e.getValue().bytes.toByteArray();
                    out.writeUTF(e.getKey());
                    out.writeInt(b.length);
                    out.write(b);
                }
            }
            out.flush();
        }
    }
}
"""


@dataclass
class CompileResult:
    ok: bool
    diagnostics: str
    classes: dict[str, bytes] = field(default_factory=dict)  # class name -> bytes
    timed_out: bool = False

    def class_files(self) -> dict[str, bytes]:
        return {name.replace(".", "/") + ".class": data for name, data in self.classes.items()}


def _java_bin() -> str | None:
    java = shutil.which("java", path=isolation.SANDBOX_PATH)
    return os.path.realpath(java) if java else None


def server_dir() -> Path | None:
    """Compiled server classes in the host cache (built once per JDK), or None without a JDK."""
    java = _java_bin()
    javac = shutil.which("javac", path=isolation.SANDBOX_PATH)
    if not java or not javac:
        return None
    key = hashlib.sha256(f"{os.path.realpath(javac)}|{SERVER_SOURCE}".encode()).hexdigest()[:16]

    def build(tmp: Path) -> bool:
        (tmp / f"{SERVER_CLASS}.java").write_text(SERVER_SOURCE)
        r = subprocess.run([javac, "-d", str(tmp), str(tmp / f"{SERVER_CLASS}.java")], capture_output=True, timeout=300)
        return r.returncode == 0

    return build_once(f"javac-server-{key}", f"{SERVER_CLASS}.class", build)


def wire_dir() -> Path | None:
    """The codec's compiled classes in the host cache (built once per JDK and codec), or None."""
    javac = shutil.which("javac", path=isolation.SANDBOX_PATH)
    if not javac:
        return None
    from sandbox.compiled.java_pair import WIRE_PACKAGE, wire_source
    source = wire_source()
    key = hashlib.sha256(f"{os.path.realpath(javac)}|{source}".encode()).hexdigest()[:16]

    def build(tmp: Path) -> bool:
        (tmp / "src").mkdir()
        (tmp / "src" / "Wire.java").write_text(source)
        r = subprocess.run([javac, "-nowarn", "-g:none", "-encoding", "UTF-8", "-d", str(tmp), str(tmp / "src" / "Wire.java")],
                           capture_output=True, timeout=300)
        shutil.rmtree(tmp / "src")
        return r.returncode == 0

    return build_once(f"java-wire-{key}", f"{WIRE_PACKAGE}/Wire.class", build)


_wire: dict[str, bytes] | None = None


def wire_classes() -> dict[str, bytes] | None:
    """{relative path: class file} of the precompiled codec, or None (then it is compiled with each program)."""
    global _wire
    if _wire is None:
        d = wire_dir()
        if d is None:
            return None
        _wire = {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*.class"))}
    return _wire


class JavacServer:
    """One warm compiler process. Not thread-safe: use `for_thread()`."""

    def __init__(self, classes_dir: Path, classpath: Path | None = None):
        self.classes_dir, self.classpath = classes_dir, classpath
        self.proc: subprocess.Popen | None = None
        self.compiles = 0

    def _start(self) -> None:
        uid = isolation.candidate_uid()
        fd = seccomp.filter_fd()
        binds = [str(self.classes_dir), *([str(self.classpath)] if self.classpath else [])]
        argv = isolation.bwrap_argv(tmpfs_mb=16, extra_ro_binds=binds, seccomp_fd=fd)
        argv += isolation.drop_privileges_argv(uid)
        argv += [_java_bin(), *JVM_FLAGS, f"-Xmx{SERVER_HEAP_MB}m", "-cp", str(self.classes_dir), SERVER_CLASS]
        argv += [str(self.classpath)] if self.classpath else []
        limits = supervise.Limits(timeout_s=0, cpu_s=24 * 3600, memory_mb=None, nproc=256, fsize_mb=1, nofile=256)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         env={"PATH": isolation.SANDBOX_PATH, "LANG": "C.UTF-8"}, start_new_session=True,
                                         pass_fds=[fd] if fd is not None else [],
                                         preexec_fn=lambda: supervise.set_rlimits(limits))
        finally:
            if fd is not None:
                os.close(fd)
        self.compiles = 0

    def close(self) -> None:
        if self.proc is not None:
            supervise.stop_server(self.proc)
            self.proc = None

    def compile(self, sources: dict[str, str], timeout_s: float) -> CompileResult:
        if self.proc is None or self.proc.poll() is not None or self.compiles >= RESTART_AFTER:
            self.close()
            self._start()
        self.compiles += 1
        deadline = time.monotonic() + timeout_s
        request = [struct.pack(">i", len(sources))]
        for name, text in sources.items():
            data = text.encode()
            request += [_utf(name), struct.pack(">i", len(data)), data]
        try:
            self.proc.stdin.write(b"".join(request))
            self.proc.stdin.flush()
            ok = self._read(1, deadline)[0] != 0
            diagnostics = self._read(self._int(deadline), deadline).decode("utf-8", "replace")
            classes = {}
            for _ in range(self._int(deadline)):
                name = self._read(struct.unpack(">H", self._read(2, deadline))[0], deadline).decode()
                classes[name] = self._read(self._int(deadline), deadline)
            return CompileResult(ok, diagnostics, classes)
        except TimeoutError:
            self.close()  # a compile that hangs takes the server with it; the next call starts a new one
            return CompileResult(False, "compile timeout", timed_out=True)
        except (OSError, EOFError) as exc:
            self.close()
            return CompileResult(False, f"compiler process died: {exc}")

    def _int(self, deadline: float) -> int:
        return struct.unpack(">i", self._read(4, deadline))[0]

    def _read(self, n: int, deadline: float) -> bytes:
        out = bytearray()
        fd = self.proc.stdout.fileno()
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, n - len(out))
                if not chunk:
                    raise EOFError("compiler closed its output")
                out += chunk
        return bytes(out)


def _utf(s: str) -> bytes:
    data = s.encode()  # names are ASCII file names: Java's modified UTF-8 equals UTF-8 there
    return struct.pack(">H", len(data)) + data


_local = threading.local()
_all: list[JavacServer] = []
_lock = threading.Lock()


def for_thread() -> JavacServer | None:
    """This thread's warm compiler (bwrap's --die-with-parent ties a process to the thread that
    started it, so each pool thread owns its own); None if no JDK or the server can't be built."""
    server = getattr(_local, "server", None)
    if server is None:
        classes = server_dir()
        if classes is None:
            return None
        server = JavacServer(classes, wire_dir() if wire_classes() else None)
        _local.server = server
        with _lock:
            _all.append(server)
    return server


@atexit.register
def close_all() -> None:
    with _lock:
        for server in _all:
            server.close()
        _all.clear()
