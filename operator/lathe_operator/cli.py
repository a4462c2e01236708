"""The ``lathe`` command: ``lathe operator`` runs the operator, ``lathe crds`` writes the CRDs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _operator(args: argparse.Namespace) -> int:
    import kopf

    from . import handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL)
    kopf.run(
        standalone=True,
        clusterwide=args.all_namespaces,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness or None,
    )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    """One ingest run, configured by the environment the Job or the local executor sets."""
    import json
    import os

    from lathe_pipelines.ingest import IngestRequest, ingest
    from lathe_pipelines.steps.read import S3Access

    from .backends.stores import open_store
    from .config import Config

    config = Config.from_env()
    spec = json.loads(os.environ["LATHE_DATASET_SPEC"])
    source = spec["source"]
    s3 = S3Access(
        endpoint=source.get("endpoint") or config.store.endpoint,
        access_key=os.environ.get("LATHE_SOURCE_ACCESS_KEY") or config.store.access_key,
        secret_key=os.environ.get("LATHE_SOURCE_SECRET_KEY") or config.store.secret_key,
        secure=config.store.secure if source.get("secure") is None else bool(source["secure"]),
    )
    request = IngestRequest(namespace=args.namespace, name=args.name, run=args.run, spec=spec,
                            parent_version=args.parent, source_path=args.source_path)
    report = ingest(request, open_store(config.store), s3)
    print(json.dumps({k: v for k, v in report.items() if k != "validation"}, default=str))
    return 0


def _train(args: argparse.Namespace) -> int:
    """One training pipeline run under kfp.local, configured by $LATHE_TRAINING_REQUEST (local mode)."""
    import json
    import os

    from lathe_pipelines import training
    from lathe_pipelines.steps import reports

    request = json.loads(os.environ["LATHE_TRAINING_REQUEST"])
    arguments = request["arguments"]
    try:
        result = training.run_local(arguments, request["pipelineRoot"], request.get("resources"))
    except Exception as error:  # a failing step has usually written the reason already
        from .backends.stores import open_configured_store

        if not open_configured_store().exists(arguments["report_key"]):
            reports.write(arguments["report_key"], {"outcome": "Failed", "reason": "PipelineFailed",
                                                    "message": f"{type(error).__name__}: {error}"[:2000]})
        raise
    print(json.dumps({k: result.get(k) for k in ("passed", "version", "device")}))
    return 0


def _offline(args: argparse.Namespace) -> int:
    """One batch scoring or edge bundle run (what the Job or the local process runs); always leaves a report."""
    import json

    from lathe_pipelines import offline
    from lathe_pipelines.deployments import write_report

    from .backends.ports import StoreError
    from .backends.stores import open_configured_store

    store = open_configured_store()
    try:
        if args.command == "score":
            report = offline.score(store, args.namespace, args.deployment, args.run, args.model, args.model_version,
                                   args.dataset, args.dataset_version, args.chunk_rows)
        else:
            report = offline.bundle(store, args.namespace, args.deployment, args.run, args.model, args.model_version,
                                    args.quantize)
    except offline.OfflineFailed as error:
        report = {"outcome": "Failed", "reason": error.reason, "message": str(error)}
    except StoreError:
        raise  # no report can be written; the operator sees the failed process or Job
    except Exception as error:  # noqa: BLE001  (recorded, then the run fails)
        write_report(store, args.namespace, args.deployment, args.run,
                             {"outcome": "Failed", "reason": "RunFailed", "message": f"{type(error).__name__}: {error}"})
        raise
    write_report(store, args.namespace, args.deployment, args.run, report)
    print(json.dumps(report, default=str))
    return 0 if report["outcome"] == "Succeeded" else 1


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
    parser = argparse.ArgumentParser(prog="lathe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    op = commands.add_parser("operator", help="run the operator against the current kube context")
    scope = op.add_mutually_exclusive_group(required=True)
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    op.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL, '' to disable")
    op.add_argument("--log-format", choices=["json", "full"], default="json")
    op.add_argument("-v", "--verbose", action="store_true")
    op.set_defaults(run_command=_operator)

    ing = commands.add_parser("ingest", help="run one Dataset ingest (what the ingest Job runs)")
    ing.add_argument("--namespace", required=True)
    ing.add_argument("--name", required=True)
    ing.add_argument("--run", required=True, help="run name; its report goes to datasets/<ns>/<name>/runs/<run>.json")
    ing.add_argument("--parent", help="the current version, recorded as the new version's parent")
    ing.add_argument("--source-path", help="read this file instead of spec.source.uri (a mounted ConfigMap)")
    ing.set_defaults(run_command=_ingest)

    tr = commands.add_parser("train", help="run one training pipeline with kfp.local (local mode)")
    tr.set_defaults(run_command=_train)

    for name, text in (("score", "score a Dataset version with a model version (batch ModelDeployment)"),
                       ("bundle", "publish an edge bundle of a model version (edge ModelDeployment)")):
        job = commands.add_parser(name, help=text)
        job.add_argument("--namespace", required=True)
        job.add_argument("--deployment", required=True, help="the ModelDeployment's name")
        job.add_argument("--run", required=True, help="run name; its report goes to deployments/<ns>/<name>/runs/")
        job.add_argument("--model", required=True)
        job.add_argument("--model-version", type=int, required=True)
        if name == "score":
            job.add_argument("--dataset", required=True)
            job.add_argument("--dataset-version", required=True)
            job.add_argument("--chunk-rows", type=int, default=65536)
        else:
            job.add_argument("--quantize", action="store_true", help="add an int8 copy and its accuracy delta")
        job.set_defaults(run_command=_offline)

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
