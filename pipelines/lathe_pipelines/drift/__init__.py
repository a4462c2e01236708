"""Drift statistics: live or new data against a Dataset version's reference profile (docs/drift.md).

``reference`` turns a stored profile into distributions, ``statistics`` holds each test
(Evidently-compatible definitions, checked against scipy), ``check`` applies the chosen
test to every column and concludes.
"""
