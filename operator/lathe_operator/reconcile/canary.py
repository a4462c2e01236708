"""Where live traffic goes: a manual split, the stable version, or a canary moved by its metrics.

A canary starts at its first step. Once a step has run for the analysis window and the
candidate has served ``minRequests``, its error rate, p99 latency and live accuracy
(from feedback) are checked against the limits, with the stable version's figures
beside them in the record: pass and it moves to the next step (100 promotes), fail and
all traffic returns to stable. Each decision is an Event and a ``status.history``
entry. A manual ``spec.traffic`` always wins and pauses the analysis.

A candidate can also come without editing spec (which a GitOps tool owns): the
``lathe.dev/canary-version`` annotation, set by a DriftMonitor's retrain or by hand, names a
version newer than any in spec; it runs with spec.canary's steps and analysis, or the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..api.v1alpha1.model_deployment import Canary, CanaryStatus, HistoryEntry, ModelDeployment
from .plan import Event
from .schedule import seconds

CANDIDATE = "lathe.dev/canary-version"
RECHECK = 15.0  # seconds between looks while waiting for requests
HISTORY = 50
REASON_MAX = 1024  # HistoryEntry.reason in the CRD


@dataclass(frozen=True)
class VersionMetrics:
    """One version's figures over the analysis window (None: no data)."""

    requests: float
    error_rate: float | None = None
    p99_ms: float | None = None
    accuracy: float | None = None
    mae: float | None = None  # a regressor's live mean absolute error

    def describe(self) -> str:
        def fmt(value: float | None, pattern: str) -> str:
            return "n/a" if value is None else pattern.format(value)

        return (
            f"{self.requests:.0f} requests, errors {fmt(self.error_rate, '{:.2%}')}, "
            f"p99 {fmt(self.p99_ms, '{:.1f} ms')}, accuracy {fmt(self.accuracy, '{:.3f}')}"
            + (f", MAE {self.mae:.4g}" if self.mae is not None else "")
        )


@dataclass
class Decision:
    traffic: list[tuple[int, int]]
    canary: CanaryStatus | None
    history: list[HistoryEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue: float | None = None
    waiting: str = ""  # why the canary has not moved yet, for the conditions' message
    applied: str | None = None  # the id of a decision taken by hand that this one applied or refused
    stable: int | None = None  # the stable version from now on, when a decision by hand chose it (undo)


def analysis_due(md: ModelDeployment, now: datetime) -> bool:
    """Whether the handlers should fetch metrics for this reconcile."""
    state, spec = md.status.canary, md.spec.canary
    return (
        spec is not None
        and md.spec.traffic is None
        and state is not None
        and state.phase == "Progressing"
        and state.version == spec.version
        and now - state.since >= _window(md)
    )


def _window(md: ModelDeployment) -> timedelta:
    assert md.spec.canary is not None
    return timedelta(seconds=seconds(md.spec.canary.analysis.window))


def stable_version(md: ModelDeployment) -> int:
    """spec.model.version, or the version a canary promoted since (until spec.model.version changes)."""
    stable = md.status.stable
    if stable is not None and stable.spec_version == md.spec.model.version:
        return stable.version
    return md.spec.model.version


def candidate(md: ModelDeployment) -> int | None:
    """The version the annotation offers, when it is a whole number."""
    text = str((md.metadata.get("annotations") or {}).get(CANDIDATE, "")).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def effective(md: ModelDeployment) -> ModelDeployment:
    """The ModelDeployment as decided: an annotated candidate newer than both spec versions is its canary."""
    spec, offered = md.spec, candidate(md)
    if offered is None or offered <= spec.model.version or (spec.canary and offered <= spec.canary.version):
        return md
    base = spec.canary or Canary(version=offered)
    canary = base.model_copy(update={"version": offered})
    return md.model_copy(update={"spec": spec.model_copy(update={"canary": canary})})


def decide(md: ModelDeployment, now: datetime, metrics: dict[int, VersionMetrics]) -> Decision:
    """The split to serve now and why: a manual split, the stable version, or the canary's next move."""
    spec, state = md.spec, md.status.canary
    if spec.traffic is not None:
        return _override(md, now)
    if spec.canary is None:
        return _stable(md, now)
    if (
        state is None
        or state.version != spec.canary.version
        or (state.phase == "RolledBack" and state.generation != md.generation)
    ):
        return _start(md, now)
    if state.phase != "Progressing":
        stable = stable_version(md)
        if state.phase == "Promoted" and stable != state.version:  # spec.model.version moved on since
            return Decision([(stable, 100)], state)
        return Decision(split(stable, state), state)
    if _current(md) and _current(md) != split(stable_version(md), state):
        return _resume(md, state, now)  # back from a manual split: this step starts over
    return _analyse(md, state, now, metrics)


def _override(md: ModelDeployment, now: datetime) -> Decision:
    assert md.spec.traffic is not None
    traffic = [(t.version, t.percent) for t in md.spec.traffic]
    decision = Decision(traffic, md.status.canary)
    if _current(md) != traffic:
        top = max(traffic, key=lambda t: t[1])
        decision.history.append(entry(now, "Override", top[0], top[1], "spec.traffic set by hand"))
        decision.events.append(Event("Normal", "TrafficOverride", f"Traffic set by hand: {_fmt(traffic)}"))
    return decision


def _stable(md: ModelDeployment, now: datetime) -> Decision:
    stable = stable_version(md)
    decision = Decision([(stable, 100)], None)
    if _current(md) != decision.traffic:
        decision.history.append(entry(now, "Deploy", stable, 100))
    return decision


def _start(md: ModelDeployment, now: datetime) -> Decision:
    """A new candidate (or a rolled-back one after an edit) begins at the first step."""
    assert md.spec.canary is not None
    stable, candidate, first = stable_version(md), md.spec.canary.version, md.spec.canary.steps[0]
    state = CanaryStatus(
        version=candidate, percent=first, phase="Progressing", since=now, generation=md.generation, baseline=stable
    )
    decision = Decision(split(stable, state), state, requeue=_window(md).total_seconds())
    decision.history.append(entry(now, "Deploy", candidate, first, f"canary of version {candidate} against {stable}"))
    decision.events.append(
        Event("Normal", "CanaryStarted", f"Canary version {candidate} gets {first}% (stable {stable})")
    )
    if state.percent == 100:
        return promote(decision, state, now, "single step of 100%")
    return decision


def _resume(md: ModelDeployment, state: CanaryStatus, now: datetime) -> Decision:
    state = state.model_copy(update={"since": now})
    decision = Decision(split(stable_version(md), state), state, requeue=_window(md).total_seconds())
    decision.history.append(
        entry(now, "Step", state.version, state.percent, "canary resumed after spec.traffic was removed")
    )
    decision.waiting = f"step {state.percent}% restarted"
    return decision


def _analyse(md: ModelDeployment, state: CanaryStatus, now: datetime, metrics: dict[int, VersionMetrics]) -> Decision:
    """Once the step has run its window with enough requests: roll back, step on, or promote."""
    assert md.spec.canary is not None
    stable, analysis = stable_version(md), md.spec.canary.analysis
    decision = Decision(split(stable, state), state)
    elapsed, window = now - state.since, _window(md)
    if elapsed < window:
        decision.requeue = (window - elapsed).total_seconds()
        decision.waiting = f"step {state.percent}% has run {int(elapsed.total_seconds())}s of {window.seconds}s"
        return decision
    seen = metrics.get(state.version)
    if seen is None or seen.requests < analysis.min_requests:
        decision.requeue = RECHECK
        decision.waiting = (
            f"candidate has {0 if seen is None else int(seen.requests)} of "
            f"{analysis.min_requests} requests in the window"
        )
        return decision
    baseline = metrics.get(stable)
    compared = f"candidate {seen.describe()}; stable {baseline.describe() if baseline else 'no data'}"
    failures = _failures(seen, baseline, md)
    if failures:
        return roll_back(md, state, now, f"{'; '.join(failures)} ({compared})")
    return step(md, state, now, compared)


def step(md: ModelDeployment, state: CanaryStatus, now: datetime, why: str, by: str | None = None) -> Decision:
    """The canary moves to its next step (the last one promotes); ``by``: who decided by hand."""
    assert md.spec.canary is not None
    following = [s for s in md.spec.canary.steps if s > state.percent]
    if not following or following[0] >= 100:
        return promote(Decision(split(stable_version(md), state), state), state, now, why, by)
    moved = state.model_copy(update={"percent": following[0], "since": now})
    decision = Decision(split(stable_version(md), moved), moved, requeue=_window(md).total_seconds())
    decision.history.append(entry(now, "Step", state.version, following[0], why, by))
    decision.events.append(
        Event(
            "Normal",
            "CanaryStep",
            f"Version {state.version} passed {state.percent}% and now gets {following[0]}%{_by(by, why)}",
        )
    )
    return decision


def roll_back(md: ModelDeployment, state: CanaryStatus, now: datetime, reason: str, by: str | None = None) -> Decision:
    rolled = state.model_copy(
        update={"percent": 0, "phase": "RolledBack", "since": now, "generation": md.generation}
    )  # retried only after a later edit
    decision = Decision([(stable_version(md), 100)], rolled)
    decision.history.append(entry(now, "Rollback", state.version, 0, reason, by))
    decision.events.append(
        Event(
            "Warning",
            "CanaryRolledBack",
            f"Version {state.version} rolled back at {state.percent}%{_by(by, reason)}",
        )
    )
    return decision


def entry(
    now: datetime, action: str, version: int, percent: int, reason: str = "", by: str | None = None
) -> HistoryEntry:
    """A status.history record; reasons are cut to the CRD's limit here."""
    return HistoryEntry(time=now, action=action, version=version, percent=percent, reason=reason[:REASON_MAX], by=by)


def _by(by: str | None, why: str) -> str:
    """How an Event says who decided and why: the analysis's figures, or the person (history keeps both)."""
    return f" by hand ({by})" if by else f": {why}"


def promote(decision: Decision, state: CanaryStatus, now: datetime, why: str, by: str | None = None) -> Decision:
    promoted = state.model_copy(update={"percent": 100, "phase": "Promoted", "since": now})
    decision.canary, decision.traffic, decision.requeue = promoted, [(state.version, 100)], None
    decision.history.append(entry(now, "Promote", state.version, 100, why, by))
    decision.events.append(Event("Normal", "CanaryPromoted", f"Version {state.version} promoted to 100%{_by(by, why)}"))
    return decision


def _failures(candidate: VersionMetrics, stable: VersionMetrics | None, md: ModelDeployment) -> list[str]:
    assert md.spec.canary is not None
    limits = md.spec.canary.analysis
    found = []
    if candidate.error_rate is not None and candidate.error_rate > limits.max_error_rate:
        found.append(f"error rate {candidate.error_rate:.2%} > {limits.max_error_rate:.2%}")
    if limits.max_p99_ms is not None and candidate.p99_ms is not None and candidate.p99_ms > limits.max_p99_ms:
        found.append(f"p99 {candidate.p99_ms:.1f} ms > {limits.max_p99_ms:g} ms")
    if limits.min_accuracy is not None and candidate.accuracy is not None and candidate.accuracy < limits.min_accuracy:
        found.append(f"live accuracy {candidate.accuracy:.3f} < {limits.min_accuracy:g}")
    if limits.max_mae is not None and candidate.mae is not None and candidate.mae > limits.max_mae:
        found.append(f"live MAE {candidate.mae:.4g} > {limits.max_mae:g}")
    return found


def split(stable: int, state: CanaryStatus) -> list[tuple[int, int]]:
    if state.phase == "Promoted":
        return [(state.version, 100)]
    if state.phase == "RolledBack" or state.percent == 0:
        return [(stable, 100)]
    return [(stable, 100 - state.percent), (state.version, state.percent)]


def _current(md: ModelDeployment) -> list[tuple[int, int]]:
    return [(t.version, t.percent) for t in md.status.traffic]


def _fmt(traffic: list[tuple[int, int]]) -> str:
    return ", ".join(f"version {v}: {p}%" for v, p in traffic)


def trim(history: list[HistoryEntry], added: list[HistoryEntry]) -> list[HistoryEntry]:
    return (history + added)[-HISTORY:]
