"""``kubectl lathe`` (also ``lathe``): the four kinds, the registry and the data versions from a terminal.

Reads come from the cluster (the objects and their Events) and the object store (model
cards, dataset manifests and profiles, reports); decisions go to the cluster as an
annotation the operator applies (``reconcile.manual``). Nothing here writes spec.
"""
