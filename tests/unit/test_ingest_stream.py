"""Streaming ingest reproduces the in-memory read exactly: the same version id, schema, Parquet rows and profile.

The CSVs are larger than one chunk (``CHUNK_ROWS``) where a column's type only shows late,
and their row counts are not multiples of the 65,536-row hashing batch."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import lathe_pipelines.ingest as ingest_module
from lathe_core.store_local import LocalStore
from lathe_pipelines.ingest import IngestRequest, ingest
from lathe_pipelines.steps import schema as schemas
from lathe_pipelines.steps import stream as streaming
from lathe_pipelines.steps import validate as validation
from lathe_pipelines.steps.profile import profile, profile_arrow, profile_parquet
from lathe_pipelines.steps.read import read_source, source_files
from lathe_pipelines.steps.version import BATCH_ROWS, content_version, to_arrow

ROWS = streaming.CHUNK_ROWS + BATCH_ROWS + 1234  # past the first chunk, not a multiple of a batch


@pytest.fixture(autouse=True)
def local_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATHE_SOURCES_ALLOW_LOCAL", "true")


def late(values: list[Any], last: Any, rows: int = ROWS) -> list[Any]:
    """``values`` repeated, with ``last`` in the final row only: a type that shows after the first chunk."""
    column = (values * (rows // len(values) + 1))[:rows]
    column[-1] = last
    return column


def mixed(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "ints": rng.integers(-(10**6), 10**6, rows),
            "floats": rng.normal(0, 1e3, rows).round(3),
            "strings": rng.choice(["a", "bb", "c,d", ""], rows),
            "bools": rng.choice([True, False], rows),
        }
    )


CASES = {
    "types": lambda: mixed(),
    "small": lambda: mixed(1000),
    "exact batches": lambda: mixed(2 * BATCH_ROWS),
    "null late in an int column": lambda: pd.DataFrame({"a": late([1, 2, 3], None), "b": late(["x"], "y")}),
    "fraction late in an int column": lambda: pd.DataFrame({"a": late([1, 2], 2.5)}),
    "text late in a numeric column": lambda: pd.DataFrame({"a": late([1.5, 2], "n/a"), "b": late([7], 8)}),
    "gap late in a bool column": lambda: pd.DataFrame({"a": late([True, False], None), "b": late([1], 2)}),
    "empty first chunk, then text": lambda: pd.DataFrame({"a": [None] * (ROWS - 1) + ["x"], "b": late([0], 1)}),
    "empty first chunk, then bools": lambda: pd.DataFrame({"a": [None] * (ROWS - 1) + [True], "b": late([0], 1)}),
    "text sparse across batch ends": lambda: pd.DataFrame({"a": late([None] * 65535 + ["abc"], "z")}),
    "nulls in an int column": lambda: pd.DataFrame({"a": late([1, None, 3], 4), "b": late([2.0], None)}),
}


def in_memory(source: str, declared: list[dict[str, Any]] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Today's path: the whole source as one frame (pandas warns where its own internal chunks disagreed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        frame, schema = schemas.apply(read_source(source, "csv"), declared)
    return content_version(to_arrow(frame)), schema


def streamed(source: str, tmp_path: Path, declared: list[dict[str, Any]] | None = None) -> streaming.Streamed:
    return streaming.stream(source_files(source, "csv"), "csv", declared, tmp_path / "data.parquet", source)


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_gives_the_in_memory_id_schema_and_rows(case: str, tmp_path: Path) -> None:
    source = str(tmp_path / "data.csv")
    CASES[case]().to_csv(source, index=False)
    version, schema = in_memory(source)
    result = streamed(source, tmp_path)
    assert result.version == version
    assert result.schema == schema
    written = pq.read_table(tmp_path / "data.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        assert written.equals(to_arrow(read_source(source, "csv")))


def test_a_directory_of_uneven_files_streams_as_one_dataset(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": late([1, 2], None, 100_000), "s": late(["x"], "y", 100_000)})
    for i, (start, stop) in enumerate([(0, 70_001), (70_001, 70_002), (70_002, 100_000)]):
        frame.iloc[start:stop].to_csv(tmp_path / f"part-{i}.csv", index=False)
    version, _ = in_memory(str(tmp_path))
    assert streamed(str(tmp_path), tmp_path).version == version


def test_a_declared_schema_streams_to_the_same_id(tmp_path: Path) -> None:
    source = str(tmp_path / "data.csv")
    pd.DataFrame({"a": late([1, 2], None), "b": late(["1", "2"], "3"), "c": late(["true", "0"], None)}).to_csv(
        source, index=False
    )
    declared = [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}, {"name": "c", "type": "bool"}]
    version, schema = in_memory(source, declared)
    result = streamed(source, tmp_path, declared)
    assert (result.version, result.schema) == (version, schema)
    with pytest.raises(streaming.NotStreamable):
        streamed(source, tmp_path, [{**c, "type": "category"} for c in declared])


def test_a_different_value_changes_the_id(tmp_path: Path) -> None:
    source = str(tmp_path / "data.csv")
    frame = mixed(5000)
    frame.to_csv(source, index=False)
    first = streamed(source, tmp_path).version
    frame.loc[4999, "floats"] += 1
    frame.to_csv(source, index=False)
    assert streamed(source, tmp_path).version != first


def test_profile_from_parquet_or_arrow_is_the_in_memory_profile(tmp_path: Path) -> None:
    source = str(tmp_path / "data.csv")
    frame = mixed(3000)
    frame.loc[::7, "floats"] = None
    frame.to_csv(source, index=False)
    files = source_files(source, "csv")
    result = streaming.stream(files, "csv", None, tmp_path / "data.parquet", source, tmp_path / "data.arrow")
    expected = profile(read_source(source, "csv"), result.schema, "strings")
    assert profile_parquet(tmp_path / "data.parquet", result.schema, "strings") == expected
    assert profile_arrow(tmp_path / "data.arrow", result.schema, "strings") == expected


RULES = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "ints", "min_value": -(10**6), "max_value": 0}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "floats"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "strings", "value_set": ["a", "bb"]}},
    {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["ints", "floats"]}},
]


def test_validation_in_column_groups_gives_the_whole_table_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = str(tmp_path / "data.csv")
    mixed(3000).to_csv(source, index=False)
    streamed(source, tmp_path)
    whole = validation.validate_parquet(tmp_path / "data.parquet", RULES)
    monkeypatch.setattr(validation, "MEMORY", 1)  # every column its own group; table rules on placeholders
    grouped = validation.validate_parquet(tmp_path / "data.parquet", RULES)
    assert sorted(grouped["lathe"]["failures"]) == sorted(whole["lathe"]["failures"])
    assert grouped["lathe"]["failed"] == whole["lathe"]["failed"] == 4
    assert "expect_column_values_to_be_between(column=ints" in grouped["lathe"]["failures"][0]
    assert any(
        "expect_table_row_count_to_be_between" in f and "observed 3000" in f for f in grouped["lathe"]["failures"]
    )
    assert grouped["success"] is whole["success"] is False


def test_validation_in_groups_holds_one_group_at_a_time() -> None:
    """GX's engine keeps every metric it computed (a row mask per column rule); kept, they would grow
    with each group of a large source's validation."""
    import great_expectations  # noqa: F401  (before tracing: tracing the import itself is slow)

    rows, held = 1_000_000, []

    def group(i: int) -> tuple[Any, list[dict[str, Any]]]:
        def load() -> pd.DataFrame:
            held.append(tracemalloc.get_traced_memory()[0])
            return pd.DataFrame({f"c{i}": np.zeros(rows)})

        return load, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f"c{i}"}}]

    tracemalloc.start()
    try:
        result = validation.validate_groups([group(i) for i in range(6)])
    finally:
        tracemalloc.stop()
    assert result["lathe"]["evaluated"] == 6 and result["success"]
    assert held[-1] - held[2] < rows // 2  # kept masks: a million bytes more per group


def test_a_large_source_path_publishes_what_the_small_one_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation from Parquet in column groups (large sources) against validation of the whole frame (small ones)."""
    source = str(tmp_path / "data.csv")
    mixed(3000).to_csv(source, index=False)
    spec = {"source": {"uri": source, "format": "csv"}, "target": "bools", "expectations": RULES}
    small = ingest(IngestRequest("ns", "d", "r0", spec), LocalStore(tmp_path / "small"), None)
    monkeypatch.setattr(ingest_module, "VALIDATE_WHOLE_BYTES", 0)
    monkeypatch.setattr(validation, "MEMORY", 1)
    large = ingest(IngestRequest("ns", "d", "r0", spec), LocalStore(tmp_path / "large"), None)
    assert (small["outcome"], small["reason"]) == (large["outcome"], large["reason"]) == ("Failed", "ValidationFailed")
    assert small["message"] == large["message"]  # the first failure is the spec's first, both ways
    assert sorted(small["validation"].pop("failures")) == sorted(large["validation"].pop("failures"))
    assert small["validation"] == large["validation"]
    passing = {**spec, "expectations": [RULES[2]]}
    published = [ingest(IngestRequest("ns", "d", "r1", passing), LocalStore(tmp_path / name), None) for name in "ab"]
    assert published[0]["outcome"] == "Published" and published[0]["version"] == published[1]["version"]
    profiles = [(tmp_path / name).rglob("profile.json") for name in "ab"]
    assert len({next(p).read_bytes() for p in profiles}) == 1
