"""kubectl lathe's pure parts: kind names, ages, tables, profile differences, wait's verdicts, the parser."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from lathe_operator.plugin import diff, main, runs, show
from lathe_operator.plugin.cluster import PluginError, plural, split_ref
from lathe_operator.plugin.registry import _resolve

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("md", "modeldeployments"), ("ModelDeployment", "modeldeployments"), ("ds", "datasets"), ("tr", "trainingruns")],
)
def test_every_name_kubectl_takes_for_a_kind(word: str, expected: str) -> None:
    assert plural(word) == expected
    assert plural(f"{expected}.lathe.dev") == expected


def test_unknown_kinds_and_refs_are_refused_as_kubectl_refuses_them() -> None:
    with pytest.raises(PluginError, match='the server doesn\'t have a resource type "pods"'):
        plural("pods")
    with pytest.raises(PluginError, match="resource/name form"):
        split_ref("digits")
    assert split_ref("dm/watch") == ("driftmonitors", "watch")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (185, "3m5s"), (900, "15m"), (4 * 3600 + 60, "4h1m"), (50 * 3600, "2d2h")],
)
def test_ages_read_like_kubectl(seconds: int, text: str) -> None:
    assert show.age(NOW - timedelta(seconds=seconds), NOW) == text
    assert show.age(None) == "<unknown>"


def test_tables_align_cells_that_carry_colour() -> None:
    printer = show.Printer(io.StringIO(), colour="always")
    text = show.table(["NAME", "READY"], [[printer.ready("True"), "x"], ["a-long-name", "y"]])
    lines = text.splitlines()
    assert [show.width(line) for line in lines][1:] == [len("True          x"), len("a-long-name   y")]
    assert show.Printer(io.StringIO()).paint("plain", "red") == "plain"  # not a terminal: no colour


def test_diff_names_added_removed_and_shifted_columns() -> None:
    levels = [0.0, 0.5, 1.0]
    before = {
        "quantileLevels": levels,
        "columns": {
            "x": {"kind": "numeric", "count": 10, "missing": 0, "mean": 10.0, "std": 2.0, "quantiles": [1, 10, 20]},
            "c": {"kind": "categorical", "frequencies": {"a": 5, "b": 5}},
            "gone": {"kind": "numeric", "count": 1},
        },
    }
    after = {
        "quantileLevels": levels,
        "columns": {
            "x": {"kind": "numeric", "count": 10, "missing": 1, "mean": 5.0, "std": 1.0, "quantiles": [0, 5, 9]},
            "c": {"kind": "categorical", "frequencies": {"a": 5, "z": 5}},
            "new": {"kind": "numeric", "count": 1},
        },
    }
    result = diff.compare({"version": "sha256:aa", "rows": 10}, {"version": "sha256:bb", "rows": 10}, before, after)
    columns = result["columns"]
    assert columns["x"]["meanShiftInStd"] == -2.5 and columns["x"]["figures"]["median"] == {"before": 10, "after": 5}
    assert columns["c"]["added"] == ["z"] and columns["c"]["removed"] == ["b"]
    assert columns["c"]["totalVariation"] == pytest.approx(0.5)
    assert columns["gone"] == {"change": "removed"} and columns["new"] == {"change": "added"}
    text = diff.render(result, show.Printer(io.StringIO()))
    assert "-2.50 sd" in text and "TV 0.500" in text and "removed" in text


def test_short_versions_resolve_like_git_hashes() -> None:
    versions = ["sha256:abc1" + "0" * 60, "sha256:abd2" + "0" * 60]
    assert _resolve("abc", versions) == versions[0]
    with pytest.raises(PluginError, match="ambiguous"):
        _resolve("ab", versions)
    with pytest.raises(PluginError, match="matches no version"):
        _resolve("ff", versions)


def test_wait_fails_at_once_only_on_a_failure_of_the_current_generation() -> None:
    failed = {
        "metadata": {"generation": 2},
        "status": {
            "phase": "Failed",
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "GateFailed", "message": "accuracy 0.4 < 0.9"}
            ],
        },
    }
    assert runs._failed(failed) == "GateFailed: accuracy 0.4 < 0.9"
    assert runs._failed({**failed, "metadata": {"generation": 3}}) is None  # an edit the operator has not seen yet


def test_the_parser_takes_kubectl_flags_after_the_command() -> None:
    args = main.parser().parse_args(["promote", "md", "web", "--full", "-n", "team-a", "--context", "prod"])
    assert (args.command, args.kind, args.name, args.full, args.namespace, args.context) == (
        "promote",
        "md",
        "web",
        True,
        "team-a",
        "prod",
    )
    assert main.parser().parse_args(["wait", "ds/x", "--timeout", "2m"]).timeout == 120.0
    with pytest.raises(SystemExit):
        main.parser().parse_args(["status", "-n", "a", "-A"])
