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
import signal
import socket
import sys
import time

from .processes import Processes, as_text, exit_info, feed_input, megabytes
from .protocol import REPORT_LIMIT, send_frame
from .siphash import tag

LOG_LIMIT = 16000  # compiler output kept
REPORTS_LIMIT = 256 << 10
STDERR_TAIL = 2000
KEEP_LIMIT = 4 << 20
MAX_TIMEOUTS = 2  # stdin/stdout mode: after two timeouts the remaining cases are not run
_MANGLED = re.compile(r"[A-Za-z0-9_.$]+")


class Runner(Processes):
    def __init__(self, spec: dict):
        self.spec = spec
        self.root = os.getcwd()  # the sandbox's private work dir
        self.own_pidns = bool(spec.get("own_pid_namespace"))
        self.privileged = os.geteuid() == 0
        self.uids: dict[str, int] = {}
        self.key = bytes.fromhex(spec["run"]["key"]) if spec["run"].get("key") else b""
        self.kept: dict[str, str] = {}
        self.others: dict[int, int | None] = {}  # other programs of the run (the candidate's): pid -> status once reaped

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
        for home, party in (("home", "run"), ("chome", "cand")):  # the test's and the candidate's working dirs
            os.mkdir(os.path.join(self.root, home))
            self.own(os.path.join(self.root, home), self.uid(party), 0o700)
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
        limits = {"RLIMIT_AS": megabytes(self.spec.get("compile_memory_mb")), "RLIMIT_NPROC": 1024,
                  "RLIMIT_FSIZE": megabytes(self.spec["fsize_mb"]), "RLIMIT_NOFILE": self.spec["nofile"],
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
                    return {"ok": False, "timed_out": timed_out, "log": as_text(log[-LOG_LIMIT:])}
        for src, name, mode, *party in self.spec["install"]:
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
            if party and self.privileged:
                self.only_for(target, party[0], mode)
        return {"ok": True, "timed_out": False, "log": as_text(log[-LOG_LIMIT:]), "timings": timings}

    def only_for(self, target: str, party: str, mode: str) -> None:
        """An installed file that only one program may use (the test's, or the candidate's): owned by
        root, group the program's own, group-execute or group-read only. So the candidate can neither
        read the test's code (its expected values) nor run the test's program, and the reverse."""
        gid = self.uid(party)
        for dirpath, dirnames, filenames in os.walk(target) if os.path.isdir(target) else [("", [], [target])]:
            for name in [dirpath] * bool(dirpath) + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                os.chown(name, 0, gid, follow_symlinks=False)
                os.chmod(name, 0o050 if os.path.isdir(name) else 0o010 if mode == "exec" else 0o040)

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
        return {"RLIMIT_AS": megabytes(run.get("memory_mb")), "RLIMIT_NPROC": run["nproc"], "RLIMIT_CPU": run["cpu_s"],
                "RLIMIT_FSIZE": megabytes(self.spec["fsize_mb"]), "RLIMIT_NOFILE": self.spec["nofile"], "RLIMIT_CORE": 0}

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
        reports, out, err = bytearray(), bytearray(), bytearray()
        preview = run["preview"]
        readers = {ours.fileno(): [reports, REPORTS_LIMIT, 0], out_r: [out, preview, 0], err_r: [err, preview, 0]}
        candidate = self.start_candidate(run["candidate"], null, fds, readers) if run.get("candidate") else None
        pid = self.start(run["argv"], as_uid="run", cwd=os.path.join(self.root, "home"), fds=fds,
                         limits=self.program_limits())
        test_end = (fds[int(run["candidate"]["test_fd"])],) if candidate else ()
        for fd in (out_w, err_w, null, *test_end):
            os.close(fd)
        theirs.close()
        status, timed_out = self.wait(pid, time.monotonic() + run["timeout_s"], readers)
        for fd in (out_r, err_r, *(candidate[1:3] if candidate else ())):
            os.close(fd)
        ours.close()
        verified, rejected = self.verify(reports)
        result = {**exit_info(status, timed_out), "reports": verified, "rejected_lines": rejected,
                  "stdout": as_text(out), "stderr": as_text(err)}
        if candidate:
            cpid, _, _, c_out, c_err = candidate
            st = self.others[cpid]
            if st is None or st == -1:
                os.waitpid(cpid, 0)
            result["candidate"] = {**(exit_info(st, False) if st not in (None, -1) else {"rc": None, "signal": None, "timed_out": False}),
                                   "running_at_end": st in (None, -1), "stdout": as_text(c_out), "stderr": as_text(c_err)}
        return result

    def start_candidate(self, cand: dict, null: int, test_fds: dict, readers: dict) -> tuple:
        """The candidate's program of a process-separated run (sandbox/compiled/wire.py): its own uid and
        working dir, the calls socket at `fd`, whose other end the test's program gets at `test_fd`.
        It gets neither the report socket nor the key."""
        test_end, cand_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = self.start(cand["argv"], as_uid="cand", cwd=os.path.join(self.root, "chome"),
                         fds={0: null, 1: out_w, 2: err_w, int(cand["fd"]): cand_end.fileno()}, limits=self.program_limits())
        self.others[pid] = None
        for fd in (out_w, err_w):
            os.close(fd)
        cand_end.close()
        test_fds[int(cand["test_fd"])] = test_end.detach()
        out, err = bytearray(), bytearray()
        readers[out_r] = [out, self.spec["run"]["preview"], 0]
        readers[err_r] = [err, self.spec["run"]["preview"], 0]
        return pid, out_r, err_r, out, err

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
            feeder = feed_input(in_w, data.encode())
            out, err = bytearray(), bytearray()
            readers = {out_r: [out, run["output_caps"][i], 0], err_r: [err, STDERR_TAIL, 0]}
            size = readers[out_r]
            status, timed_out = self.wait(pid, time.monotonic() + run["timeout_s"], readers)
            for fd in (out_r, err_r):
                os.close(fd)
            if feeder:
                os.waitpid(feeder, 0)
            timeouts += timed_out
            results.append({**exit_info(status, timed_out), "stdout": as_text(out), "size": size[2], "stderr": as_text(err)})
        return results


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
