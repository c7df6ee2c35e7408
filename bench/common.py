"""Shared pieces of the benchmarks: results, the table, the machine description."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    """One measured figure next to its baselines from the same run."""

    bench: str
    what: str
    value: float
    unit: str
    baselines: dict[str, float] = field(default_factory=dict)
    ratio_to: str | None = None
    target: str = ""
    meets: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / the named baseline (for rates: above 1 is faster)."""
        if self.ratio_to is None or not self.baselines.get(self.ratio_to):
            return None
        return self.value / self.baselines[self.ratio_to]


def fmt(value: float) -> str:
    """Short human number."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def table(results: list[Result]) -> str:
    """A Markdown table, one row per result."""
    lines = [
        "| id | what | value | baselines (same run) | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        baselines = "; ".join(f"{name}: {fmt(v)} {r.unit}" for name, v in r.baselines.items())
        ratio = f"{r.ratio:.2f}x {r.ratio_to}" if r.ratio is not None else "-"
        if r.note and r.ratio is not None:
            ratio += f" ({r.note})"
        verdict = "-" if r.meets is None else ("meets" if r.meets else "short")
        value = "-" if math.isnan(r.value) else f"{fmt(r.value)} {r.unit}"
        lines.append(
            f"| {r.bench} | {r.what} | {value} | {baselines or '-'} | {ratio} "
            f"| {r.target} | {verdict} |"
        )
    return "\n".join(lines)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of samples fall."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values: list[float]) -> float:
    """The median, or NaN for no samples."""
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """What the figures were measured on."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    softhsm = _version(["softhsm2-util", "--version"])
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}; {platform.platform()}; "
        f"Python {platform.python_version()}; SoftHSM {softhsm}"
    )


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
