"""The run commands (``lathe ingest|train|score|bundle|drift|harvest``): what a Job, a KFP pod or a local process runs.

Each is configured by its arguments and the environment the operator sets
(``LATHE_STORE_*``, ``LATHE_DATASET_SPEC``, ``LATHE_TRAINING_REQUEST``, ``LATHE_DRIFT_REQUEST``,
``LATHE_HARVEST_REQUEST``) and always leaves
a run report in the store, which the operator reads. ``python -m lathe_pipelines`` and
the ``lathe`` command (which hands these four over) are the same entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

COMMANDS = ("ingest", "train", "score", "bundle", "drift", "harvest")


def _ingest(args: argparse.Namespace) -> int:
    """One ingest run, configured by the environment the Job or the local executor sets."""
    from lathe_core.settings import StoreSettings
    from lathe_core.stores import open_store

    from .ingest import IngestRequest, ingest
    from .steps.read import S3Access

    store = StoreSettings.from_env()
    spec = json.loads(os.environ["LATHE_DATASET_SPEC"])
    source = spec["source"]
    s3 = S3Access(
        endpoint=source.get("endpoint") or store.endpoint,
        access_key=os.environ.get("LATHE_SOURCE_ACCESS_KEY") or store.access_key,
        secret_key=os.environ.get("LATHE_SOURCE_SECRET_KEY") or store.secret_key,
        secure=store.secure if source.get("secure") is None else bool(source["secure"]),
    )
    request = IngestRequest(
        namespace=args.namespace,
        name=args.name,
        run=args.run,
        spec=spec,
        parent_version=args.parent,
        source_path=args.source_path,
    )
    report = ingest(request, open_store(store), s3)
    print(json.dumps({k: v for k, v in report.items() if k != "validation"}, default=str))
    return 0


def _train(_: argparse.Namespace) -> int:
    """One training pipeline run under kfp.local, configured by $LATHE_TRAINING_REQUEST (local mode)."""
    from lathe_core.runs import write_report
    from lathe_core.stores import open_configured_store

    from . import training
    from .steps import handover

    request = json.loads(os.environ["LATHE_TRAINING_REQUEST"])
    arguments = request["arguments"]
    try:
        result = training.run_local(arguments, request["pipelineRoot"], request.get("resources"))
    except Exception as error:  # a failing step has usually written the reason already
        handover.cancel()  # a trainer container still waiting for its input ends too
        store = open_configured_store()
        if not store.exists(arguments["report_key"]):
            write_report(
                store,
                arguments["report_key"],
                {"outcome": "Failed", "reason": "PipelineFailed", "message": f"{type(error).__name__}: {error}"[:2000]},
            )
        raise
    print(json.dumps({k: result.get(k) for k in ("passed", "version", "device")}))
    return 0


def _offline(args: argparse.Namespace) -> int:
    """One batch scoring or edge bundle run; always leaves a report unless the store itself is down."""
    from lathe_core import layout
    from lathe_core.runs import write_report
    from lathe_core.store import StoreError
    from lathe_core.stores import open_configured_store

    from . import offline

    store = open_configured_store()
    key = layout.deployment_report(args.namespace, args.deployment, args.run)
    try:
        if args.command == "score":
            report = offline.score(
                store,
                args.namespace,
                args.deployment,
                args.run,
                args.model,
                args.model_version,
                args.dataset,
                args.dataset_version,
                args.chunk_rows,
                recorded=args.model_sha256,
            )
        else:
            report = offline.bundle(
                store,
                args.namespace,
                args.deployment,
                args.run,
                args.model,
                args.model_version,
                args.quantize,
                recorded=args.model_sha256,
            )
    except offline.OfflineFailed as error:
        report = {"outcome": "Failed", "reason": error.reason, "message": str(error)}
    except StoreError:
        raise  # no report can be written; the operator sees the failed process or Job
    except Exception as error:  # noqa: BLE001  (recorded, then the run fails)
        write_report(
            store, key, {"outcome": "Failed", "reason": "RunFailed", "message": f"{type(error).__name__}: {error}"}
        )
        raise
    write_report(store, key, report)
    print(json.dumps(report, default=str))
    return 0 if report["outcome"] == "Succeeded" else 1


def _drift(args: argparse.Namespace) -> int:
    """One drift check, configured by $LATHE_DRIFT_REQUEST; its report and HTML page go to the store."""
    from lathe_core import layout
    from lathe_core.runs import write_report
    from lathe_core.stores import open_configured_store

    from .drift import run as drift

    store = open_configured_store()
    request = {**json.loads(os.environ["LATHE_DRIFT_REQUEST"]), "namespace": args.namespace, "monitor": args.monitor}
    report = drift.run(store, request)
    page = report.pop("html", None)
    if page is not None:
        key = layout.drift_page(args.namespace, args.monitor, args.run)
        store.put(key, page.encode())
        report["page"] = store.uri(key)
    write_report(store, layout.drift_report(args.namespace, args.monitor, args.run), report)
    print(json.dumps({k: report.get(k) for k in ("outcome", "verdict", "driftShare", "samples", "liveAccuracy")}))
    return 0  # a failed check is recorded in its report; a Job retry would only repeat it


def _harvest(args: argparse.Namespace) -> int:
    """A retrain's data from labelled logged traffic, configured by $LATHE_HARVEST_REQUEST."""
    from lathe_core import layout
    from lathe_core.runs import write_report
    from lathe_core.stores import open_configured_store

    from .drift import harvest

    store = open_configured_store()
    request = {**json.loads(os.environ["LATHE_HARVEST_REQUEST"]), "namespace": args.namespace}
    request.update(monitor=args.monitor, run=args.run)
    report = harvest.run(store, request)
    write_report(store, layout.retrain_report(args.namespace, args.monitor, args.run), report)
    print(json.dumps(report))
    return 0  # a refused harvest is recorded in its report; a Job retry would only repeat it


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The run commands on a parser's subcommands (``lathe`` lists them in its help too)."""
    ing = commands.add_parser("ingest", help="run one Dataset ingest (what the ingest Job runs)")
    ing.add_argument("--namespace", required=True)
    ing.add_argument("--name", required=True)
    ing.add_argument("--run", required=True, help="run name; its report goes to datasets/<ns>/<name>/runs/<run>.json")
    ing.add_argument("--parent", help="the current version, recorded as the new version's parent")
    ing.add_argument("--source-path", help="read this file instead of spec.source.uri (a mounted ConfigMap)")
    ing.set_defaults(run_command=_ingest)

    tr = commands.add_parser("train", help="run one training pipeline with kfp.local (local mode)")
    tr.set_defaults(run_command=_train)

    for name, text in (
        ("score", "score a Dataset version with a model version (batch ModelDeployment)"),
        ("bundle", "publish an edge bundle of a model version (edge ModelDeployment)"),
    ):
        job = commands.add_parser(name, help=text)
        job.add_argument("--namespace", required=True)
        job.add_argument("--deployment", required=True, help="the ModelDeployment's name")
        job.add_argument("--run", required=True, help="run name; its report goes to deployments/<ns>/<name>/runs/")
        job.add_argument("--model", required=True)
        job.add_argument("--model-version", type=int, required=True)
        job.add_argument("--model-sha256", default="", help="the checksum the model's TrainingRun recorded")
        if name == "score":
            job.add_argument("--dataset", required=True)
            job.add_argument("--dataset-version", required=True)
            job.add_argument("--chunk-rows", type=int, default=65536)
        else:
            job.add_argument("--quantize", action="store_true", help="add an int8 copy and its accuracy delta")
        job.set_defaults(run_command=_offline)

    drift = commands.add_parser("drift", help="run one drift check (what a DriftMonitor starts)")
    drift.add_argument("--namespace", required=True)
    drift.add_argument("--monitor", required=True, help="the DriftMonitor's name")
    drift.add_argument("--run", required=True, help="run name; its report goes to reports/<ns>/<monitor>/<run>.json")
    drift.set_defaults(run_command=_drift)

    harvest = commands.add_parser("harvest", help="write a retrain's data from labelled logged traffic")
    harvest.add_argument("--namespace", required=True)
    harvest.add_argument("--monitor", required=True, help="the DriftMonitor's name")
    harvest.add_argument("--run", required=True, help="run name; its report goes to retrain/<ns>/<monitor>/<run>.json")
    harvest.set_defaults(run_command=_harvest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lathe", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run_command(args))


if __name__ == "__main__":
    sys.exit(main())
