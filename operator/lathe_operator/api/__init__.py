"""The four Lathe resources, defined once as pydantic models (``v1alpha1``), and the CRD generator."""
