"""The benchmark's outputs: ratios against the unquantised build, a markdown table laid out like
PanGu-Coder2's Table 4 (build, precision, size, memory, speed, pass@1), a plot, and the machine."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy it was."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                            "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    for package in ("torch", "transformers", "ctranslate2", "gptqmodel", "optimum"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    return info


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """speedup and memory_ratio of each row against the first unquantised (transformers) row."""
    base = next((r for r in rows if r.get("kind") == "transformers"), rows[0] if rows else None)
    if not base:
        return
    for r in rows:
        r["baseline"] = base["build"]
        if base.get("tokens_per_s") and r.get("tokens_per_s"):
            r["speedup_b1"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
        for key in [k for k in r if k.startswith("tokens_per_s_b")]:
            if base.get(key):
                r[f"speedup_{key.removeprefix('tokens_per_s_')}"] = round(r[key] / base[key], 2)
        for key in ("peak_memory_mb", "load_memory_mb", "weights_mb"):
            if base.get(key) and r.get(key) is not None:
                r[f"{key.removesuffix('_mb')}_ratio"] = round(r[key] / base[key], 3)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], batch_sizes: list[int]) -> str:
    big = [b for b in batch_sizes if b != 1]
    head = ["Model", "Precision", "Weights (MB)", "Peak memory (MB)", "Load memory (MB)", "TTFT (ms)", "ms/token",
            "tokens/s (b=1)", *[f"tokens/s (b={b})" for b in big], "pass@1", "speed ×", "memory ×"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        speed = r.get(f"speedup_b{big[-1]}") if big else r.get("speedup_b1")
        cells = [r["label"], r["precision"], _fmt(r.get("weights_mb")), _fmt(r.get("peak_memory_mb")), _fmt(r.get("load_memory_mb")),
                 _fmt(r.get("ttft_ms")), _fmt(r.get("ms_per_token"), 2), _fmt(r.get("tokens_per_s")),
                 *[_fmt(r.get(f"tokens_per_s_b{b}")) for b in big], _fmt(r.get("pass@1"), 2),
                 _fmt(speed, 2), _fmt(r.get("peak_memory_ratio"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"speed × = tokens/s at batch {big[-1] if big else 1} relative to {rows[0].get('baseline', '')}; "
            "memory × = peak memory relative to it." if rows else "")
    return "\n".join(lines) + ("\n\n" + note if note else "") + "\n"


def plot(rows: list[dict[str, Any]], batch_sizes: list[int], path: str | Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    names = [r["build"] for r in rows]
    big = max(batch_sizes)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].bar(names, [r.get("tokens_per_s") or 0 for r in rows], label="batch 1")
    if big != 1:
        axes[0].bar(names, [r.get(f"tokens_per_s_b{big}") or 0 for r in rows], alpha=0.5, label=f"batch {big}")
    axes[0].set_title("tokens/s (higher is better)")
    axes[0].legend()
    axes[1].bar(names, [r.get("peak_memory_mb") or 0 for r in rows])
    axes[1].set_title("peak memory, MB (lower is better)")
    axes[2].bar(names, [r.get("pass@1") or 0 for r in rows])
    axes[2].set_title("pass@1 % (greedy)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


__all__ = ["add_ratios", "machine", "markdown_table", "plot"]
