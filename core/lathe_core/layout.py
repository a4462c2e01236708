"""Where every kind of object lives in the store: the one module that names keys.

    datasets/<ns>/<name>/<hex>/data.parquet, profile.json, validation.json, manifest.json
    datasets/<ns>/<name>/runs/<run>.json, <run>-validation.json   # each ingest run's outcome
    models/<ns>/<name>/<version>/claim.json, model.onnx, model.json # claim: the run that took the number; model.json: the card
    models/<ns>/<name>/promoted.json                                # the version serving as the baseline
    models/<ns>/<name>/runs/<run>.json, <run>.progress.json         # each training run's outcome, its epoch
    logs/<ns>/<deployment>/<yyyy-mm-dd>/<hh>/<unix-ms>-<pid>-<seq>.parquet
    predictions/<ns>/<deployment>/<run>/part-<n>.parquet, manifest.json
    bundles/<ns>/<deployment>/<run>/bundle.tar.gz
    deployments/<ns>/<deployment>/runs/<run>.json, <run>.progress.json
    reports/<ns>/<monitor>/<run>.json, <run>.html                   # each drift check: outcome and page
    retrain/<ns>/<monitor>/<run>.parquet, <run>.json                # a retrain's data and its run's outcome

``<hex>`` is a dataset version id without its ``sha256:`` prefix; model versions are
integers. Manifests and cards are written last, so a reader that finds one finds the
whole version.
"""

from __future__ import annotations

from datetime import datetime

DATA, PROFILE, VALIDATION, MANIFEST = "data.parquet", "profile.json", "validation.json", "manifest.json"
CARD, ONNX, CLAIM = "model.json", "model.onnx", "claim.json"
RUNS = "runs"
# Every key is <area>/<namespace>/...: a namespace's objects are these prefixes and nothing
# else, which is what a store identity confined to one namespace is given (operator: store_access).
AREAS = ("datasets", "models", "logs", "predictions", "bundles", "deployments", "reports", "retrain")


def namespace_prefixes(namespace: str) -> list[str]:
    """Every prefix a namespace's objects live under."""
    return [f"{area}/{namespace}/" for area in AREAS]


def dataset_prefix(namespace: str, name: str) -> str:
    return f"datasets/{namespace}/{name}/"


def dataset_file(namespace: str, name: str, version: str, file: str = "") -> str:
    """A file of a version (``file`` empty: the version's folder)."""
    return f"{dataset_prefix(namespace, name)}{version.removeprefix('sha256:')}/{file}"


def dataset_version_of(namespace: str, name: str, key: str) -> str | None:
    """The version whose manifest ``key`` is, else None."""
    head, _, tail = key.removeprefix(dataset_prefix(namespace, name)).partition("/")
    return f"sha256:{head}" if tail == MANIFEST and head != RUNS else None


def ingest_report(namespace: str, name: str, run: str) -> str:
    return f"{dataset_prefix(namespace, name)}{RUNS}/{run}.json"


def ingest_validation(namespace: str, name: str, run: str) -> str:
    """The full Great Expectations result of a run whose validation failed (nothing was published)."""
    return f"{dataset_prefix(namespace, name)}{RUNS}/{run}-validation.json"


def models_prefix(namespace: str) -> str:
    """Every model of a namespace: ``models/<ns>/<name>/...``."""
    return f"models/{namespace}/"


def model_prefix(namespace: str, name: str) -> str:
    return f"models/{namespace}/{name}/"


def model_file(namespace: str, name: str, version: int, file: str = "") -> str:
    """A file of a model version (``file`` empty: the version's folder)."""
    return f"{model_prefix(namespace, name)}{version}/{file}"


def model_version_of(namespace: str, name: str, key: str, file: str = CARD) -> int | None:
    """The version whose card (or another ``file``) ``key`` is, else None."""
    head, _, tail = key.removeprefix(model_prefix(namespace, name)).partition("/")
    return int(head) if tail == file and head.isdigit() else None


def model_card_of(namespace: str, key: str) -> tuple[str, int] | None:
    """The model and version whose card ``key`` is (``key`` under ``models_prefix``), else None."""
    if not key.startswith(models_prefix(namespace)):
        return None
    name = key.removeprefix(models_prefix(namespace)).partition("/")[0]
    version = model_version_of(namespace, name, key) if name else None
    return None if version is None else (name, version)


def model_promoted(namespace: str, name: str) -> str:
    return f"{model_prefix(namespace, name)}promoted.json"


def training_report(namespace: str, model: str, run: str) -> str:
    return f"{model_prefix(namespace, model)}{RUNS}/{run}.json"


def progress_of(report: str) -> str:
    """Where a run whose outcome goes to ``report`` says how far it has got."""
    return f"{report.removesuffix('.json')}.progress.json"


def training_progress(namespace: str, model: str, run: str) -> str:
    """The epoch a training run has reached."""
    return progress_of(training_report(namespace, model, run))


def logs_prefix(namespace: str, deployment: str) -> str:
    """Every day folder of a deployment's request logs and feedback."""
    return f"logs/{namespace}/{deployment}/"


def log_partition(namespace: str, deployment: str, when: datetime) -> str:
    """The hour folder sampled requests and feedback logged at ``when`` go to."""
    return f"logs/{namespace}/{deployment}/{when:%Y-%m-%d}/{when:%H}/"


def log_object(partition: str, unix_ms: int, pid: int, sequence: int) -> str:
    return f"{partition}{unix_ms}-{pid}-{sequence:06d}.parquet"


def predictions_prefix(namespace: str, deployment: str, run: str) -> str:
    return f"predictions/{namespace}/{deployment}/{run}/"


def predictions_part(namespace: str, deployment: str, run: str, index: int) -> str:
    return f"{predictions_prefix(namespace, deployment, run)}part-{index:05d}.parquet"


def predictions_manifest(namespace: str, deployment: str, run: str) -> str:
    return f"{predictions_prefix(namespace, deployment, run)}{MANIFEST}"


def bundle(namespace: str, deployment: str, run: str) -> str:
    return f"bundles/{namespace}/{deployment}/{run}/bundle.tar.gz"


def deployment_report(namespace: str, deployment: str, run: str) -> str:
    """The outcome of a batch or edge run, which the operator reads."""
    return f"deployments/{namespace}/{deployment}/{RUNS}/{run}.json"


def deployment_progress(namespace: str, deployment: str, run: str) -> str:
    """Rows a batch run has scored so far."""
    return f"deployments/{namespace}/{deployment}/{RUNS}/{run}.progress.json"


def drift_reports(namespace: str, monitor: str) -> str:
    return f"reports/{namespace}/{monitor}/"


def drift_report(namespace: str, monitor: str, run: str) -> str:
    """A drift check's outcome, which the operator reads."""
    return f"{drift_reports(namespace, monitor)}{run}.json"


def drift_page(namespace: str, monitor: str, run: str) -> str:
    """The check's self-contained HTML report."""
    return f"{drift_reports(namespace, monitor)}{run}.html"


def retrain_prefix(namespace: str) -> str:
    """A namespace's retrain data: the one place in the store its Datasets may read without their own keys."""
    return f"retrain/{namespace}/"


def retrain_data(namespace: str, monitor: str, run: str) -> str:
    """A retrain's training data: labelled logged traffic merged with the served model's training data."""
    return f"{retrain_prefix(namespace)}{monitor}/{run}.parquet"


def retrain_report(namespace: str, monitor: str, run: str) -> str:
    """The outcome of the run that wrote a retrain's data, which the operator reads."""
    return f"{retrain_prefix(namespace)}{monitor}/{run}.json"
