"""Lathe's shared core: the object store (port, adapters, settings), where every object lives in it, and run reports.

Every other Lathe package builds on this one and it knows none of them: the operator,
the pipeline steps and the model server all read and write the store through it. It
stays light (no pydantic, kfp, pandas or torch), so the model server's image carries
only this and itself.
"""

__version__ = "0.1.0"
