"""`Sandbox`: the public API. A pool of warm workers (sandbox/workers.py), one host thread each;
every sample is judged by its language (sandbox/languages/) and verdicts stream out in completion
order.

One sample can never stop the run: whatever a sample (or a worker) does, it gets exactly one verdict
-- `input_too_large` if it is over the size limit (decided here, before anything is sent),
`harness_lost (...)` if its worker died, hung or sent anything malformed -- and the pool thread
carries on. Only a broken *problem* (tests that cannot be planned) is raised to the caller.
"""
from __future__ import annotations

import collections
import queue
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sandbox.base.records import Problem, Verdict
from sandbox.config import SandboxConfig
from sandbox.isolation import require_isolation
from sandbox.languages import PlanError
from sandbox.registry import language
from sandbox.verdicts import INPUT_TOO_LARGE, Tally, make_verdict, refused
from sandbox.workers import Worker, WorkerLost

PIPELINE_DEPTH = 2  # jobs queued in each worker at once


class Sandbox:
    """Judge candidate programs against a problem's tests in a pool of warm isolated workers.

        with Sandbox(SandboxConfig(workers=2)) as sb:
            verdict = sb.check(problem, completion)
            for verdict in sb.check_many([(problem, completion, index), ...]): ...
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.isolation = require_isolation(self.config.isolation, self.config.allow_weak_isolation)
        self.workers = [Worker(self.config, self.isolation, i) for i in range(max(1, self.config.workers))]
        self._jobs: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._threads:
            return self
        # Each worker is started by the thread that serves it for the pool's whole life: bwrap's
        # --die-with-parent fires when the *thread* that spawned it exits.
        ready = [threading.Event() for _ in self.workers]
        errors: list[BaseException] = []
        for w, event in zip(self.workers, ready, strict=True):
            t = threading.Thread(target=self._serve, args=(w, event, errors), daemon=True,
                                 name=f"sandbox-worker-{w.index}")
            t.start()
            self._threads.append(t)
        for event in ready:
            event.wait()
        if errors:
            self.close()
            raise errors[0]
        return self

    def close(self) -> None:
        for t in self._threads:
            if t.is_alive():
                self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=60)
        self._threads = []
        for w in self.workers:
            w.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- judging ----------------------------------------------------------------------------------
    def check(self, problem: Problem, completion: str, sample_index: int = 0) -> Verdict:
        return next(iter(self.check_many([(problem, completion, sample_index)])))

    def check_many(self, items: Iterable[tuple[Problem, str, int]], config: SandboxConfig | None = None) -> Iterator[Verdict]:
        """Judge all items; yield verdicts in completion order (not input order). `config`: limits for these
        items only (time, memory), which the caller derives from the pool's own (sandbox/serve caps a request's limits
        by its own maxima and keeps every other setting: isolation, workers); the host's deadlines come from each job."""
        self.start()
        out: queue.Queue = queue.Queue()
        pending = 0
        for problem, completion, index in items:
            self._jobs.put((problem, completion, index, out, config or self.config))
            pending += 1
        for _ in range(pending):
            verdict = out.get()
            if isinstance(verdict, BaseException):
                raise verdict
            yield verdict

    def _serve(self, worker: Worker, ready: threading.Event, errors: list) -> None:
        try:
            worker.start()
        except BaseException as exc:  # noqa: BLE001 - raised by start()
            errors.append(exc)
            ready.set()
            return
        ready.set()
        inflight: collections.deque[Pending] = collections.deque()  # oldest first
        stopping = False
        while inflight or not stopping:
            # Keep up to PIPELINE_DEPTH jobs queued in the worker; block only when it has none.
            while not stopping and len(inflight) < PIPELINE_DEPTH:
                try:
                    item = self._jobs.get(block=not inflight)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                self._start_one(worker, item, inflight)
            if inflight:
                self._finish_one(worker, inflight)

    def _start_one(self, worker: Worker, item: tuple, inflight: collections.deque) -> None:
        problem, completion, index, out, config = item
        try:
            lang = language(problem.language)
            if lang.LANGUAGE.runs_in == "isolated":
                out.put(lang.judge(problem, completion, index, config))
                return
            job, names = lang.prepare(problem, completion, config)
            job["id"] = secrets.token_hex(16)  # unguessable: no other job's harness can report for it
            pending = Pending(job, names, item)
            try:
                pending.ordinal = worker.submit(job)
            except ValueError:  # over the frame limit: decided before anything was sent
                out.put(refused(problem.task_id, index, names, INPUT_TOO_LARGE, isolation=self.isolation))
                return
            except WorkerLost as exc:
                worker.stop()
                pending.lost = str(exc)
            inflight.append(pending)
        except PlanError as exc:  # the problem's tests are unusable: the caller's error
            out.put(exc)
        except Exception as exc:  # noqa: BLE001 - a bug or a hostile output must not stop the run
            out.put(self._internal_error(problem, index, exc))

    def _finish_one(self, worker: Worker, inflight: collections.deque) -> None:
        pending = inflight.popleft()
        problem, _, index, out, config = pending.item
        try:
            tally = Tally(len(pending.names), config.verdict_output_chars)
            if pending.lost:
                tally.lose(pending.lost)
            else:
                worker.collect(pending.job, pending.ordinal, tally)
            if tally.stopped and not worker.alive:
                self._resubmit(worker, inflight)
            out.put(make_verdict(problem.task_id, index, pending.names, tally, isolation=self.isolation))
        except Exception as exc:  # noqa: BLE001
            out.put(self._internal_error(problem, index, exc))

    @staticmethod
    def _resubmit(worker: Worker, inflight: collections.deque) -> None:
        """The worker was lost: jobs queued in it never started. Queue them in its replacement."""
        for pending in inflight:
            try:
                pending.ordinal, pending.lost = worker.submit(pending.job), ""
            except (WorkerLost, ValueError) as exc:
                worker.stop()
                pending.lost = f"worker: {exc}"

    def _internal_error(self, problem: Problem, index: int, exc: Exception) -> Verdict:
        tally = Tally(0)
        tally.lose(f"internal error: {type(exc).__name__}: {exc}")
        return make_verdict(problem.task_id, index, [], tally, isolation=self.isolation)


@dataclass
class Pending:
    """A job queued in a worker, waiting to be collected."""

    job: dict
    names: list[str]
    item: tuple  # (problem, completion, sample index, output queue, config)
    ordinal: int = 0  # which harness of the worker judges it
    lost: str = ""  # set when it could not even be queued
