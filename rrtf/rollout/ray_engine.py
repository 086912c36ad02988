"""`--rollout ray`: the one rollout (rrtf.rollout.generate / judge) with its work on a Ray cluster.

- Generator actors (`GeneratorWorker`, one GPU each where the cluster has GPUs) hold the stage's backend
  -- put in the object store once per backend, fetched once per actor -- and run whole batches with
  `rrtf.rollout.generate.run_batch`, the function the local engine calls.
- Judge actors (`JudgeWorker`, CPU only; `--ray_judge_resource` keeps them on nodes that offer it) each
  run a `sandbox.Sandbox` pool. Candidates stream to them as each batch comes back (`judge_ahead`), while
  generation goes on; `judge()` later takes those verdicts instead of judging again.
- Bounded everywhere: at most `--ray_in_flight` calls queued per actor (generation waits when judging
  falls behind: backpressure), results are taken out of the object store as they arrive, and at most
  AHEAD_LIMIT verdicts are held before `judge()` asks for them.
- Faults: an actor whose process dies is restarted by Ray (max_restarts) and the calls it had not
  finished are retried on the new process (max_task_retries), so its unfinished batch is redone once and
  written once (the driver writes a batch when its result arrives). A killed driver resumes from the JSONL
  files like a local run: nothing here keeps state that the files do not.

The records are the local run's: the driver alone writes, samples are seeded per problem and sample
(never per batch, process or actor), and a verdict depends only on the problem and the code.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sandbox.base.records import Problem, Verdict
from sandbox.config import SandboxConfig

logger = logging.getLogger("rrtf.rollout.ray")

RESTARTS = 4  # how often one actor may die and be replaced before the rollout fails
READY_TIMEOUT_S = 300  # actors not placed by then: the cluster lacks the resources (said in one line)
AHEAD_LIMIT = 50_000  # verdicts judged ahead and not yet asked for, at most (bounds the driver's memory)
PENDING = object()  # an ahead verdict still being judged


class GeneratorWorker:
    """A Ray actor: batches of one stage asked of its backend."""

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}  # object ref hex -> backend, the newest two (a new round's student evicts)

    def ready(self) -> int:
        return os.getpid()

    def run(self, box: list, run, batch: list) -> list[dict]:
        import ray

        ref = box[0]  # boxed: Ray hands a bare ObjectRef argument over resolved, we want it fetched once
        backend = self.backends.get(ref.hex())
        if backend is None:
            backend = self.backends[ref.hex()] = ray.get(ref)
            while len(self.backends) > 2:
                self.backends.pop(next(iter(self.backends))).close()
        return run(backend, batch)


class JudgeWorker:
    """A Ray actor: a sandbox pool judging chunks of (problem, completion, index)."""

    def __init__(self, config: SandboxConfig) -> None:
        from sandbox import Sandbox

        self.sandbox = Sandbox(config).start()

    def ready(self) -> int:
        return os.getpid()

    def check(self, jobs: list[tuple[Problem, str, int]], config: SandboxConfig | None = None) -> list[Verdict]:
        return list(self.sandbox.check_many(jobs, config))


class Dispatcher:
    """Calls to a set of actors, each with at most `depth` in flight, results as they complete."""

    def __init__(self, actors: list, depth: int) -> None:
        self.actors, self.depth = actors, depth
        self.load = [0] * len(actors)
        self.pending: dict[Any, tuple[int, Any]] = {}  # ObjectRef -> (actor index, what the caller attached)

    @property
    def full(self) -> bool:
        return len(self.pending) >= len(self.actors) * self.depth

    def submit(self, tag: Any, method: str, *args: Any) -> None:
        i = min(range(len(self.actors)), key=self.load.__getitem__)
        self.load[i] += 1
        self.pending[getattr(self.actors[i], method).remote(*args)] = (i, tag)

    def next(self) -> tuple[Any, Any, BaseException | None]:
        """(tag, result, None) of the first call to complete, or (tag, None, the worker's error)."""
        import ray

        (ref,), _ = ray.wait(list(self.pending), num_returns=1)
        i, tag = self.pending.pop(ref)
        self.load[i] -= 1
        try:
            return tag, ray.get(ref), None
        except ray.exceptions.RayTaskError as exc:
            return tag, None, exc.as_instanceof_cause()  # the worker's own error (e.g. a problem that cannot be planned)


_DIGESTS: dict[int, tuple[Problem, str]] = {}  # id -> (the problem, held so the id stays its own; its digest)


def problem_digest(problem: Problem) -> str:
    """A digest of the whole problem as judged, computed once per problem object (evalplus problems hold
    megabytes of tests; each of their candidates must not hash them again)."""
    held = _DIGESTS.get(id(problem))
    if held is None or held[0] is not problem:
        if len(_DIGESTS) >= 4096:
            _DIGESTS.clear()
        text = json.dumps(problem.to_record(), sort_keys=True, default=str)
        held = _DIGESTS[id(problem)] = (problem, hashlib.sha256(text.encode("utf-8", "replace")).hexdigest())
    return held[1]


def judge_key(problem: Problem, completion: str) -> str:
    """What a verdict depends on: the whole problem as judged and the completion."""
    return hashlib.sha256(f"{problem_digest(problem)}\0{completion}".encode("utf-8", "replace")).hexdigest()


class RayEngine:
    """Generator and judge actors on a Ray cluster (`rrtf.options.RolloutOptions`'s ray_* knobs)."""

    name = "ray"

    def __init__(self, options: Any) -> None:
        import ray

        self.options = options
        self.owns_cluster = not ray.is_initialized()
        if self.owns_cluster:
            logging.getLogger("ray").setLevel(logging.WARNING)
            # A local cluster for this job: logical CPUs enough to place every actor (they share the cores,
            # as the local engine's processes would); a judge asks for as many as its sandbox has workers.
            workers = max(1, getattr(options, "sandbox_workers", 8))
            cpus = None if options.ray_address else max(os.cpu_count() or 1, options.ray_generators + options.ray_judges * workers)
            ray.init(address=options.ray_address, num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        self.gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.generators: Dispatcher | None = None
        self.judges: Dispatcher | None = None
        self.judge_config: SandboxConfig | None = None
        self.puts: list[tuple[Any, Any]] = []  # (backend, its object ref): the newest few
        self.ahead: dict[str, Any] = {}  # judge_key -> Verdict | PENDING
        self.finished: dict[int, list[tuple[int, Verdict]]] = {}  # check_many call -> its verdicts not yet yielded
        self.calls = 0
        self.pids: dict[str, list[int]] = {}  # "generator" / "judge" -> each actor's first process (logs, tests)

    # -- actors ---------------------------------------------------------------------------------------
    def _start(self, cls: type, count: int, what: str, args: tuple = (), **resources: Any) -> list:
        import ray

        remote = ray.remote(cls).options(max_restarts=RESTARTS, max_task_retries=RESTARTS, **resources)
        actors = [remote.remote(*args) for _ in range(count)]
        try:
            self.pids[what] = ray.get([a.ready.remote() for a in actors], timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            for a in actors:
                ray.kill(a)
            raise RuntimeError(f"--rollout ray: {count} {what} actor(s) needing {resources} could not be placed in "
                               f"{READY_TIMEOUT_S} s; the cluster has {ray.cluster_resources()}") from None
        return actors

    def _generator_pool(self) -> Dispatcher:
        if self.generators is None:
            actors = self._start(GeneratorWorker, self.options.ray_generators, "generator", num_cpus=1, num_gpus=self.gpus)
            self.generators = Dispatcher(actors, self.options.ray_in_flight)
        return self.generators

    def open_judges(self, config: SandboxConfig) -> None:
        if self.judges is not None and self.judge_config == config:
            return
        self.close_judges()
        need = {"resources": {self.options.ray_judge_resource: 1}} if self.options.ray_judge_resource else {}
        actors = self._start(JudgeWorker, self.options.ray_judges, "judge", (config,), num_cpus=max(1, config.workers),
                             max_concurrency=self.options.ray_in_flight + 1, **need)
        self.judges, self.judge_config = Dispatcher(actors, self.options.ray_in_flight), config

    def close_judges(self) -> None:
        import ray

        for a in self.judges.actors if self.judges else ():
            ray.kill(a)
        self.judges, self.judge_config, self.ahead = None, None, {}

    # -- generation -----------------------------------------------------------------------------------
    def _ref(self, backend: Any) -> Any:
        import ray

        for held, ref in self.puts:
            if held is backend:
                return ref
        try:
            ref = ray.put(backend)
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises, said in one line
            raise ValueError(f"--rollout ray: the {backend.describe()} cannot be sent to generator actors "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
        self.puts = [*self.puts[-1:], (backend, ref)]  # the object store keeps the newest two (a round's student and a teacher)
        return ref

    def map_batches(self, backend: Any, batches: Iterable[list], run) -> Iterator[tuple[list, list[dict]]]:
        """(batch, its records) as each batch completes on a generator actor."""
        pool = self._generator_pool()
        box = [self._ref(backend)]
        for batch in batches:
            while pool.full:
                yield self._generated(pool)
            pool.submit(batch, "run", box, run, batch)
        while pool.pending:
            yield self._generated(pool)

    @staticmethod
    def _generated(pool: Dispatcher) -> tuple[list, list[dict]]:
        batch, records, error = pool.next()
        if error is not None:
            raise error
        return batch, records

    # -- judging --------------------------------------------------------------------------------------
    def judge_ahead(self, batch: Sequence, records: Sequence[dict]) -> None:
        """Send a batch's new candidates to the judges now (when a sandbox is open on this engine)."""
        if self.judges is None or len(self.ahead) >= AHEAD_LIMIT:
            return
        asked = {(a.dataset, a.task_id): a for a in batch}
        jobs = []
        for rec in records:
            if rec.get("error"):  # nothing generated: judge() records it as not run
                continue
            problem, completion = asked[(rec.get("dataset", ""), rec["task_id"])].judge_input(rec["code"])
            key = judge_key(problem, completion)
            if key not in self.ahead:
                self.ahead[key] = PENDING
                jobs.append((problem, completion, key))
        self._submit(jobs, None, ahead=True)

    def _submit(self, jobs: list[tuple[Problem, str, Any]], config: SandboxConfig | None, *, ahead: bool = False) -> None:
        chunk = max(8, 4 * self.judge_config.workers)
        for start in range(0, len(jobs), chunk):
            part = jobs[start: start + chunk]
            while self.judges.full:
                self._collect()
            tags = (ahead, [tag for _, _, tag in part])
            self.judges.submit(tags, "check", [(p, c, i) for i, (p, c, _) in enumerate(part)], config)

    def _collect(self) -> None:
        """Wait for one chunk. Verdicts under a judge key go to `ahead`, those of a check_many call to
        `finished` (whichever call waits, the verdict reaches its own caller). A chunk
        judged ahead that failed is forgotten: judged again if asked for, the error then reaches its caller
        (judging ahead must not fail what no one asked to judge, e.g. a dataset judged without running code)."""
        (ahead, tags), verdicts, error = self.judges.next()
        if error is not None:
            if not ahead:
                raise error
            for tag in tags:
                if self.ahead.get(tag) is PENDING:
                    del self.ahead[tag]
            return
        for v in verdicts:
            tag = tags[v.sample_index]
            if isinstance(tag, str):
                if self.ahead.get(tag) is PENDING:
                    self.ahead[tag] = v
            else:
                self.finished.setdefault(tag[0], []).append((tag[1], v))

    def check_many(self, items: Iterable[tuple[Problem, str, int]], config: SandboxConfig | None = None) -> Iterator[Verdict]:
        """Verdicts of `items` in completion order. An item judged ahead takes that verdict, once; every
        other item is judged, repeats included (data_evol judges an answer twice to find flaky tests)."""
        call = self.calls = self.calls + 1  # tags (call, sample index): this call's verdicts, wherever collected
        taken: dict[str, tuple[int, Problem, str]] = {}  # judge key -> (sample index, problem, completion) judged ahead
        fresh: list[tuple[Problem, str, Any]] = []
        for problem, completion, index in items:
            key = judge_key(problem, completion) if config is None else ""
            if key and key in self.ahead and key not in taken:
                taken[key] = (index, problem, completion)
            else:
                fresh.append((problem, completion, (call, index)))
        left = len(fresh)
        try:
            while taken or left:
                for key in [k for k in taken if k not in self.ahead]:  # its ahead chunk failed: judged as asked now
                    index, problem, completion = taken.pop(key)
                    fresh.append((problem, completion, (call, index)))
                    left += 1
                self._submit(fresh, config)
                fresh = []
                for key in [k for k in taken if isinstance(self.ahead.get(k), Verdict)]:
                    yield replace(self.ahead.pop(key), sample_index=taken.pop(key)[0])
                for index, verdict in self.finished.pop(call, []):
                    left -= 1
                    yield replace(verdict, sample_index=index)
                if taken or left:
                    self._collect()
        finally:
            self.finished.pop(call, None)

    def sandbox(self, config: SandboxConfig | None = None) -> RaySandbox:
        return RaySandbox(self, config or SandboxConfig())

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        self.close_judges()
        for a in self.generators.actors if self.generators else ():
            ray.kill(a)
        self.generators, self.puts = None, []
        if self.owns_cluster:
            ray.shutdown()

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RaySandbox:
    """The judge actors as a sandbox: what `judge()` and evaluation call (`check_many`, `check`)."""

    def __init__(self, engine: RayEngine, config: SandboxConfig) -> None:
        self.engine, self.config = engine, config

    def start(self) -> RaySandbox:
        self.engine.open_judges(self.config)
        return self

    def close(self) -> None:
        self.engine.close_judges()

    def __enter__(self) -> RaySandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_many(self, items: Iterable[tuple[Problem, str, int]], config: SandboxConfig | None = None) -> Iterator[Verdict]:
        self.start()
        return self.engine.check_many(list(items), config)

    def check(self, problem: Problem, completion: str, sample_index: int = 0) -> Verdict:
        return next(iter(self.check_many([(problem, completion, sample_index)])))


__all__ = ["AHEAD_LIMIT", "Dispatcher", "GeneratorWorker", "JudgeWorker", "RayEngine", "RaySandbox", "judge_key"]
