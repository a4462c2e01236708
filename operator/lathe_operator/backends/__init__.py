"""Adapters to external systems, each behind a narrow Protocol in ``ports``."""
