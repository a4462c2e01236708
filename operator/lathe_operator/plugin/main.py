"""``kubectl lathe COMMAND`` (the ``kubectl-lathe`` executable) and ``lathe COMMAND``: the parser and dispatch."""

from __future__ import annotations

import argparse
import sys

from ..reconcile.schedule import seconds
from .cluster import Cluster, PluginError, plural
from .show import clean

COMMANDS = ("status", "get", "promote", "abort", "undo", "models", "datasets", "logs", "report", "wait")


def _common() -> argparse.ArgumentParser:
    """kubectl's flags, on every command."""
    common = argparse.ArgumentParser(add_help=False)
    scope = common.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="the namespace (default: the context's, else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (status only)")
    common.add_argument("--context", help="the kubeconfig context to use")
    common.add_argument("--kubeconfig", help="path to the kubeconfig file")
    common.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour output")
    return common


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=["json", "yaml"], help="print the objects instead of a view")


def _duration(text: str) -> float:
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (for example 30s, 10m)") from error


def parser(prog: str = "kubectl lathe") -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(prog=prog, description="Lathe's four kinds, its model registry and data versions.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", parents=[common], help="every Lathe object, grouped by kind")
    _output(status)
    get = commands.add_parser("get", parents=[common], help="the live view of a ModelDeployment")
    get.add_argument("kind", help="md (modeldeployment)")
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="redraw as it changes, until interrupted")
    _output(get)
    for action, text in (
        ("promote", "move the canary to its next step now (--full: to 100%%)"),
        ("abort", "send all traffic back to the stable version"),
        ("undo", "undo a promoted canary: its baseline serves again"),
    ):
        command = commands.add_parser(action, parents=[common], help=text)
        command.add_argument("kind", help="md (modeldeployment)")
        command.add_argument("name")
        if action == "promote":
            command.add_argument("--full", action="store_true", help="skip the remaining steps")
        command.add_argument("--timeout", type=_duration, default=30.0, help="how long to wait for the operator")
    models = commands.add_parser("models", parents=[common], help="the model registry: names, versions, a card")
    models.add_argument("name", nargs="?")
    models.add_argument("version", nargs="?", type=int)
    _output(models)
    datasets = commands.add_parser("datasets", parents=[common], help="a Dataset's versions, or two compared")
    datasets.add_argument("name")
    datasets.add_argument("--diff", nargs=2, metavar=("V1", "V2"), help="compare two versions (hex prefixes)")
    _output(datasets)
    logs = commands.add_parser("logs", parents=[common], help="the logs of a TrainingRun's or Dataset's run")
    logs.add_argument("kind", help="tr (trainingrun) or ds (dataset)")
    logs.add_argument("name")
    logs.add_argument("--kfp-namespace", help="where Kubeflow Pipelines runs pods (default kubeflow)")
    report = commands.add_parser("report", parents=[common], help="a DriftMonitor's last report")
    report.add_argument("kind", help="dm (driftmonitor)")
    report.add_argument("name")
    report.add_argument("-o", "--output", help="write the HTML report to this file")
    wait = commands.add_parser("wait", parents=[common], help="wait until KIND/NAME is ready, showing progress")
    wait.add_argument("ref", metavar="KIND/NAME")
    wait.add_argument("--for", dest="condition", default="ready", help="ready (the default)")
    wait.add_argument("--timeout", type=_duration, default=600.0, help="give up after this long (default 10m)")
    return top


def _only(kind: str, wanted: str, command: str) -> None:
    if plural(kind) != wanted:
        raise PluginError(f"error: {command} works on {wanted}, not {plural(kind)}")


def run(args: argparse.Namespace) -> int:
    from . import registry, rollout, runs, summary
    from .show import Printer

    printer = Printer(colour=args.color)
    if args.all_namespaces and args.command != "status":
        raise PluginError(f"error: -A is for status; {args.command} works on one namespace")
    cluster = Cluster(args.context, args.namespace, args.all_namespaces, args.kubeconfig)
    if args.command == "status":
        return summary.status(cluster, printer, args.output)
    if args.command == "get":
        _only(args.kind, "modeldeployments", "get")
        return rollout.get(cluster, printer, args.name, args.output, args.watch)
    if args.command in ("promote", "abort", "undo"):
        _only(args.kind, "modeldeployments", args.command)
        action = "promote-full" if getattr(args, "full", False) else args.command
        return rollout.decide(cluster, printer, args.name, action, args.timeout)
    if args.command == "models":
        return registry.models(cluster, printer, args.name, args.version, args.output)
    if args.command == "datasets":
        return registry.datasets(cluster, printer, args.name, args.diff, args.output)
    if args.command == "logs":
        return runs.logs(cluster, printer, args.kind, args.name, args.kfp_namespace)
    if args.command == "report":
        _only(args.kind, "driftmonitors", "report")
        return runs.report(cluster, printer, args.name, args.output)
    return runs.wait(cluster, printer, args.ref, args.condition, args.timeout)


def main(argv: list[str] | None = None, prog: str = "kubectl lathe") -> int:
    args = parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except PluginError as error:
        print(clean(str(error)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
