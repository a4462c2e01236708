"""Lathe API ``lathe.dev/v1alpha1``: the one definition of each kind."""

from .common import API_VERSION, GROUP, MESSAGE_MAX, VERSION, Condition, ConditionStatus, Phase, Resource
from .dataset import Dataset, DatasetSpec, DatasetStatus
from .drift_monitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus
from .model_deployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from .training_run import TrainingRun, TrainingRunSpec, TrainingRunStatus

KINDS: tuple[type[Resource], ...] = (Dataset, TrainingRun, ModelDeployment, DriftMonitor)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "MESSAGE_MAX",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "Dataset",
    "DatasetSpec",
    "DatasetStatus",
    "DriftMonitor",
    "DriftMonitorSpec",
    "DriftMonitorStatus",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "Phase",
    "Resource",
    "TrainingRun",
    "TrainingRunSpec",
    "TrainingRunStatus",
]
