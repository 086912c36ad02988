"""The trusted harness of one job: starts candidate processes (through the spawner), calls into
them, and reports each test case to the host.

One harness process judges exactly one job and exits: it is forked from the clean zygote before it
reads its job, runs as its own unprivileged uid (no capabilities, not dumpable, not traceable by any
candidate), in an empty read-only working directory, without access to any candidate's directory
(sandbox/worker/zygote.py sets this up). What it learns from a candidate arrives as bytes on pipes
and is parsed as plain data; nothing a candidate names or writes is imported, executed or read.
"""
from __future__ import annotations

import json
import os
import select
import socket
import time

from .failures import OUTPUT_LIMIT, CandidateError, CaseTimeout, describe_status
from .plaindata import HOSTILE_TOKENS, encode, encode_wire, is_mutable, literal, write_back
from .protocol import CANDIDATE_LIMIT, REPORT_LIMIT, FrameReader, ProtocolError, send_frame
from .protocol import encode as encode_frame

REPORT_DELAY_S = 0.2  # longest a finished test's result waits in the harness before going out
ERROR_CHARS = 500


class _AnyRef(dict):
    """Harness-side check that an argument encodes: any handle number is fine."""

    def __missing__(self, key):
        return None


ANY_REF = _AnyRef()


class Harness:
    def __init__(self, job: dict, out_fd: int, spawner: socket.socket):
        self.job, self.out_fd, self.spawner = job, out_fd, spawner
        self.timeout_s = float(job["timeout_s"])
        self.program_deadline = time.monotonic() + float(job["program_timeout_s"])
        self.case_deadline = self.program_deadline
        self.output_limit = int(job["output_limit_bytes"])
        self.report_chars = int(job.get("report_chars", 4000))
        self.stdout, self.stderr = bytearray(), bytearray()
        self.truncated = False
        self.proc: dict | None = None  # the live candidate: its fds and state
        self.import_error: str | None = None
        self.compile_error: str | None = None  # the program does not compile (the candidate says so)
        self.globals_info: list = []
        self.pending: list[dict] = []
        self.setup_error: str | None = None  # the last failed setup statement of the test code
        self.last_flush = time.monotonic()

    # -- reporting ------------------------------------------------------------------------------
    def report(self, msg: dict, flush: bool = False) -> None:
        """To the host, over a pipe no candidate process holds. Batched (one wake-up of the host per
        job for fast tests), but never held back more than REPORT_DELAY_S."""
        self.pending.append(msg)
        now = time.monotonic()
        if flush or now - self.last_flush >= REPORT_DELAY_S or len(self.pending) >= 256:
            send_frame(self.out_fd, {"id": self.job["id"], "msgs": self.pending}, REPORT_LIMIT)
            self.pending, self.last_flush = [], now

    def report_case(self, index: int, error: str | None) -> None:
        self.report({"case": index, "passed": error is None, "error": (error or "")[:ERROR_CHARS]})

    # -- candidate processes ----------------------------------------------------------------------
    def spawn(self, mode: str) -> dict:
        rpc_parent, rpc_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        in_r, in_w = os.pipe()
        life_r, life_w = os.pipe()  # the candidate lives while this harness holds life_w
        child_fds = [rpc_child.fileno(), out_w, err_w, st_w, in_r, life_r]
        try:
            socket.send_fds(self.spawner, [json.dumps({"rlimits": self.job["rlimits"]}).encode()], child_fds)
        except OSError:
            os._exit(3)  # the spawner is gone: this worker is broken; the host restarts it
        rpc_child.close()
        for fd in (out_w, err_w, st_w, in_r, life_r):
            os.close(fd)
        for fd in (out_r, err_r, st_r, in_w):
            os.set_blocking(fd, False)
        proc = {"rpc": rpc_parent, "reader": FrameReader(rpc_parent.fileno(), CANDIDATE_LIMIT), "out": out_r,
                "err": err_r, "status_fd": st_r, "status_buf": b"", "pid": None, "status": None, "stdin": in_w,
                "life": life_w, "closed": set()}
        self.proc = proc
        # The program goes straight into the socket buffer; the candidate reads it once it is set up.
        os.set_blocking(rpc_parent.fileno(), False)
        try:
            self.send(proc, {"mode": mode, "program": self.job["program"]}, time.monotonic() + self.timeout_s + 1)
        except CaseTimeout:
            self.kill(proc)
            raise
        return proc

    def send(self, proc: dict, obj: dict, deadline: float) -> None:
        """Write a frame to the candidate without ever blocking past `deadline` (it may not read)."""
        view = memoryview(encode_frame(obj))
        fd = proc["rpc"].fileno()
        while view:
            try:
                view = view[os.write(fd, view):]
                continue
            except BlockingIOError:
                pass
            except OSError:
                raise CandidateError("program ended during the test (it closed its connection)") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CaseTimeout("timeout")
            select.select([], [fd], [], remaining)

    def poll(self, proc: dict, timeout: float, want_rpc: bool = True) -> None:
        """Wait up to `timeout` for activity; always drain stdout/stderr (capped) and status."""
        fds = [fd for fd in (proc["out"], proc["err"], proc["status_fd"]) if fd not in proc["closed"]]
        if want_rpc and not proc["reader"].eof:
            fds.append(proc["rpc"].fileno())
        if not fds:
            time.sleep(max(0.0, min(timeout, 0.05)))
            return
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        for fd in ready:
            if fd == proc["rpc"].fileno():
                proc["reader"].feed()
            elif fd == proc["status_fd"]:
                self._read_status(proc)
            else:
                self.drain(proc, fd)

    def drain(self, proc: dict, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            proc["closed"].add(fd)
            return
        if "case_out" in proc:  # stdio mode: each case's output is judged on its own
            buf = proc["case_out"] if fd == proc["out"] else proc["case_err"]
        else:
            buf = self.stdout if fd == proc["out"] else self.stderr
        room = self.output_limit - len(buf)
        if len(chunk) > room:
            self.truncated = True
            proc["overflow"] = True  # the run is killed: flooding output is a failure, not a pass
        buf += chunk[:max(room, 0)]

    def _read_status(self, proc: dict) -> None:
        try:
            chunk = os.read(proc["status_fd"], 4096)
        except BlockingIOError:
            return
        if not chunk:
            proc["closed"].add(proc["status_fd"])
            if proc["status"] is None:
                proc["status"] = -1
            return
        proc["status_buf"] += chunk
        while b"\n" in proc["status_buf"]:
            line, proc["status_buf"] = proc["status_buf"].split(b"\n", 1)
            try:
                msg = json.loads(line)  # from the spawner (root, trusted), still checked
                pid, status = msg.get("pid"), msg.get("status")
            except (ValueError, AttributeError):
                continue
            if type(pid) is int:
                proc["pid"] = pid
            if type(status) is int:
                proc["status"] = status

    def wait_status(self, proc: dict, deadline: float) -> bool:
        while proc["status"] is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poll(proc, remaining, want_rpc=False)
        return True

    def kill(self, proc: dict | None = None, wait: bool = True) -> None:
        """End the candidate: cutting its lifeline makes the spawner kill it, which ends its whole
        PID namespace and frees its work dir. With `wait`, block until that is done."""
        proc = proc or self.proc
        if proc is None:
            return
        if proc["life"] >= 0:
            os.close(proc["life"])
            proc["life"] = -1
        if wait:
            self.wait_status(proc, time.monotonic() + 10)
        self._close(proc)

    def _close(self, proc: dict) -> None:
        while proc["out"] not in proc["closed"] or proc["err"] not in proc["closed"]:
            before = len(proc["closed"])
            self.poll(proc, 0.05, want_rpc=False)
            if len(proc["closed"]) == before:
                break  # a leftover writer dies with the candidate's namespace; don't wait for it
        for fd in (proc["out"], proc["err"], proc["status_fd"], proc["stdin"]):
            try:
                os.close(fd)
            except OSError:
                pass
        proc["rpc"].close()
        if self.proc is proc:
            self.proc = None

    def recv(self, proc: dict, deadline: float) -> dict:
        while True:
            msg = proc["reader"].pop()
            if msg is not None:
                return msg
            if proc.get("overflow"):
                raise CandidateError(OUTPUT_LIMIT)
            if proc["reader"].eof:
                self.wait_status(proc, time.monotonic() + 2)
                raise CandidateError(f"program ended during the test ({describe_status(proc['status'])})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CaseTimeout("timeout")
            self.poll(proc, remaining)

    # -- function-call mode -----------------------------------------------------------------------
    def ensure_candidate(self) -> dict:
        if self.import_error:
            raise CandidateError(self.import_error)
        if self.proc is not None:
            return self.proc
        deadline = min(self.program_deadline, time.monotonic() + max(self.timeout_s, 1.0))
        proc = self.spawn("function")
        try:
            msg = self.recv(proc, deadline)
        except CaseTimeout:
            self.kill(proc)
            self.import_error = "timeout (while loading the program)"
            raise CaseTimeout("timeout") from None
        except (CandidateError, ProtocolError) as exc:
            self.kill(proc)
            self.import_error = f"program failed at import: {exc}"
            raise CandidateError(self.import_error) from None
        if isinstance(msg.get("compile_error"), str):
            self.kill(proc)
            self.compile_error = self.import_error = msg["compile_error"][:ERROR_CHARS]
            raise CandidateError(self.import_error)
        if "import_error" in msg:
            self.kill(proc)
            kind = str(msg.get("type", ""))
            self.import_error = ("MemoryError (at import)" if kind == "MemoryError"
                                 else f"program failed at import: {str(msg['import_error'])[:ERROR_CHARS]}")
            raise CandidateError(self.import_error)
        if not isinstance(msg.get("ready"), list):
            self.kill(proc)
            raise ProtocolError("bad ready message")
        self.globals_info = msg["ready"]
        return proc

    def call(self, name: str, args: tuple, kwargs: dict):
        return self.remote({"op": "call", "name": name}, args=args, kwargs=kwargs)

    def remote(self, req: dict, args: tuple = (), kwargs: dict | None = None, value=None):
        """One request to the candidate: call a function (by global name, or a handle), or get/set
        an attribute of a handle. Returns plain data, or a `RemoteRef` handle -- never anything the
        candidate could give behaviour to. Arguments the call changed in place are changed here too."""
        if time.monotonic() >= self.program_deadline:
            raise CaseTimeout("timeout (program time limit)")
        kwargs = dict(kwargs or {})
        try:  # the arguments go as a list (JSON when they can): the candidate calls target(*args)
            if req["op"] == "call":
                req["args"], req["kwargs"] = encode_wire(list(args), ANY_REF), encode_wire(kwargs, ANY_REF)
            elif req["op"] == "setattr":
                req["value"] = encode(value, ANY_REF)
        except ValueError:
            raise CandidateError("argument is not plain data and cannot be passed to the program") from None
        proc = self.ensure_candidate()
        try:
            deadline = min(self.case_deadline, self.program_deadline)
            self.send(proc, req, deadline)
            msg = self.recv(proc, deadline)
        except BaseException:
            self.kill(proc)  # mid-call state is unknown: a fresh process for the next test
            raise
        if "err" in msg:
            kind = str(msg.get("type", ""))
            raise CandidateError("MemoryError" if kind == "MemoryError" else str(msg["err"])[:ERROR_CHARS])
        if isinstance(msg.get("changed"), dict):
            self._write_back(msg["changed"], args, kwargs)
        if type(msg.get("ref")) is int:
            return RemoteRef(self, proc, msg["ref"], str(msg.get("type", "object"))[:100])
        try:
            return literal(msg.get("ok"), max_tokens=HOSTILE_TOKENS)
        except ValueError as exc:
            raise CandidateError(f"returned a value that is not plain data ({exc})") from None

    @staticmethod
    def _write_back(changed: dict, args: tuple, kwargs: dict) -> None:
        """Apply a call's in-place changes. The keys are the candidate's text: they are looked up among
        the keys the candidate's server writes for the arguments it was passed (`str(i)`, `"k:" + name`),
        never parsed (`int()` of a 15-million-digit key once stalled the harness in C for minutes);
        any other key fails the call."""
        passed = {str(i): value for i, value in enumerate(args)}
        passed.update(("k:" + name, value) for name, value in kwargs.items())
        for key, text in changed.items():
            if key not in passed or not isinstance(text, str):
                raise CandidateError("changed an argument the call did not pass (not a reply of the program's server)")
            original = passed[key]
            if is_mutable(original):
                try:
                    write_back(original, literal(text, max_tokens=HOSTILE_TOKENS))
                except ValueError as exc:
                    raise CandidateError(f"changed an argument into something that is not plain data ({exc})") from None


class RemoteRef:
    """Handle to an object living in the candidate process (e.g. an instance of a class the program
    defines, built by the test: `Pair(5, 24)`, `root.left = Node(2)`). It can be passed back to the
    program, called, and have attributes read or set -- through the candidate, as plain data or new
    handles. It has no behaviour of its own the candidate controls: equality is identity, and it has
    no truth value, length or order, so it can never make an assert pass by itself."""

    __slots__ = ("_h", "_proc", "_id", "_type")
    __rrtf_handle__ = True  # plaindata.encode writes it as `__rrtf_ref__(n)`

    def __init__(self, harness: Harness, proc: dict, ref_id: int, type_name: str):
        object.__setattr__(self, "_h", harness)
        object.__setattr__(self, "_proc", proc)
        object.__setattr__(self, "_id", ref_id)
        object.__setattr__(self, "_type", type_name)

    def _req(self, op: str, **fields) -> dict:
        if self._h.proc is not self._proc:
            raise CandidateError(f"{self._type} object belongs to an earlier run of the program")
        return {"op": op, "ref": self._id, **fields}

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._h.remote(self._req("getattr", attr=attr))

    def __setattr__(self, attr: str, value) -> None:
        self._h.remote(self._req("setattr", attr=attr), value=value)

    def __call__(self, *args, **kwargs):
        return self._h.remote(self._req("call"), args=args, kwargs=kwargs)

    def __bool__(self):
        raise CandidateError(f"returned a {self._type} object, not plain data (no truth value)")

    def __len__(self):
        raise CandidateError(f"returned a {self._type} object, not plain data (no length)")

    def __iter__(self):
        raise CandidateError(f"returned a {self._type} object, not plain data (not iterable)")

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __repr__(self):
        return f"__rrtf_ref__({self._id})"  # how it travels back to the program
