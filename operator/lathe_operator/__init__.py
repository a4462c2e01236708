"""Lathe's operator: pydantic API types, pure reconcilers, backend adapters and kopf wiring.

Layers, enforced by import-linter (see pyproject.toml): ``handlers`` calls ``reconcile``
and ``backends``, which both build on ``api``. Only ``handlers`` and ``backends`` touch
kopf or client libraries.
"""

from lathe_core import __version__  # one version for every Lathe package

__all__ = ["__version__"]
