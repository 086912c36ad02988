"""LLM calls through rrtf's backend layer, each finished result handed back at once so it is stored
before the next one finishes: a kill loses only the requests in flight, never a finished answer.

Served models (any OpenAI-compatible endpoint) get `concurrency` requests in flight, each a
`generate([one request])` on a shared backend (httpx pools the connections); timeouts and retries
with backoff are the backend's. A request the endpoint rejects (HTTP 4xx) or answers with garbage
after the retries is a counted, logged failure that the stage does not store (a rerun of an
unfinished stage asks again); `max_failed_calls` failures in a row stop the job with the last error
(an endpoint that is down or wrong for every request). Local models decode in batches.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from rrtf.backends import GenerationBackend, GenerationRequest, SamplingParams

logger = logging.getLogger("data_evol.calls")


def _endpoint_error() -> type[Exception]:
    from rrtf.backends.openai_backend import EndpointError

    return EndpointError


@dataclass
class CallStats:
    calls: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the report


def run_requests(backend: GenerationBackend, items: Sequence[tuple[object, GenerationRequest]], params: SamplingParams,
                 on_result: Callable[[object, str], None], *, concurrency: int = 8, batch_size: int = 16,
                 max_failed: int = 8, stats: CallStats | None = None, bar=None) -> CallStats:
    """Generate one completion per item; `on_result(key, text)` runs in this thread as each finishes."""
    stats = stats or CallStats()
    if not items:
        return stats
    served = getattr(backend, "registry_name", "") == "openai"
    if not served:
        for start in range(0, len(items), batch_size):
            chunk = items[start: start + batch_size]
            outputs = backend.generate([r for _, r in chunk], params)
            for (key, _), texts in zip(chunk, outputs):
                stats.calls += 1
                on_result(key, texts[0])
                if bar is not None:
                    bar.update(1)
        return stats
    endpoint_error = _endpoint_error()
    in_a_row = 0
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        running = {}

        def submit_next() -> bool:
            try:
                key, request = next(pending)
            except StopIteration:
                return False
            running[pool.submit(backend.generate, [request], params)] = key
            return True

        for _ in range(max(1, concurrency)):
            if not submit_next():
                break
        try:
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    stats.calls += 1
                    try:
                        (texts,) = future.result()  # one request: its n=1 completions
                    except endpoint_error as exc:  # rejected (4xx) or garbage after the retries: skip, count, log
                        stats.failed += 1
                        in_a_row += 1
                        if len(stats.errors) < 5:
                            stats.errors.append(str(exc)[:300])
                        logger.warning("request %s failed (not stored; a rerun asks again): %s", key, exc)
                        if in_a_row >= max_failed:
                            raise endpoint_error(f"{in_a_row} requests in a row failed; stopping (finished work is stored). "
                                                 f"Last error: {exc}") from None
                    else:
                        in_a_row = 0
                        on_result(key, texts[0])
                    if bar is not None:
                        bar.update(1)
                    submit_next()
        except BaseException:
            for future in running:
                future.cancel()
            raise
    return stats


__all__ = ["CallStats", "run_requests"]
