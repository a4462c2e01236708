"""Lathe model server: Seldon-compatible model class and a fast async server (the ModelDeployment slice)."""
