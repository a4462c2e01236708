"""The ``lathe`` command: ``lathe operator`` runs the operator, ``lathe crds`` writes the CRDs.

The kubectl plugin's commands (``status``, ``get``, ``promote``, ``models`` ...) are
``lathe_operator.plugin``'s, the same as ``kubectl lathe``.

The run commands (``ingest``, ``train``, ``score``, ``bundle``) live beside the code they
run, in ``lathe_pipelines.cli``; ``lathe`` hands them over unparsed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _operator(args: argparse.Namespace) -> int:
    import kopf

    from . import handlers  # noqa: F401  (registers the handlers)

    kopf.configure(
        verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    )
    kopf.run(
        standalone=True,
        clusterwide=args.all_namespaces,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness or None,
    )
    return 0


def _crds(args: argparse.Namespace) -> int:
    from .api.crd import all_crds

    stale = []
    for directory in args.out:
        for name, text in all_crds().items():
            path = Path(directory) / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print("CRDs differ from the models; run `make crds`:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from lathe_pipelines import cli as runs

    if argv and argv[0] in runs.COMMANDS:
        return runs.main(argv)
    from .plugin import main as plugin

    if argv and argv[0] in plugin.COMMANDS:  # the kubectl plugin's commands, `lathe status` and friends
        return plugin.main(argv, prog="lathe")
    parser = argparse.ArgumentParser(prog="lathe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    runs.add_commands(commands)  # listed in --help; their arguments are parsed by lathe_pipelines.cli

    op = commands.add_parser("operator", help="run the operator against the current kube context")
    scope = op.add_mutually_exclusive_group(required=True)
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    op.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL, '' to disable")
    op.add_argument("--log-format", choices=["json", "full"], default="json")
    op.add_argument("-v", "--verbose", action="store_true")
    op.set_defaults(run_command=_operator)

    crds = commands.add_parser("crds", help="write the CRDs generated from the models")
    crds.add_argument("--out", action="append", default=None, help="directory (repeatable)")
    crds.add_argument("--check", action="store_true", help="fail when the files differ from the models")
    crds.set_defaults(run_command=_crds)

    args = parser.parse_args(argv)
    if args.command == "crds" and not args.out:
        args.out = ["charts/lathe/crds", "manifests/crds"]
    return int(args.run_command(args))


if __name__ == "__main__":
    sys.exit(main())
