"""Thin kopf wiring: one module per kind, shared plumbing in ``apply`` and ``settings``.

Importing this package registers every handler with kopf's default registry.
"""

from . import dataset, drift_monitor, model_deployment, settings, training_run  # noqa: F401  (registration side effects)
