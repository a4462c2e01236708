"""What handlers read from other Lathe objects, as the reconcilers see them."""

from __future__ import annotations

import kopf

from ..api.v1alpha1 import GROUP, VERSION
from ..reconcile.plan import DatasetView


def dataset_view(memo: kopf.Memo, namespace: str, name: str) -> DatasetView:
    """A Dataset object as TrainingRuns and batch ModelDeployments see it."""
    found = memo.kube.get(f"{GROUP}/{VERSION}", "Dataset", namespace, name)
    if found is None:
        return DatasetView()
    status, spec = found.get("status") or {}, found.get("spec") or {}
    return DatasetView(exists=True, current_version=status.get("currentVersion"), target=spec.get("target"))
