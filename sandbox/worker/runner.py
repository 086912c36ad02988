"""The compiled-language runner: the trusted side of one Java/C++ judging run, inside its sandbox.

It runs as the sandbox's root (a few capabilities, no network, seccomp), reads one spec from stdin
(sandbox/compiled/run.py writes it), and keeps every other process under a uid of its own:

    <root>/in/<unit>/  files from the host, moved at once into
    <root>/u/<unit>/   one directory per compile unit (the candidate's code, the test), each owned
                       by that unit's own uid, mode 0700: compiling the candidate cannot read the test
    <root>/bin/        what runs, owned by root: programs execute-only (0111: the candidate's uid can
                       run them but not read them, and they are not dumpable), the rest read-only
    <root>/home/       the program's working directory, owned by the run uid

The program reports on a socket whose other end only this process holds, one line per event, each
tagged with SipHash-2-4 under a per-run key (sandbox/worker/siphash.py): the key is compiled into the
execute-only C++ program, or read by the Java harness from the socket before any candidate code
runs. So a line counts only if it came from code that holds the key -- not from text a candidate
prints or writes to any fd, nor from lines it captures by redirecting the socket. The runner passes
on only verified reports, as one frame on stdout.
"""
from __future__ import annotations

import base64
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import sys
import time

from .protocol import REPORT_LIMIT, send_frame
from .siphash import tag

PATH = "/usr/local/bin:/usr/bin:/bin"
LOG_LIMIT = 16000  # compiler output kept
REPORTS_LIMIT = 256 << 10
STDERR_TAIL = 2000
UID_RANGE = (2_000_001, 3_000_000)
KEEP_LIMIT = 4 << 20
MAX_TIMEOUTS = 2  # stdin/stdout mode: after two timeouts the remaining cases are not run
_MANGLED = re.compile(r"[A-Za-z0-9_.$]+")


class Runner:
    def __init__(self, spec: dict):
        self.spec = spec
        self.root = os.getcwd()  # the sandbox's private work dir
        self.own_pidns = bool(spec.get("own_pid_namespace"))
        self.privileged = os.geteuid() == 0
        self.uids: dict[str, int] = {}
        self.key = bytes.fromhex(spec["run"]["key"]) if spec["run"].get("key") else b""
        self.kept: dict[str, str] = {}

    # -- processes --------------------------------------------------------------------------------
    def uid(self, name: str) -> int:
        if name not in self.uids:
            used = set(self.uids.values())
            uid = int.from_bytes(os.urandom(4), "big") % (UID_RANGE[1] - UID_RANGE[0]) + UID_RANGE[0]
            self.uids[name] = uid + 1 if uid in used else uid
        return self.uids[name]

    def start(self, argv: list[str], *, as_uid: str, cwd: str, fds: dict[int, int], limits: dict) -> int:
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=PATH) or argv[0]
        env = {"PATH": PATH, "HOME": cwd, "LANG": "C.UTF-8"}
        uid = self.uid(as_uid)
        pid = os.fork()
        if pid == 0:
            try:
                high = {target: os.dup(fd) for target, fd in fds.items()}  # no clash while dup2-ing
                for target, fd in high.items():
                    os.dup2(fd, target)
                os.closerange(max(fds) + 1, 1 << 16)
                os.chdir(cwd)
                os.setsid()
                for name, value in limits.items():
                    if value is not None:
                        resource.setrlimit(getattr(resource, name), (value, value))
                if self.privileged:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                os.execve(exe, argv, env)
            except BaseException:
                pass
            os._exit(127)
        return pid

    def end_everything(self, pid: int, kill_all: bool = True) -> None:
        """Kill the program and whatever it left running. In the sandbox's own PID namespace every
        process but init and this one belongs to the run: kill(-1) takes them all at once. Compile
        steps (`kill_all` False; others may be running) end with their process group."""
        if kill_all and self.own_pidns and self.privileged:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        else:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass

    def wait(self, pid: int, deadline: float, readers: dict[int, list], kill_all: bool = True) -> tuple[int | None, bool]:
        """Drain `readers` (fd -> [bytearray, cap, total]) until the program exits and its pipes
        close, or the deadline passes. Returns (wait status or None, timed out)."""
        status, timed_out, exited_at = None, False, None
        while readers:
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status, exited_at = st, time.monotonic()
                    self.end_everything(pid, kill_all)  # leftovers must not hold the pipes open
            now = time.monotonic()
            if status is None and now >= deadline:
                timed_out = True
                self.end_everything(pid, kill_all)
                _, status = os.waitpid(pid, 0)
                exited_at = now
            if exited_at is not None and time.monotonic() - exited_at > 1.0:
                break
            ready, _, _ = select.select(list(readers), [], [], 0.05 if status is not None else min(0.2, max(0.0, deadline - now)))
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    del readers[fd]
                    continue
                buf, cap, _ = readers[fd]
                readers[fd][2] += len(chunk)
                buf += chunk[:max(0, cap - len(buf))]
        if status is None:
            _, status = os.waitpid(pid, 0)
        return status, timed_out

    # -- building ---------------------------------------------------------------------------------
    def prepare_dirs(self) -> None:
        for unit in self.spec["units"]:
            src, dst = os.path.join(self.root, "in", unit), os.path.join(self.root, "u", unit)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(src):
                os.rename(src, dst)
            else:
                os.mkdir(dst)
            self.own(dst, self.uid(unit), 0o700)
        os.makedirs(os.path.join(self.root, "bin"), 0o755)
        home = os.path.join(self.root, "home")
        os.mkdir(home)
        self.own(home, self.uid("run"), 0o700)
        os.chmod(self.root, 0o755)

    def own(self, path: str, uid: int, mode: int | None = None) -> None:
        if self.privileged:
            for dirpath, dirnames, filenames in os.walk(path):
                for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                    os.chown(name, uid, uid, follow_symlinks=False)
        if mode is not None:
            os.chmod(path, mode)

    def build(self) -> dict:
        log, timings = bytearray(), []
        limits = {"RLIMIT_AS": _mb(self.spec.get("compile_memory_mb")), "RLIMIT_NPROC": 1024,
                  "RLIMIT_FSIZE": _mb(self.spec["fsize_mb"]), "RLIMIT_NOFILE": self.spec["nofile"],
                  "RLIMIT_CPU": self.spec["compile_cpu_s"]}  # the host's rule (sandbox.supervise.cpu_and_wall)
        for step in self.spec["steps"]:
            if step[0] == "exports":
                self.write_exports(*step[1:])
                continue
            if step[0] == "keep":  # a trusted unit's output, returned to the host (e.g. to reuse)
                with open(os.path.join(self.root, "u", step[1]), "rb") as fh:
                    self.kept[step[1]] = base64.b64encode(fh.read(KEEP_LIMIT)).decode()
                continue
            if step[0] == "move":  # e.g. the candidate's library into the test's unit, for the link
                _, src, dst = step
                target = os.path.join(self.root, "u", dst)
                os.rename(os.path.join(self.root, "u", src), target)
                self.own(target, self.uid(dst.split("/")[0]))
                continue
            for label, output, status, timed_out, seconds in self.run_steps(step[1] if step[0] == "parallel" else [step], limits):
                log += output
                timings.append([label, seconds])
                if timed_out or status != 0:
                    return {"ok": False, "timed_out": timed_out, "log": _text(log[-LOG_LIMIT:])}
        for src, name, mode in self.spec["install"]:
            target = os.path.join(self.root, "bin", name)
            os.rename(os.path.join(self.root, "u", src), target)
            if os.path.islink(target):  # compilers write files; anything else is refused
                return {"ok": False, "timed_out": False, "log": f"{src} is not a file"}
            self.own(target, 0)
            for dirpath, dirnames, filenames in os.walk(target) if os.path.isdir(target) else [("", [], [target])]:
                for d in dirnames:
                    os.chmod(os.path.join(dirpath, d), 0o755)
                for f in filenames:
                    os.chmod(os.path.join(dirpath, f), 0o111 if mode == "exec" else 0o444)
            if os.path.isdir(target):
                os.chmod(target, 0o755)
        return {"ok": True, "timed_out": False, "log": _text(log[-LOG_LIMIT:]), "timings": timings}

    def run_steps(self, steps: list, limits: dict) -> list[tuple[str, bytearray, int | None, bool, float]]:
        """Run compile steps (["run", unit, argv, timeout_s]) at once -- each unit as its own uid,
        so they cannot touch each other's files -- and wait for all of them."""
        started, running = time.monotonic(), []
        for _, unit, argv, timeout_s in steps:
            out_r, out_w = os.pipe()
            null = os.open(os.devnull, os.O_RDONLY)
            pid = self.start(argv, as_uid=unit, cwd=os.path.join(self.root, "u", unit), fds={0: null, 1: out_w, 2: out_w},
                             limits=limits)
            os.close(out_w)
            os.close(null)
            running.append((argv, pid, out_r, timeout_s))
        results = []
        for argv, pid, out_r, timeout_s in running:
            output = bytearray()
            status, timed_out = self.wait(pid, started + timeout_s, {out_r: [output, LOG_LIMIT, 0]}, kill_all=False)
            os.close(out_r)
            results.append((" ".join(argv)[-60:], output, status, timed_out, round(time.monotonic() - started, 4)))
        return results

    def capture(self, argv: list[str], unit: str) -> bytes:
        """A build tool's stdout (nm), under a compile step's limits."""
        out_r, out_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        pid = self.start(argv, as_uid=unit, cwd=os.path.join(self.root, "u", unit), fds={0: null, 1: out_w, 2: null},
                         limits={"RLIMIT_AS": 1 << 30, "RLIMIT_CPU": self.spec["compile_cpu_s"]})
        os.close(out_w)
        os.close(null)
        output = bytearray()
        self.wait(pid, time.monotonic() + self.spec["compile_timeout_s"], {out_r: [output, 4 << 20, 0]}, kill_all=False)
        os.close(out_r)
        return bytes(output)

    def write_exports(self, unit: str, obj: str, entry: str, mapfile: str) -> None:
        """A linker version script exporting exactly the candidate's definitions of `entry` (by their
        mangled names): the library then cannot supply any other symbol to the test. The symbol
        table comes from the candidate's object, so it is parsed as hostile: any line that is not
        `value type name` with a plain mangled name makes the script export nothing."""
        mangled = self.capture(["nm", "-g", "--defined-only", obj], unit).decode("utf-8", "replace").split("\n")
        demangled = self.capture(["nm", "-g", "--defined-only", "-C", obj], unit).decode("utf-8", "replace").split("\n")
        names: list[str] = []
        if len(mangled) == len(demangled) and entry.isidentifier():
            for m_line, d_line in zip(mangled, demangled, strict=True):
                if not m_line and not d_line:
                    continue
                m_parts, d_parts = m_line.split(" ", 2), d_line.split(" ", 2)
                if len(m_parts) != 3 or len(d_parts) != 3 or not _MANGLED.fullmatch(m_parts[2]):
                    names = []
                    break
                if re.match(rf"{entry}(\[abi:\w+\])*\(", d_parts[2]):  # `f[abi:cxx11](int)` returns a std::string
                    names.append(m_parts[2])
        path = os.path.join(self.root, "u", unit, mapfile)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write("{ " + ("global: " + " ".join(f"{n};" for n in names) + " " if names else "") + "local: *; };\n")
        self.own(path, self.uid(unit))

    # -- running ----------------------------------------------------------------------------------
    def program_limits(self) -> dict:
        run = self.spec["run"]
        return {"RLIMIT_AS": _mb(run.get("memory_mb")), "RLIMIT_NPROC": run["nproc"], "RLIMIT_CPU": run["cpu_s"],
                "RLIMIT_FSIZE": _mb(self.spec["fsize_mb"]), "RLIMIT_NOFILE": self.spec["nofile"], "RLIMIT_CORE": 0}

    def run_harness(self) -> dict:
        """One run of the program with its rewritten test main; reports come on the socket."""
        run = self.spec["run"]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if run.get("send_key"):  # Java: the harness reads it before any candidate code runs
            ours.sendall(self.key.hex().encode() + b"\n")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        channel = int(run["channel_fd"])
        fds = {0: null, 1: out_w, 2: err_w, channel: theirs.fileno()}
        pid = self.start(run["argv"], as_uid="run", cwd=os.path.join(self.root, "home"), fds=fds,
                         limits=self.program_limits())
        for fd in (out_w, err_w, null):
            os.close(fd)
        theirs.close()
        reports, out, err = bytearray(), bytearray(), bytearray()
        preview = run["preview"]
        readers = {ours.fileno(): [reports, REPORTS_LIMIT, 0], out_r: [out, preview, 0], err_r: [err, preview, 0]}
        status, timed_out = self.wait(pid, time.monotonic() + run["timeout_s"], readers)
        for fd in (out_r, err_r):
            os.close(fd)
        ours.close()
        verified, rejected = self.verify(reports)
        return {**_exit(status, timed_out), "reports": verified, "rejected_lines": rejected,
                "stdout": _text(out), "stderr": _text(err)}

    def verify(self, data: bytes) -> tuple[list, int]:
        """Report lines whose tag verifies under the run's key, parsed; the number of others."""
        out, rejected = [], 0
        for raw in bytes(data).split(b"\n"):
            line = raw.decode("utf-8", "replace")
            mac, _, message = line.partition(" ")
            if not self.key or len(mac) != 16 or tag(self.key, message) != mac:
                rejected += bool(raw)
                continue
            kind, _, rest = message.partition(" ")
            if kind == "END":
                out.append(["end"])
            elif kind == "SETUP":
                out.append(["setup", rest[:500]])
            elif kind.isdigit() and len(kind) < 9:
                outcome, _, error = rest.partition(" ")
                out.append(["case", int(kind), outcome == "P", error[:500]])
        return out, rejected

    def run_stdio(self) -> list:
        """Whole-program mode: one run per case, stdin from the case, stdout kept up to a cap."""
        run, results, timeouts = self.spec["run"], [], 0
        for i, data in enumerate(run["inputs"]):
            if timeouts >= MAX_TIMEOUTS:
                results.append({"skipped": True})
                continue
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            pid = self.start(run["argv"], as_uid="run", cwd=os.path.join(self.root, "home"),
                             fds={0: in_r, 1: out_w, 2: err_w}, limits=self.program_limits())
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            feeder = _feed(in_w, data.encode())
            out, err = bytearray(), bytearray()
            readers = {out_r: [out, run["output_caps"][i], 0], err_r: [err, STDERR_TAIL, 0]}
            size = readers[out_r]
            status, timed_out = self.wait(pid, time.monotonic() + run["timeout_s"], readers)
            for fd in (out_r, err_r):
                os.close(fd)
            if feeder:
                os.waitpid(feeder, 0)
            timeouts += timed_out
            results.append({**_exit(status, timed_out), "stdout": _text(out), "size": size[2], "stderr": _text(err)})
        return results


def _feed(fd: int, data: bytes) -> int:
    """Give a case its input. What fits in the pipe is written at once; a larger input is fed by a
    child (returned, to be reaped), so a program that does not read cannot block the runner."""
    if len(data) <= 65536:
        try:
            os.write(fd, data)
        except OSError:
            pass
        os.close(fd)
        return 0
    pid = os.fork()
    if pid == 0:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            pass
        os._exit(0)
    os.close(fd)
    return pid


def _exit(status: int | None, timed_out: bool) -> dict:
    if status is None:
        return {"rc": None, "signal": None, "timed_out": timed_out}
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        return {"rc": None, "signal": name, "timed_out": timed_out}
    return {"rc": os.WEXITSTATUS(status), "signal": None, "timed_out": timed_out}


def _mb(value) -> int | None:
    return None if value is None else int(value) << 20


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "replace")


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    runner = Runner(spec)
    result: dict = {}
    try:
        runner.prepare_dirs()
        result["compile"] = runner.build()
        result["kept"] = runner.kept
        if result["compile"]["ok"]:
            if spec["run"]["mode"] == "stdio":
                result["cases"] = runner.run_stdio()
            else:
                result["run"] = runner.run_harness()
    except Exception as exc:  # the runner's own failure: reported, never a pass
        result["error"] = f"{type(exc).__name__}: {exc}"[:500]
    send_frame(out, result, int(spec.get("result_limit", REPORT_LIMIT)))
