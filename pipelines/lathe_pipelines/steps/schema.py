"""Check data against a declared schema (coercing column types), or infer and record one."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from .errors import SchemaMismatch


def infer(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The schema the data has, in the Dataset spec's terms."""
    columns = []
    for name, series in frame.items():
        if ptypes.is_bool_dtype(series):
            kind = "bool"
        elif ptypes.is_integer_dtype(series):
            kind = "int"
        elif ptypes.is_float_dtype(series):
            kind = "float"
        elif ptypes.is_datetime64_any_dtype(series):
            kind = "datetime"
        elif isinstance(series.dtype, pd.CategoricalDtype):
            kind = "category"
        else:
            kind = "string"
        columns.append({"name": str(name), "type": kind, "nullable": bool(series.isna().any())})
    return columns


def _coerce(series: pd.Series, kind: str) -> pd.Series:
    if kind == "int":
        numeric = pd.to_numeric(series, errors="raise")
        if ptypes.is_float_dtype(numeric) and not (numeric.dropna() % 1 == 0).all():
            raise ValueError("has fractional values")
        return numeric.astype("Int64") if numeric.isna().any() else numeric.astype("int64")
    if kind == "float":
        return pd.to_numeric(series, errors="raise").astype("float64")
    if kind == "bool":
        if ptypes.is_bool_dtype(series):
            return series
        mapped = series.map(lambda v: {"true": True, "false": False, "1": True, "0": False}.get(str(v).strip().lower()))
        if mapped[series.notna()].isna().any():
            raise ValueError("has values that are not true/false")
        return mapped.astype("boolean")
    if kind == "datetime":
        return pd.to_datetime(series, errors="raise", utc=True)
    if kind == "category":
        return series.astype("string").astype("category")
    return series.astype("string")


def _first_bad(series: pd.Series, kind: str) -> str:
    for index, value in series.items():
        if pd.isna(value):
            continue
        try:
            _coerce(pd.Series([value]), kind)
        except (ValueError, TypeError):
            return f"{value!r} at row {index}"
    return "a value"


def apply(frame: pd.DataFrame, declared: list[dict[str, Any]] | None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The frame with declared types applied, and the effective schema; SchemaMismatch names the column."""
    if not declared:
        return frame, infer(frame)
    names = [c["name"] for c in declared]
    missing = [n for n in names if n not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in names]
    if missing or extra:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unexpected column(s) {', '.join(extra)}"] if extra else []
        )
        raise SchemaMismatch("; ".join(parts))
    out = {}
    for column in declared:
        name, kind = column["name"], column["type"]
        try:
            out[name] = _coerce(frame[name], kind)
        except (ValueError, TypeError) as error:
            raise SchemaMismatch(f"column {name} should be {kind} but has {_first_bad(frame[name], kind)}") from error
    effective = [{"name": c["name"], "type": c["type"], "nullable": c.get("nullable", True)} for c in declared]
    return pd.DataFrame(out, columns=names), effective


def expectations(schema: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A declared schema as Great Expectations rules: columns exist, in order, non-nullable ones complete."""
    rules: list[dict[str, Any]] = [
        {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": [c["name"] for c in schema]}}
    ]
    rules += [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": c["name"]}}
        for c in schema
        if not c.get("nullable", True)
    ]
    return rules
