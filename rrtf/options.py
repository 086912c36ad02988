"""Knobs defined once, for every job: the job configs (RRTFConfig, EvalConfig, data_evol's,
compare_tuning's) are composed of the same option dataclasses instead of copying fields (TRL's pattern:
one parser over dataclasses), and which fields are part of a run's identity is declared beside them
(`IDENTITY_FIELDS`, a class attribute of each config class) and read by one helper.

    knob(64, "Max tokens per response.")                    # a dataclass field with its help
    IDENTITY_FIELDS = frozenset({"max_new_tokens"})         # in the class body: part of a run's identity
    identity_of(config)                                      # {name: value} of the identity fields, JSON-safe
    class MyJobConfig(SandboxOptions): ...                   # --sandbox_workers, --sandbox_timeout_s, ... in every job
    config.sandbox_config()                                  # -> sandbox.SandboxConfig

Light: no torch at import (the light layer, docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import field, fields
from typing import Any

from sandbox.config import SandboxConfig


def knob(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its help text (a list default takes default_factory). The metadata holds only
    what argparse accepts: TRL's parser passes it to add_argument as keyword arguments."""
    meta = {"help": help}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def identity_fields(cls: type) -> frozenset[str]:
    """The identity fields a config class declares, its bases' included (`IDENTITY_FIELDS` class attributes)."""
    return frozenset().union(*(vars(c).get("IDENTITY_FIELDS", ()) for c in cls.__mro__))


def identity_of(config: Any) -> dict[str, Any]:
    """The values of `config`'s identity fields, as JSON would store them (so a stored identity compares equal)."""
    names = identity_fields(type(config))
    values = {f.name: getattr(config, f.name) for f in fields(config) if f.name in names}
    return json.loads(json.dumps(values, default=str))


# What changes a verdict, of the sandbox's knobs: limits decide timeouts and memory errors; the pool size,
# output kept in a Verdict, isolation choice and debugging do not change whether code passes.
SANDBOX_IDENTITY = frozenset({"timeout_s", "program_timeout_s", "memory_mb", "compile_timeout_s", "nproc", "fsize_mb", "nofile"})
SANDBOX_PREFIX = "sandbox_"


def _sandbox_fields() -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(SandboxConfig)
    defaults = SandboxConfig()
    return [(SANDBOX_PREFIX + f.name, hints[f.name],
             knob(getattr(defaults, f.name), f"sandbox: {f.metadata.get('help', '')}"))
            for f in fields(SandboxConfig)]


def sandbox_option_names() -> list[str]:
    """The --sandbox_* fields: what one job hands to another it configures (compare_tuning -> RRTFConfig)."""
    return [SANDBOX_PREFIX + f.name for f in fields(SandboxConfig)]


def _sandbox_config(self) -> SandboxConfig:
    """The judge's config from this job's --sandbox_* flags."""
    return SandboxConfig(**{f.name: getattr(self, SANDBOX_PREFIX + f.name) for f in fields(SandboxConfig)})


# Every SandboxConfig field as a flag of the job, generated (so a new sandbox knob reaches every job with
# no edit here): --sandbox_workers, --sandbox_timeout_s, --sandbox_program_timeout_s, --sandbox_memory_mb, ...
SandboxOptions = dataclasses.make_dataclass("SandboxOptions", _sandbox_fields(), namespace={
    "sandbox_config": _sandbox_config, "IDENTITY_FIELDS": frozenset(SANDBOX_PREFIX + n for n in SANDBOX_IDENTITY)})
SandboxOptions.__doc__ = "The sandbox's knobs as `--sandbox_<name>` flags of a job (sandbox.SandboxConfig's fields)."
SandboxOptions.__module__ = __name__


@dataclasses.dataclass
class RolloutOptions:
    """Where a job's rollout runs (rrtf.rollout.engine): in this process, or on a Ray cluster -- generation
    workers and judge workers as actors. Not part of any run's identity: both write the same records."""

    rollout: str = knob("local", "Where generation and judging run: local (this process and its sandbox pool) or ray "
                                 "(generator and judge actors on a Ray cluster; docs/distributed.md).")
    ray_address: str | None = knob(None, "--rollout ray: the cluster to join ('auto', HOST:PORT or ray://...). "
                                         "Default: start a local one for this job.")
    ray_generators: int = knob(1, "--rollout ray: generator actors (each holds the model; one GPU each where the cluster has GPUs).")
    ray_judges: int = knob(1, "--rollout ray: judge actors (each runs a sandbox pool of --sandbox_workers processes).")
    ray_in_flight: int = knob(2, "--rollout ray: batches queued per actor (bounds memory and the object store: generation "
                                 "waits when judging falls behind).")
    ray_judge_resource: str | None = knob(None, "--rollout ray: a custom resource each judge actor needs one of (e.g. 'judge', "
                                                "given to CPU nodes with `ray start --resources '{\"judge\": 64}'`), "
                                                "so judges stay off GPU nodes.")

    def __post_init__(self) -> None:
        if self.rollout not in ("local", "ray"):
            raise ValueError(f"--rollout {self.rollout}: expected local or ray")
        for name in ("ray_generators", "ray_judges", "ray_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        parent = getattr(super(), "__post_init__", None)  # cooperative: a composed config's other bases check theirs
        if parent is not None:
            parent()


__all__ = ["SANDBOX_IDENTITY", "SANDBOX_PREFIX", "RolloutOptions", "SandboxOptions", "identity_fields", "identity_of", "knob", "sandbox_option_names"]


def learning_rate_overrides(entries: list[str]) -> dict[str, float]:
    """`--learning_rates METHOD=LR ...` (compare_tuning, compare_methods): a learning rate per method."""
    overrides = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        try:
            overrides[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--learning_rates {entry}: expected METHOD=LR")
    return overrides
