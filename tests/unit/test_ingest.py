"""Ingest steps with plain values and a local directory store: read, schema, version, profile, publish."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lathe_core.datasets import DatasetVersions
from lathe_core.store_local import LocalStore
from lathe_pipelines.ingest import IngestRequest, ingest
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps import schema
from lathe_pipelines.steps.errors import EmptyData, MalformedData, SchemaMismatch, SourceNotFound
from lathe_pipelines.steps.profile import profile
from lathe_pipelines.steps.read import read_source
from lathe_pipelines.steps.version import content_version, to_arrow

RULES = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "pixel_0_2", "min_value": 0, "max_value": 16}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": list(range(10))}},
]


@pytest.fixture(autouse=True)
def local_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read local files, which only local mode allows."""
    monkeypatch.setenv("LATHE_SOURCES_ALLOW_LOCAL", "true")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return digits().iloc[:400].reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_version_ignores_row_groups_and_file_format(frame: pd.DataFrame, tmp_path: Path) -> None:
    versions = set()
    for row_group in (50, 400):
        buffer = io.BytesIO()
        pq.write_table(to_arrow(frame), buffer, row_group_size=row_group)
        versions.add(content_version(to_arrow(pq.read_table(io.BytesIO(buffer.getvalue())).to_pandas())))
    versions.add(content_version(to_arrow(read_source(write_csv(frame, tmp_path / "d.csv"), "csv"))))
    assert len(versions) == 1
    changed = frame.copy()
    changed.loc[0, "pixel_0_2"] += 1
    assert content_version(to_arrow(changed)) not in versions


def test_read_source_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EmptyData, match="empty"):
        read_source(str(tmp_path / "empty.csv"), "csv")
    with pytest.raises(EmptyData, match="no rows"):
        read_source(str(tmp_path / "header.csv"), "csv")
    with pytest.raises(MalformedData, match="bad.parquet is not valid parquet"):
        read_source(str(tmp_path / "bad.parquet"), "parquet")
    with pytest.raises(SourceNotFound):
        read_source(str(tmp_path / "missing.csv"), "csv")


def test_a_directory_of_files_is_one_dataset(frame: pd.DataFrame, tmp_path: Path) -> None:
    write_csv(frame.iloc[:200], tmp_path / "part-0.csv")
    write_csv(frame.iloc[200:], tmp_path / "part-1.csv")
    assert content_version(to_arrow(read_source(str(tmp_path), "csv"))) == content_version(to_arrow(frame))


def test_declared_schema_is_enforced() -> None:
    raw = pd.DataFrame({"a": ["1", "2"], "b": ["x", "y"]})
    typed, effective = schema.apply(raw, [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}])
    assert typed["a"].tolist() == [1, 2] and effective[0]["type"] == "int"
    with pytest.raises(SchemaMismatch, match="missing column\\(s\\) c; unexpected column\\(s\\) b"):
        schema.apply(raw, [{"name": "a", "type": "int"}, {"name": "c", "type": "float"}])
    with pytest.raises(SchemaMismatch, match="column b should be float but has 'x' at row 0"):
        schema.apply(raw, [{"name": "a", "type": "int"}, {"name": "b", "type": "float"}])


def test_profile_has_quantiles_sample_and_classes(frame: pd.DataFrame) -> None:
    result = profile(frame, schema.infer(frame), "label")
    pixel = result["columns"]["pixel_3_3"]
    levels = result["quantileLevels"]
    assert result["format"] == 2 and pixel["count"] == 400 and len(pixel["quantiles"]) == len(levels) > 1000
    assert pixel["quantiles"][0] == pixel["min"] and pixel["quantiles"][-1] == pixel["max"]
    assert pixel["quantiles"][levels.index(0.5)] == float(np.median(frame["pixel_3_3"]))
    assert len(pixel["sample"]) == 400 and pixel["min"] <= pixel["mean"] <= pixel["max"]
    assert sum(result["target"]["classes"].values()) == 400


def versions_prefix(version: str) -> str:
    return f"datasets/ns/digits/{version.removeprefix('sha256:')}/"


def test_ingest_publishes_once_and_refuses_bad_data(frame: pd.DataFrame, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source = write_csv(frame, tmp_path / "digits.csv")
    spec = {"source": {"uri": source, "format": "csv"}, "target": "label", "expectations": RULES}
    first = ingest(IngestRequest("ns", "digits", "run-0", spec), store, None)
    assert first["outcome"] == "Published" and first["rows"] == 400 and first["validation"]["failed"] == 0
    assert first["uri"] == (tmp_path / "store" / versions_prefix(first["version"])).as_uri()
    versions = DatasetVersions(store, "ns", "digits")
    assert versions.versions() == [first["version"]]
    manifest = versions.manifest(first["version"])
    assert manifest["rows"] == 400 and manifest["target"] == "label" and manifest["validation"]["evaluated"] == 2
    assert {Path(k).name for k in store.list(versions.prefix + first["version"][7:])} == {
        "data.parquet",
        "manifest.json",
        "profile.json",
        "validation.json",
    }

    again = ingest(IngestRequest("ns", "digits", "run-1", spec), store, None)
    assert again["outcome"] == "Unchanged" and again["version"] == first["version"]

    broken = frame.copy()
    broken.loc[5, "pixel_0_2"] = 17
    write_csv(broken, tmp_path / "digits.csv")
    failed = ingest(IngestRequest("ns", "digits", "run-2", spec, parent_version=first["version"]), store, None)
    assert failed["outcome"] == "Failed" and failed["reason"] == "ValidationFailed"
    assert "expect_column_values_to_be_between(column=pixel_0_2" in failed["message"]
    assert versions.versions() == [first["version"]]
    assert versions.report("run-2")["reason"] == "ValidationFailed"  # type: ignore[index]


def test_unknown_expectation_is_reported(frame: pd.DataFrame, tmp_path: Path) -> None:
    spec = {"source": {"uri": write_csv(frame, tmp_path / "d.csv")}, "expectations": [{"type": "expect_magic"}]}
    report = ingest(IngestRequest("ns", "d", "r", spec), LocalStore(tmp_path / "s"), None)
    assert (report["outcome"], report["reason"]) == ("Failed", "InvalidExpectation")
    assert "expect_magic" in report["message"]
