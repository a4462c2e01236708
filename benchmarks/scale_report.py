"""What ``operator_scale.py`` reads from the operator process (/proc, its metrics, its log) and how it prints it."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from pathlib import Path

RATE_TARGET = 50.0  # status transitions per second
RSS_TARGET_MB = 250.0  # peak RSS at 1,000 of each kind
GROWTH_TARGET = 1.5  # time per object at the largest N over at the smallest
SETTLED_WINDOW = 10.0  # seconds of operator CPU measured once everything has settled
TICKS = os.sysconf("SC_CLK_TCK")


def proc_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in KiB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


class Sampler:
    """VmRSS every 0.2 s: a peak that survives the process, should it die before VmHWM is read."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(0.2):
            self.peak = max(self.peak, proc_kib(self.pid, "VmRSS"))


def busiest(changes: list[tuple[float, str, bool]], window: float = 5.0) -> float:
    """The most status changes per second in any ``window`` seconds: what the operator does when busy."""
    times = sorted(change[0] for change in changes)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] > window:
            first += 1
        most = max(most, last - first + 1)
    return most / window


def reconciles(metrics: str) -> str:
    """lathe_reconcile_total and the mean reconcile time by kind, from the operator's /metrics."""
    found: dict[tuple[str, str], float] = {}
    for line in metrics.splitlines():
        match = re.match(r'(lathe_reconcile_\w+)\{kind="(\w+)"(?:,result="(\w+)")?\} (\S+)', line)
        if match:
            name, kind, result, value = match.groups()
            found[kind, name.removeprefix("lathe_reconcile_") + (f" {result}" if result else "")] = float(value)
    parts = []
    for kind in sorted({k for k, _ in found}):
        count, total = found.get((kind, "duration_seconds_count"), 0), found.get((kind, "duration_seconds_sum"), 0)
        mean = f", mean {1000 * total / count:.0f} ms" if count else ""
        parts.append(
            f"{kind} {found.get((kind, 'total ok'), 0):.0f} ok / {found.get((kind, 'total error'), 0):.0f} error{mean}"
        )
    return "; ".join(parts) or "no reconcile metrics"


def log_summary(log: Path, top: int = 6) -> list[str]:
    """Warnings and errors in the operator's log (kopf's full format), grouped with numbers and names folded."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"\[[^\]]*\] (\S+)\s*\[(WARNING|ERROR|CRITICAL)\s*\] (?:\[[^\]]*\] )?(.*)", line)
        if match:
            levels[match.group(2)] += 1
            folded = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+(\.\d+)?", "#", match.group(3))[:160]
            messages[f"{match.group(2)} {folded}"] += 1
        elif line.startswith("Traceback"):
            levels["Traceback"] += 1
    lines = [", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "no warnings or errors"]
    return lines + [f"  {count:>6} x {message}" for message, count in messages.most_common(top)]


def progress(r: dict) -> None:
    state = "CRASHED" if r["crashed"] else ("settled" if r["done"] else "NOT settled (timeout)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nN={r['n']} (namespace {r['namespace']}): {state}, {r['settled']} of {2 * r['n']} objects settled")
    print(f"  machine load average after it: {load}")
    last = ", ".join(
        f"{k} {'-' if t is None else f'{t:.1f}'} s ({r['kind_changes'][k]} changes)" for k, t in r["kinds"].items()
    )
    print(f"  created in {r['created']:.1f} s; last settled: {last}; {r['kfp_runs']} KFP runs")
    print(f"  Ready now: {r['reasons']}")
    shapes = "; ".join(
        f"{count} with {len(tasks)} tasks ({', '.join(tasks)})" for tasks, count in r["pipelines"].items()
    )
    print(f"  pipelines submitted to KFP: {shapes or 'none'}")
    print(f"  reconciles: {reconciles(r['metrics'])}")
    stopped = "did not exit within 30 s: killed" if r["stopped"] is None else f"exited in {r['stopped']:.1f} s"
    print(f"  on SIGTERM after the run the operator {stopped}")
    print(f"  status changes that changed Ready's status or reason: {r['flips']} of {r['changes']}")
    print("  operator log: " + "\n".join(log_summary(r["log"])))
    if r["crashed"]:
        print(f"  operator exited with {r['exit']}; log {r['log']}")
    for error in r["watch_errors"][:5]:
        print(f"  watch: {error}")


def _row(r: dict) -> str:
    objects = 2 * r["n"]
    per_object = 1000 * r["converged"] / objects
    rate = r["changes"] / r["converged"]
    return (
        f"{r['n']:>6}{objects:>8}{r['converged']:>11.1f}{per_object:>10.1f}{r['changes']:>9}{rate:>10.1f}"
        f"{r['busiest']:>8.1f}{r['idle_rss_mb']:>9.0f}{r['peak_rss_mb']:>9.0f}{r['cpu']:>8.1f}{100 * r['idle_cpu']:>9.0f}"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(results: list[dict]) -> None:
    print("\nN of each kind; time from the first create to the last object settled; RSS in MB (10^6 bytes)")
    print(
        f"{'N':>6}{'objects':>8}{'converge s':>11}{'ms/obj':>10}{'changes':>9}{'changes/s':>10}"
        f"{'busy/s':>8}{'idle RSS':>9}{'peak RSS':>9}{'CPU s':>8}{'settled%':>9}"
    )
    for r in results:
        print(_row(r) + ("" if r["done"] else "  (did not settle)"))
    print("changes: status changes seen through the watch (changes/s over the whole time to converge, busy/s over")
    print(
        f"the busiest 5 s); CPU s: operator CPU until settled; settled%: its CPU share over the {SETTLED_WINDOW:.0f} s"
    )
    print("after (100 = one core)")
    base, top = results[0], results[-1]
    for r in results[1:]:
        time_ratio = (r["converged"] / r["n"]) / (base["converged"] / base["n"])
        print(
            f"N={r['n']} vs N={base['n']}: converge time {r['converged'] / base['converged']:.2f}x, "
            f"time per object {time_ratio:.2f}x, peak RSS {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x, "
            f"RSS over idle {(r['peak_rss_mb'] - r['idle_rss_mb']) / max(base['peak_rss_mb'] - base['idle_rss_mb'], 1):.2f}x"
        )
    print("\nTargets (from the issue):")
    slowest = min(results, key=lambda r: r["changes"] / r["converged"])
    rate = slowest["changes"] / slowest["converged"]
    print(
        f"  {_verdict(rate >= RATE_TARGET)}  >= {RATE_TARGET:.0f} transitions/s: lowest {rate:.1f}/s (N={slowest['n']})"
    )
    print(
        f"  {_verdict(top['peak_rss_mb'] < RSS_TARGET_MB)}  < {RSS_TARGET_MB:.0f} MB peak RSS at N={top['n']}: "
        f"{top['peak_rss_mb']:.0f} MB" + ("" if top["n"] >= 1000 else " (the target is for N=1000)")
    )
    if len(results) > 1:
        growth = (top["converged"] / top["n"]) / (base["converged"] / base["n"])
        settled = base["done"] and top["done"]
        print(
            f"  {_verdict(growth <= GROWTH_TARGET and settled)}  no worse than linear: time per object at N={top['n']} / "
            f"N={base['n']} = {growth:.2f} (<= {GROWTH_TARGET})"
        )
    unsettled = [r["n"] for r in results if not r["done"]]
    if unsettled:
        print(f"  did not settle within the timeout at N={unsettled}: their times are lower bounds (growth: MISS)")
