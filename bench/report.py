"""Results of a scenario, printed as a table and appended to docs/benchmarks.md with the machine and commit."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Result", "Row", "machine", "percentile", "write_report"]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
_HEADER = """# Benchmarks

Produced by `python -m bench` (see README "Benchmarks"). Each run appends its tables below, newest last, with
the date, the machine (cores, memory) and the commit it measured. "met" compares a figure with the target set for
it; a miss is explained in the notes under the table and in README.
"""


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Result:
    name: str
    summary: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, metric: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(metric, value, target, met))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return float("nan")


def _commit() -> str:
    # Set when benchmarking an exported tree (`git archive HEAD`), which has no .git to ask.
    exported = os.environ.get("REELBOT_BENCH_COMMIT")
    if exported:
        return exported
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        head = subprocess.run(  # noqa: S603  (fixed arguments, git from PATH)
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--untracked-files=no", "--", "bot", "cogs", "bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {_memory_gib():.1f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def _mark(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**MISSED**")


def _table(result: Result) -> list[str]:
    lines = ["| metric | value | target | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.metric} | {r.value} | {r.target} | {_mark(r.met)} |" for r in result.rows]
    return lines


def print_result(result: Result) -> None:
    widths = [
        max([len("metric")] + [len(r.metric) for r in result.rows]),
        max([len("value")] + [len(r.value) for r in result.rows]),
        max([len("target")] + [len(r.target) for r in result.rows]),
    ]
    print(f"\n== {result.name}: {result.summary} ({result.seconds:.0f} s)")
    print(f"{'metric':<{widths[0]}}  {'value':>{widths[1]}}  {'target':<{widths[2]}}  met")
    for r in result.rows:
        met = "" if r.met is None else ("yes" if r.met else "MISSED")
        print(f"{r.metric:<{widths[0]}}  {r.value:>{widths[1]}}  {r.target:<{widths[2]}}  {met}")
    for note in result.notes:
        print(f"  note: {note}")


def write_report(results: list[Result], path: Path = DOC) -> None:
    """Append one section per result to docs/benchmarks.md (created with a header if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(_HEADER)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["", f"## Run of {stamp} — commit {_commit()}", "", f"Machine: {machine()}.", ""]
    for result in results:
        lines += [f"### {result.name}", "", f"{result.summary} ({result.seconds:.0f} s wall clock).", ""]
        lines += _table(result)
        if result.notes:
            lines.append("")
            lines += [f"- {note}" for note in result.notes]
        lines.append("")
    with path.open("a") as fh:
        fh.write("\n".join(lines))
