"""Where the one rollout runs. `generate` and `judge` (this package) decide *what* is generated and
judged and write every record; an engine decides only *where* the work happens:

- `LocalEngine` (the default): each batch is asked of the stage's backend in this process, and judging
  is a `sandbox.Sandbox` pool here.
- `RayEngine` (`--rollout ray`, rrtf/rollout/ray_engine.py): batches go to generator actors, judging to
  judge actors, and candidates stream to the judges while generation goes on.

Both give the same candidates and verdicts: samples are seeded per problem and sample, never per batch
or process, and a verdict depends only on the problem and the code. The engine travels with the
sandbox it opened (`engine.sandbox(config)` -> an object with `check_many` and `.engine`), so every
job that already hands a sandbox down (training rounds, evaluation, compare_*) runs on it unchanged.

    with engine_from(config) as engine, engine.sandbox(config.sandbox_config()) as sandbox:
        ...  # sample(..., sandbox) / evaluate(..., sandbox): generation and judging on the engine
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sandbox.config import SandboxConfig

# run(backend, batch) -> the batch's candidate records (rrtf.rollout.generate.run_batch with its stage bound)
BatchRunner = Callable[[Any, list], list[dict]]


class LocalEngine:
    """Everything in this process: the rollout as it always ran."""

    name = "local"

    def map_batches(self, backend: Any, batches: Iterable[list], run: BatchRunner) -> Iterator[tuple[list, list[dict]]]:
        """(batch, its records) for each batch, in order."""
        for batch in batches:
            yield batch, run(backend, batch)

    def judge_ahead(self, batch: Sequence, records: Sequence[dict]) -> None:
        """A chance to start judging candidates as soon as they exist (the local judge runs when asked)."""

    def sandbox(self, config: SandboxConfig | None = None) -> Any:
        from sandbox import Sandbox

        sandbox = Sandbox(config)
        sandbox.engine = self
        return sandbox

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LOCAL = LocalEngine()


def engine_of(sandbox: Any) -> Any:
    """The engine a sandbox was opened on (a plain `Sandbox`, or any judge without one: local)."""
    return getattr(sandbox, "engine", None) or LOCAL


def engine_from(options: Any) -> Any:
    """The engine `rrtf.options.RolloutOptions` (or a config composed of it) asks for."""
    if getattr(options, "rollout", "local") == "local":
        return LocalEngine()
    from rrtf.rollout.ray_engine import RayEngine

    return RayEngine(options)


__all__ = ["LOCAL", "BatchRunner", "LocalEngine", "engine_from", "engine_of"]
