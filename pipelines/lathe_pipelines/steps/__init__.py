"""Plain logic of every pipeline run, testable with plain values.

One rule names the modules: a kfp component ``components/<verb>.py`` calls the ``run``
of ``steps/<verb>.py`` (prepare, train, evaluate, register); what the steps and the
ingest run share is named for what it computes (classifier, metrics, export, gate,
split, read, schema, validate, version, profile).
"""
