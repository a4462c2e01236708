"""Kubeflow pipeline steps and components for Lathe (the TrainingRun slice)."""
