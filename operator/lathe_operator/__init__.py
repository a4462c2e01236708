"""Lathe's operator: pydantic API types, pure reconcilers, backend adapters and kopf wiring.

Layers, enforced by import-linter (see pyproject.toml): ``handlers`` calls ``reconcile``
and ``backends``, which both build on ``api``. Only ``handlers`` and ``backends`` touch
kopf or client libraries.
"""

__version__ = "0.1.0"
