"""Admission in front of the pool: a bounded queue, a fixed number of jobs judging at once, and tickets
a request can cancel (its client went away, or its deadline passed) so that its queued jobs are dropped.

The pool (`Sandbox.check_many`) takes whatever it is given; the service must not. Each request's jobs
go into one FIFO of at most `queue_limit` jobs (a request that does not fit is refused whole: 429), and
`slots` threads take jobs from it one at a time and judge them in the pool -- so at most `slots` jobs
are in the pool at once, whatever the number of clients. A cancelled ticket's jobs still in the FIFO are
skipped when they come up (never run); a job already judging runs to its end, bounded by its limits.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from sandbox.base.records import Problem, Verdict
from sandbox.config import SandboxConfig
from sandbox.pool import Sandbox


class QueueFull(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"queue full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class Ticket:
    """One request's jobs and their verdicts (in request order)."""

    items: list[tuple[Problem, str, int]]
    config: SandboxConfig
    verdicts: list = field(default_factory=list)
    left: int = 0
    cancelled: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.verdicts = [None] * len(self.items)
        self.left = len(self.items)


class JobQueue:
    def __init__(self, sandbox: Sandbox, slots: int, queue_limit: int):
        self.sandbox, self.queue_limit = sandbox, queue_limit
        self._fifo: collections.deque[tuple[Ticket, int]] = collections.deque()
        self._cv = threading.Condition()
        self._closing = False
        self.stats = {"admitted": 0, "judged": 0, "dropped": 0, "refused": 0, "running": 0}
        self.slots = slots
        self._job_s = 0.0  # seconds per job, smoothed: what Retry-After is estimated from
        self._threads = [threading.Thread(target=self._slot, name=f"serve-slot-{i}", daemon=True) for i in range(slots)]
        for t in self._threads:
            t.start()

    def submit(self, ticket: Ticket) -> Ticket:
        with self._cv:
            if self._closing:
                raise QueueFull(5)
            if len(self._fifo) + len(ticket.items) > self.queue_limit:
                self.stats["refused"] += len(ticket.items)
                raise QueueFull(self._retry_after(len(self._fifo) + len(ticket.items) - self.queue_limit))
            if not ticket.items:
                ticket.done.set()
                return ticket
            self._fifo.extend((ticket, i) for i in range(len(ticket.items)))
            self.stats["admitted"] += len(ticket.items)
            self._cv.notify(len(ticket.items))
        return ticket

    def cancel(self, ticket: Ticket) -> int:
        """Drop the ticket's queued jobs now (they will never run); returns how many were dropped."""
        with self._cv:
            if ticket.cancelled:
                return 0
            ticket.cancelled = True
            before = len(self._fifo)
            self._fifo = collections.deque(job for job in self._fifo if job[0] is not ticket)
            dropped = before - len(self._fifo)
            self.stats["dropped"] += dropped
            return dropped

    def snapshot(self) -> dict:
        with self._cv:
            return {**self.stats, "queued": len(self._fifo), "seconds_per_job": round(self._job_s, 4)}

    def close(self) -> None:
        with self._cv:
            self._closing = True
            for ticket, _ in self._fifo:
                ticket.cancelled = True
                ticket.done.set()
            self._fifo.clear()
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=60)

    def _retry_after(self, excess: int) -> int:
        # Time for the slots to judge the excess at the measured time per job; at least 1 s, at most a minute.
        return max(1, min(60, int(excess * self._job_s / self.slots) + 1))

    def _slot(self) -> None:
        while True:
            with self._cv:
                while not self._fifo and not self._closing:
                    self._cv.wait()
                if self._closing:
                    return
                ticket, i = self._fifo.popleft()
                self.stats["running"] += 1
            start = time.monotonic()
            try:
                verdict: Verdict | BaseException = next(iter(self.sandbox.check_many([ticket.items[i]], config=ticket.config)))
            except BaseException as exc:  # noqa: BLE001 - a broken problem (PlanError) is the request's error
                verdict = exc
            with self._cv:
                self.stats["running"] -= 1
                self.stats["judged"] += 1
                took = time.monotonic() - start
                self._job_s = 0.9 * self._job_s + 0.1 * took if self._job_s else took
                if isinstance(verdict, BaseException):
                    ticket.error = ticket.error or verdict
                else:
                    ticket.verdicts[i] = verdict
                ticket.left -= 1
                if ticket.left == 0 or ticket.error is not None:
                    ticket.done.set()
