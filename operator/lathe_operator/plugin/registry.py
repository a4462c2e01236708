"""``lathe models`` and ``lathe datasets``: the registry and the data versions, read from the store.

When the store cannot be reached, what the cluster knows (TrainingRun and Dataset status)
is shown instead, under a line that names the endpoint that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.settings import StoreSettings
from lathe_core.store import ObjectStore, StoreError, get_json
from lathe_core.stores import open_store

from .cluster import Cluster, PluginError
from .show import Printer, age, dump, figure, short, table
from .summary import key_metric

T = TypeVar("T")


class Store:
    """The store as the operator's settings name it (``LATHE_STORE_*``), keys from the namespace's Secret if unset."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        settings = StoreSettings.from_env()
        if not settings.local and not settings.access_key:
            found = cluster.secret(namespace, settings.secret_name)
            if found:
                settings = replace(
                    settings, access_key=found.get("accessKey", ""), secret_key=found.get("secretKey", "")
                )
        self.settings, self.namespace = settings, namespace
        self.where = settings.uri if settings.local else f"{settings.endpoint} (bucket {settings.bucket})"
        self.store: ObjectStore = open_store(settings)

    def read(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except StoreError as error:
            raise Unreachable(
                f"the object store at {self.where} cannot be read: {error}. "
                "Point LATHE_STORE_ENDPOINT (and LATHE_STORE_ACCESS_KEY, LATHE_STORE_SECRET_KEY) at it, "
                "for example through `kubectl port-forward`"
            ) from error


class Unreachable(PluginError):
    pass


def _warn(printer: Printer, error: Unreachable, shown: str) -> None:
    printer.line(printer.paint(f"warning: {error}; showing {shown} from the cluster", "yellow"))


def models(cluster: Cluster, printer: Printer, name: str | None, version: int | None, output: str | None) -> int:
    namespace = cluster.namespace or "default"
    store = Store(cluster, namespace)
    if name is None:
        return _model_names(cluster, printer, store, output)
    registry = ModelRegistry(store.store, namespace, name)
    try:
        versions = store.read(registry.versions)
        cards = {v: store.read(lambda v=v: registry.card(v)) for v in versions}
        promoted = store.read(registry.promoted)
    except Unreachable as error:
        return _models_from_cluster(cluster, printer, name, error, output)
    if not versions:
        raise PluginError(
            f'Error from store (NotFound): model "{name}" has no registered version in namespace {namespace}'
        )
    if version is not None:
        if version not in cards:
            raise PluginError(
                f'Error from store (NotFound): model "{name}" has no version {version} (versions: {", ".join(map(str, versions))})'
            )
        card = {**cards[version], "promoted": version == promoted, "location": registry.store_uri(version)}
        printer.line(dump(card, output) if output else _card(cluster, card, printer))
        return 0
    if output:
        printer.line(dump([{**cards[v], "promoted": v == promoted} for v in versions], output))
        return 0
    rows = []
    for v in versions:
        card = cards[v]
        gates = card.get("gates") or []
        passed = sum(1 for g in gates if g.get("passed"))
        lineage = card.get("run") or {}
        rows.append(
            [
                str(v),
                printer.paint("*", "green") if v == promoted else "",
                key_metric(card.get("metrics") or {}),
                f"{passed}/{len(gates)}",
                f"{(card.get('dataset') or {}).get('name', '-')}@{short((card.get('dataset') or {}).get('version'))}",
                lineage.get("trainingRun", "-"),
                str((card.get("training") or {}).get("device", "-")),
            ]
        )
    printer.line(table(["VERSION", "PROMOTED", "FIGURE", "GATES", "DATA", "TRAININGRUN", "DEVICE"], rows))
    return 0


def _model_names(cluster: Cluster, printer: Printer, store: Store, output: str | None) -> int:
    namespace = cluster.namespace or "default"
    prefix = layout.models_prefix(namespace)
    try:
        keys = store.read(lambda: store.store.list(prefix))
    except Unreachable as error:
        _warn(printer, error, "the models TrainingRuns registered")
        names = sorted(
            {(r.get("status") or {}).get("model", {}).get("name") for r in cluster.list("trainingruns")} - {None}
        )
        printer.line(dump(names, output) if output else "\n".join(names) or "No models.")
        return 0
    names = sorted({k.removeprefix(prefix).split("/")[0] for k in keys})
    found = []
    for name in names:
        registry = ModelRegistry(store.store, namespace, name)
        versions = store.read(registry.versions)
        if versions:
            found.append({"name": name, "versions": versions, "promoted": store.read(registry.promoted)})
    if output:
        printer.line(dump(found, output))
    elif not found:
        printer.line(f"No models registered in {namespace} namespace.")
    else:
        rows = [[m["name"], str(len(m["versions"])), str(m["versions"][-1]), str(m["promoted"] or "-")] for m in found]
        printer.line(table(["NAME", "VERSIONS", "LATEST", "PROMOTED"], rows))
    return 0


def _models_from_cluster(cluster: Cluster, printer: Printer, name: str, error: Unreachable, output: str | None) -> int:
    _warn(printer, error, f"the versions of {name} recorded by TrainingRuns")
    runs = [r for r in cluster.list("trainingruns") if ((r.get("status") or {}).get("model") or {}).get("name") == name]
    if output:
        printer.line(dump([r.get("status") for r in runs], output))
        return 0
    rows = [
        [
            str(r["status"]["model"]["version"]),
            key_metric(r["status"].get("metrics") or {}),
            short(r["status"].get("datasetVersion")),
            r["metadata"]["name"],
        ]
        for r in sorted(runs, key=lambda r: r["status"]["model"]["version"])
    ]
    printer.line(
        table(["VERSION", "FIGURE", "DATA", "TRAININGRUN"], rows) if rows else f'No TrainingRun registered "{name}".'
    )
    return 0


def _card(cluster: Cluster, card: dict[str, Any], printer: Printer) -> str:
    lineage, dataset = card.get("run") or {}, card.get("dataset") or {}
    training, code = card.get("training") or {}, card.get("code") or {}
    run_url = None
    if lineage.get("trainingRun"):
        try:
            run_url = (
                cluster.get("trainingruns", lineage["trainingRun"], lineage.get("namespace")).get("status") or {}
            ).get("runUrl")
        except PluginError:
            run_url = None  # the TrainingRun may be gone; the card keeps its lineage
    lines = [
        f"Model:         {card.get('name')} version {card.get('version')}"
        + (printer.paint("  (promoted)", "green") if card.get("promoted") else ""),
        f"Location:      {card.get('location') or card.get('uri')}",
        f"SHA-256:       {card.get('sha256')}",
        "",
        "Metrics:",
        *[f"  {k:<12} {v:.4f}" for k, v in sorted((card.get("metrics") or {}).items())],
        "",
        "Gates:",
    ]
    gate_rows = [
        [
            g.get("metric", ""),
            figure(g.get("value"), "{:.4f}"),
            figure(g.get("min"), "{:g}"),
            figure(g.get("max"), "{:g}"),
            figure(g.get("baseline"), "{:.4f}"),
            printer.paint("pass", "green") if g.get("passed") else printer.paint("FAIL", "red"),
        ]
        for g in card.get("gates") or []
    ]
    lines += (
        ["  " + line for line in table(["METRIC", "VALUE", "MIN", "MAX", "BASELINE", "RESULT"], gate_rows).splitlines()]
        if gate_rows
        else ["  none"]
    )
    parity = card.get("parity") or {}
    lines += [
        "",
        "Lineage:",
        f"  Dataset:       {dataset.get('name')} {dataset.get('version')}",
        f"  TrainingRun:   {lineage.get('namespace')}/{lineage.get('trainingRun')} (generation {lineage.get('generation')})",
        f"  Pipeline run:  {lineage.get('id')}" + (f"  {run_url}" if run_url else ""),
        f"  Pipeline:      {(card.get('pipeline') or {}).get('name')} on {(card.get('pipeline') or {}).get('backend')}, spec sha256 {str((card.get('pipeline') or {}).get('specSha256'))[:12]}",
        f"  Image:         {card.get('image') or '-'}",
        f"  Code:          lathe {code.get('lathe')} revision {code.get('revision') or '-'}",
        f"  Seed:          {card.get('seed')}",
        f"  Model:         {(card.get('model') or {}).get('type')} {(card.get('model') or {}).get('hyperparameters') or {}}",
        f"  Baseline:      version {card.get('baselineVersion') or '-'}",
        "",
        f"Training:      {figure(training.get('seconds'), '{:.1f}')} s on {training.get('device')}, {training.get('params')}",
        f"ONNX parity:   {parity}",
    ]
    return "\n".join(lines)


def datasets(cluster: Cluster, printer: Printer, name: str, diff: list[str] | None, output: str | None) -> int:
    namespace = cluster.namespace or "default"
    obj = cluster.get("datasets", name)
    status = obj.get("status") or {}
    store = Store(cluster, namespace)
    versions = DatasetVersions(store.store, namespace, name)
    try:
        found = store.read(versions.versions)
        manifests = {v: store.read(lambda v=v: versions.manifest(v)) for v in found}
    except Unreachable as error:
        if diff:
            raise
        _warn(printer, error, "the versions recorded in status.history")
        history = status.get("history") or []
        if output:
            printer.line(dump(history, output))
            return 0
        rows = [[short(h["version"]), str(h.get("rows")), h.get("validation", ""), age(h.get("time"))] for h in history]
        printer.line(table(["VERSION", "ROWS", "VALIDATION", "AGE"], rows))
        return 0
    if diff:
        from .diff import compare, render

        first, second = (_resolve(v, found) for v in diff)
        profiles = [
            store.read(lambda v=v: get_json(store.store, versions.key(v, layout.PROFILE))) or {}
            for v in (first, second)
        ]
        result = compare(manifests[first], manifests[second], *profiles)
        printer.line(dump(result, output) if output else render(result, printer))
        return 0
    ordered = sorted(found, key=lambda v: manifests[v].get("createdAt", ""))
    if output:
        printer.line(dump([manifests[v] for v in ordered], output))
        return 0
    current = status.get("currentVersion")
    rows = []
    for v in ordered:
        manifest = manifests[v]
        check = manifest.get("validation") or {}
        rows.append(
            [
                short(v),
                printer.paint("*", "green") if v == current else "",
                str(manifest.get("rows")),
                str(manifest.get("columns")),
                printer.paint(f"passed {check.get('successful', 0)}/{check.get('evaluated', 0)}", "green")
                if not check.get("failed")
                else printer.paint("failed", "red"),
                age(manifest.get("createdAt")),
                short(manifest.get("parentVersion")),
            ]
        )
    printer.line(
        table(["VERSION", "CURRENT", "ROWS", "COLUMNS", "VALIDATION", "AGE", "PARENT"], rows)
        if rows
        else f"No published version of {name}."
    )
    return 0


def _resolve(text: str, versions: list[str]) -> str:
    """A version from its first hex digits, like a short git hash."""
    wanted = text.removeprefix("sha256:")
    matches = [v for v in versions if v.removeprefix("sha256:").startswith(wanted)]
    if len(matches) != 1:
        known = ", ".join(short(v) for v in versions)
        problem = "matches no version" if not matches else "is ambiguous"
        raise PluginError(f"error: {text!r} {problem} (versions: {known})")
    return matches[0]


def _checks(summary: dict[str, Any], printer: Printer) -> str:
    """A version's validation: published versions passed every expectation they had."""
    if not summary.get("evaluated"):
        return "no expectations"
    return printer.paint(f"passed {summary.get('successful', 0)}/{summary['evaluated']}", "green")
