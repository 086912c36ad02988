"""The candidate process: locks itself down, then runs the untrusted program.

It starts as a standby forked by the spawner (root, first process of a fresh PID namespace, holding
one socket), and waits there until a harness assigns it a program. Then it keeps only the fds it was
given, applies the limits, drops to its own unprivileged uid (no capabilities, no groups) and runs
the program: as a whole program (stdin/stdout mode) or as a server answering the harness's calls.
Everything after the program has run is untrusted -- it can patch anything in this process -- and the
harness assumes so: it gets only plain data back (sandbox/worker/plaindata.py).
"""
from __future__ import annotations

import builtins
import json
import os
import signal
import socket
import sys
import traceback

from .failures import describe_compile_error
from .plaindata import encode, encode_wire, is_mutable, literal
from .protocol import recv_frame, send_frame

PATH = "/usr/local/bin:/usr/bin:/bin"
RLIMITS = frozenset({"RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_AS"})
RPC_FD = 3
SITE = ""  # where the allow-listed third-party packages are (set by the zygote): on the program's sys.path


def standby_main(ctl: socket.socket, workdir: str, uid: int) -> None:
    """Wait for an assignment on `ctl`, then become the candidate. Never returns."""
    try:
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 8)
        if not msg or len(fds) != 4:
            os._exit(0)
        rlimits = json.loads(msg)["rlimits"]
        _lock_down(fds, workdir, uid, rlimits)
        if SITE:
            sys.path.append(SITE)
        job = recv_frame(RPC_FD)
        if job is None:
            os._exit(0)
        if job.get("mode") == "stdio":
            os.close(RPC_FD)
            run_program(job["program"])
        serve_calls(job["program"])
    except BaseException:  # our own bug, not the program's: leave a trace for --debug
        traceback.print_exc()
        _flush()
    os._exit(70)


def _lock_down(fds: list[int], workdir: str, uid: int, rlimits: list) -> None:
    rpc, out_w, err_w, stdin_r = fds
    for target, fd in ((0, stdin_r), (1, out_w), (2, err_w), (RPC_FD, rpc)):
        os.dup2(fd, target)
    os.closerange(RPC_FD + 1, 1 << 16)  # nothing of the worker's stays reachable
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, as in any script
    os.chdir(workdir)
    import resource  # pre-imported by the spawner: free here

    for name, value in rlimits:
        if name in RLIMITS and type(value) is int and value >= 0:
            resource.setrlimit(getattr(resource, name), (value, value))
    os.setsid()
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from here on no capabilities: cannot signal or trace anything of the worker
    os.umask(0o077)
    os.environ.clear()
    os.environ.update({"PATH": PATH, "HOME": workdir, "LANG": "C.UTF-8"})
    sys.set_int_max_str_digits(0)  # programs may print factorial(2000)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["main.py"]


def run_program(program: str) -> None:
    """stdin/stdout mode: the program is a script; its exit status is the process's."""
    code = 0
    try:
        exec(compile(program, "main.py", "exec", optimize=0), _module_namespace("__main__"))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    _flush()
    os._exit(code & 0xFF)


def _module_namespace(name: str) -> dict:
    """The program's globals: those of a real module registered in sys.modules, as a script's are
    (`@dataclass` looks its class's module up there: LeetCodeDataset's answers use it)."""
    import types

    module = types.ModuleType(name)
    module.__builtins__ = builtins
    sys.modules[name] = module
    return module.__dict__


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


def serve_calls(program: str) -> None:
    """Function mode: run the program, describe its globals, then answer requests until EOF."""
    ns = _module_namespace("__candidate__")
    try:
        code = compile(program, "<candidate>", "exec", optimize=0)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        # Judged a compile error on this process's word: a lie could only rank the program lower.
        send_frame(RPC_FD, {"compile_error": describe_compile_error(exc)})
        os._exit(0)
    try:
        exec(code, ns)
    except BaseException as exc:
        _flush()
        send_frame(RPC_FD, {"import_error": describe_exc(exc), "type": type(exc).__name__})
        os._exit(0)
    _flush()
    send_frame(RPC_FD, {"ready": summarize_globals(ns)})
    refs: dict[int, object] = {}  # objects the harness holds handles to
    while True:
        req = recv_frame(RPC_FD)
        if req is None:
            _flush()
            os._exit(0)
        reply = _answer(req, ns, refs)
        _flush()
        send_frame(RPC_FD, reply)


def _answer(req: dict, ns: dict, refs: dict) -> dict:
    changed: dict[str, str] = {}
    try:
        value = _serve_one(req, ns, refs, changed)
    except BaseException as exc:  # SystemExit / KeyboardInterrupt too: the test fails with it
        return {"err": describe_exc(exc), "type": type(exc).__name__}
    reply: dict = {"changed": changed} if changed else {}
    try:
        return {**reply, "ok": encode_wire(value)}  # text the harness will parse as plain data
    except BaseException:  # not plain data: the object stays here, the harness gets a handle
        refs[len(refs) + 1] = value
        return {**reply, "ref": len(refs), "type": type(value).__name__[:100]}


def _serve_one(req: dict, ns: dict, refs: dict, changed: dict):
    target = refs[req["ref"]] if "ref" in req else (ns[req["name"]] if req["name"] in ns else _missing(req["name"]))
    op = req["op"]
    if op == "getattr":
        return getattr(target, req["attr"])
    if op == "setattr":
        return setattr(target, req["attr"], literal(req["value"], refs))
    try:
        args, kwargs = literal(req["args"], refs), literal(req["kwargs"], refs)
    except ValueError as exc:
        raise TypeError(f"argument is not plain data ({exc})") from None
    before = {key: _snapshot(value) for key, value in _mutables(args, kwargs)}
    result = target(*args, **kwargs)
    for key, value in _mutables(args, kwargs):  # in-place changes go back to the test's objects
        if _snapshot(value) != before[key]:
            after = _text(value)
            if after is not None:
                changed[key] = after
    return result


def _mutables(args: tuple, kwargs: dict):
    for i, value in enumerate(args):
        if is_mutable(value):
            yield str(i), value
    for name, value in kwargs.items():
        if is_mutable(value):
            yield "k:" + name, value


def _snapshot(value) -> str | None:
    """What an argument looks like, cheaply (repr at C speed): compared before and after a call."""
    try:
        return repr(value)
    except BaseException:
        return None


def _text(value) -> str | None:
    try:
        return encode_wire(value)
    except ValueError:
        return None


def _missing(name: str):
    raise NameError(f"name {name!r} is not defined")


def describe_exc(exc: BaseException) -> str:
    msg = str(exc)
    return f"{type(exc).__name__}: {msg}"[:500] if msg else type(exc).__name__


def summarize_globals(ns: dict) -> list:
    import types

    out = []
    for name, value in list(ns.items()):
        if name.startswith("__"):
            continue
        try:
            if isinstance(value, types.ModuleType):
                out.append([name, "module", value.__name__])
            elif callable(value):
                out.append([name, "callable", ""])
            else:
                text = encode(value)
                out.append([name, "data", text if len(text) < (1 << 20) else ""])
        except BaseException:
            out.append([name, "opaque", ""])
    return out
