"""EvalPlus ground truth: the canonical solution's output and run time on every input of a problem.

Computed *in the sandbox* and cached on disk per problem (`ground_truth`). The canonical solution is
dataset code: it defines what is right, so it is trusted with its own outputs, but it still runs
isolated (no network, no host files, an unprivileged uid, 8 GiB, 10 minutes), and its outputs, just
computed or read from the cache, are parsed as plain data by the plan (sandbox/evalplus.py) before
any test uses them.

One warm truth server per pool thread (`_TruthServer`): an isolated interpreter that forks a fresh
child per problem, so each problem starts from a clean state at the price of a fork (~1 ms) instead
of a new sandbox and interpreter (~40 ms; HumanEval+ has 164 problems, MBPP+ 378). Whatever goes
wrong in a child (an exception, a crash, a hang past the limit, a torn reply) costs that problem a
`GroundTruthError` and the server is replaced.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.base.records import Problem
from sandbox.isolation import python_executable
from sandbox.supervise import Limits, reap_uid, start_isolated, stop_server
from sandbox.toolcache import cache_root
from sandbox.worker.protocol import FrameReader, ProtocolError
from sandbox.worker.protocol import encode as encode_frame
from sandbox.workers import IN_SANDBOX, PACKAGE

GROUND_TRUTH_TIMEOUT_S = 600.0  # per problem
GROUND_TRUTH_MEMORY_MB = 8192
REPLY_LIMIT = 256 << 20  # bytes of one problem's outputs (large ones travel as digests: DIGEST_OVER)
DIGEST_OVER = 256 << 10  # expected outputs whose literal text is longer travel as a digest
MBPP_OUTPUT_NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")
CACHE_VERSION = "3"

# The text a large expected output is compared by (its digest): exact for str, int and containers of
# them (hex for ints: linear, where decimal is quadratic).
CANON_SOURCE = """
def canon(v):
    if type(v) is int:
        return hex(v)
    if type(v) is str:
        return "s" + v
    return type(v).__name__ + repr(v)
"""

# Runs in the sandbox: reads length-prefixed JSON specs on stdin; for each, a forked child runs the
# canonical solution on every input and the server forwards its reply (outputs as plain-data literal
# text) on the original stdout. Everything the canonical solution prints goes to /dev/null.
SERVER_SCRIPT = """
import copy, hashlib, json, os, sys, time
sys.path.append({root!r})
from worker.plaindata import MAX_TEXT
from worker.plaindata import encode_wire as encode
from worker.protocol import HEADER, read_exact, write_all
sys.set_int_max_str_digits(0)  # the inputs are the dataset's: any integer
{canon}
def truth(spec):
    if spec["mbpp"]:  # MBPP+'s tuples, sets and complex numbers from their JSON form
        exec(spec["deserialize"], globals())
    g = {{"__name__": "__main__"}}
    exec(compile(spec["code"], "<canonical>", "exec", optimize=0), g)
    fn = g[spec["entry_point"]]
    result = {{}}
    for part in ("base", "plus"):
        values, times = [], []
        raw = spec[part]
        for inp in (deserialize_inputs(spec["task_id"], raw) if spec["mbpp"] else raw):
            inp = copy.deepcopy(inp)
            start = time.time()
            try:
                value = fn(*inp)
            except MemoryError:  # over the ground truth's memory: no sample could do better under its own limit
                times.append(time.time() - start)
                values.append(["too_large"])
                continue
            times.append(time.time() - start)
            if spec["not_none"]:
                value = value is not None
            if type(value) is str and len(value) > {digest_over} and value.isprintable():
                # a digest anyway: its wire length without writing it (only " and \\ are escaped here)
                size = len(value) + 3 + value.count('"') + value.count('\\\\')  # mark, quotes, escapes
                if size <= MAX_TEXT:
                    values.append(["digest", hashlib.sha256(canon(value).encode("utf-8", "surrogatepass")).hexdigest(), size])
                    continue
            try:
                text = encode(value)
            except ValueError:  # over the plain-data bound: no sample's output could cross it either
                values.append(["too_large"])
                continue
            if len(text) > {digest_over}:  # kept as a digest: the test code would be too large to send
                values.append(["digest", hashlib.sha256(canon(value).encode("utf-8", "surrogatepass")).hexdigest(), len(text)])
            else:
                values.append(text)
        result[part], result[part + "_time"] = values, times
    return result
out_fd = os.dup(1)
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
sys.stdout = open(os.devnull, "w")
while True:
    head = read_exact(0, HEADER.size)
    if head is None:
        break
    spec = json.loads(read_exact(0, HEADER.unpack(head)[0]))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(out_fd)
        try:
            data = json.dumps(truth(spec)).encode()
        except BaseException as exc:
            data = json.dumps({{"error": (type(exc).__name__ + ": " + str(exc)[:300])}}).encode()
        write_all(w, data)
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 20):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if not data or status:
        data = json.dumps({{"error": f"the canonical solution's process ended (wait status {{status}})"}}).encode()
    write_all(out_fd, HEADER.pack(len(data)) + data)
"""

_DESERIALIZE_SOURCE = Path(__file__).with_name("evalplus_mbpp.py").read_text()


@dataclass
class GroundTruth:
    base: list  # expected outputs: plain-data literal text, ["digest", sha256, length] or ["too_large"]
    base_time: list[float]
    plus: list
    plus_time: list[float]


class GroundTruthError(ValueError):
    """The canonical solution could not produce the expected outputs (a dataset problem)."""


def dataset_kind(problem: Problem) -> str:
    """"mbpp" or "humaneval": which of evalplus's special oracles apply."""
    return "mbpp" if problem.task_id.lower().startswith("mbpp") else "humaneval"


def inputs(problem: Problem, part: str) -> list:
    """A part's inputs as the canonical solution receives them (MBPP+ stores some tuples, sets and
    complex numbers as JSON lists and strings: evalplus's `mbpp_deserialize_inputs`)."""
    raw = problem.base_input if part == "base" else problem.plus_input
    if dataset_kind(problem) == "mbpp":
        from sandbox.evalplus_mbpp import deserialize_inputs

        return deserialize_inputs(problem.task_id, raw)
    return raw


_LOCK = threading.Lock()
_MEMORY: dict[str, GroundTruth] = {}
_PENDING: dict[str, threading.Lock] = {}
_SERVERS = threading.local()


def cache_key(problem: Problem) -> str:
    text = json.dumps([CACHE_VERSION, problem.task_id, problem.prompt, problem.canonical_solution, problem.entry_point,
                       problem.base_input, problem.plus_input], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def ground_truth(problem: Problem, isolation: str) -> GroundTruth:
    """Expected outputs and reference times: from memory, the disk cache, or one sandboxed run --
    one per problem: pool threads that need the same problem at once wait for the first."""
    key = cache_key(problem)
    with _LOCK:
        if key in _MEMORY:
            return _MEMORY[key]
        pending = _PENDING.setdefault(key, threading.Lock())
    with pending:
        with _LOCK:
            if key in _MEMORY:
                return _MEMORY[key]
        path = cache_root() / "evalplus" / f"{key}.json"
        truth = _load(path)
        if truth is None:
            truth = _compute(problem, isolation)
            _save(path, truth)
        with _LOCK:
            _MEMORY[key] = truth
            _PENDING.pop(key, None)
    return truth


def _load(path: Path) -> GroundTruth | None:
    try:
        data = json.loads(path.read_text())
        return GroundTruth(**{k: data[k] for k in ("base", "base_time", "plus", "plus_time")})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(path: Path, truth: GroundTruth) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(json.dumps(truth.__dict__))
        tmp.replace(path)
    except OSError:
        pass  # not cached: computed again next time


def _compute(problem: Problem, isolation: str) -> GroundTruth:
    # Inputs go as the record's own JSON (parsed ~10x faster than literal text) and are rebuilt inside.
    spec = {"code": problem.prompt + problem.canonical_solution,  # as evalplus: prompt + canonical
            "entry_point": problem.entry_point, "task_id": problem.task_id, "mbpp": dataset_kind(problem) == "mbpp",
            "deserialize": _DESERIALIZE_SOURCE,
            "not_none": dataset_kind(problem) == "mbpp" and problem.entry_point in MBPP_OUTPUT_NOT_NONE_TASKS,
            "base": problem.base_input, "plus": problem.plus_input}
    server = getattr(_SERVERS, "server", None)
    if server is None or server.isolation != isolation or not server.alive:
        server = _SERVERS.server = _TruthServer(isolation)
    try:
        data = server.ask(spec, time.monotonic() + GROUND_TRUTH_TIMEOUT_S)
        if "error" in data:
            raise GroundTruthError(f"{problem.task_id}: the canonical solution did not run on the inputs: "
                                   f"{str(data['error'])[:300]}")
        truth = GroundTruth(base=data["base"], base_time=data["base_time"], plus=data["plus"], plus_time=data["plus_time"])
        for value in truth.base + truth.plus:  # text (parsed as plain data by the plan), a digest or too_large
            if not (isinstance(value, str) or value == ["too_large"] or (
                    len(value) == 3 and value[0] == "digest" and str(value[1]).isalnum() and type(value[2]) is int)):
                raise ValueError("not an expected output")
    except _ServerLost as exc:
        server.stop()
        _SERVERS.server = None
        raise GroundTruthError(f"{problem.task_id}: the canonical solution did not run on the inputs: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, GroundTruthError):
            raise
        raise GroundTruthError(f"{problem.task_id}: the canonical solution's outputs are not plain data: {exc}") from None
    if len(truth.base) != len(problem.base_input) or len(truth.plus) != len(problem.plus_input):
        raise GroundTruthError(f"{problem.task_id}: the canonical solution returned the wrong number of outputs")
    return truth


class _ServerLost(RuntimeError):
    pass


class _TruthServer:
    """The warm isolated interpreter of one pool thread (bwrap's --die-with-parent ends it with the
    thread; `stop` or garbage collection before that)."""

    def __init__(self, isolation: str):
        self.isolation = isolation
        if isolation == "bwrap":
            root, binds = IN_SANDBOX, {str(PACKAGE): f"{IN_SANDBOX}/worker"}
        else:
            root, binds = str(PACKAGE.parent), None
        script = SERVER_SCRIPT.format(root=root, canon=CANON_SOURCE, digest_over=DIGEST_OVER)
        limits = Limits(timeout_s=GROUND_TRUTH_TIMEOUT_S, memory_mb=GROUND_TRUTH_MEMORY_MB, nproc=16, fsize_mb=16,
                        nofile=64, tmpfs_mb=64)
        self.proc, self.command = start_isolated([python_executable(), "-I", "-S", "-c", script], limits=limits,
                                                 isolation=isolation, bind_to=binds, bind_python=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ask(self, spec: dict, deadline: float) -> dict:
        """Send one spec, wait for its reply until `deadline`; `_ServerLost` for anything but a reply."""
        try:
            self.proc.stdin.write(encode_frame(spec, REPLY_LIMIT))
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise _ServerLost(f"the truth server is gone ({type(exc).__name__})") from None
        reader, fd = FrameReader(self.proc.stdout.fileno(), REPLY_LIMIT), self.proc.stdout.fileno()
        try:
            while (reply := reader.pop()) is None:
                if reader.eof:
                    raise _ServerLost("the truth server exited")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _ServerLost(f"timeout ({GROUND_TRUTH_TIMEOUT_S:.0f} s)")
                if select.select([fd], [], [], remaining)[0]:
                    reader.feed()
        except ProtocolError as exc:
            raise _ServerLost(str(exc)) from None
        return reply

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            if self.command.reap:
                reap_uid(self.command.uid)
            self.proc = None

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # interpreter shutdown: bwrap's --die-with-parent still ends it
            pass


__all__ = ["CANON_SOURCE", "GroundTruth", "GroundTruthError", "MBPP_OUTPUT_NOT_NONE_TASKS", "dataset_kind", "ground_truth",
           "inputs"]
