"""Validate data with Great Expectations 1.x: an ephemeral context, a pandas source, one suite per column group.

Streaming-safe by columns, not by rows: every expectation sees whole columns, so the
aggregate ones (means, uniqueness, quantiles, row counts) give the same verdict as on the
whole table. Data whose columns together fit ``MEMORY`` is validated as one frame, as
before; larger data is validated in groups of the columns the expectations name, read
from the written Parquet file one group at a time. ``expect_table_*`` rules see every
column name and the row count through a frame of shared one-byte placeholder columns.
"""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import importlib.util
import logging
import multiprocessing
import os
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import scratch
from .errors import InvalidExpectation

MAX_FAILURES = 10
MEMORY = 128 * 2**20  # uncompressed column bytes validated as one frame (GX copies each several times)
# Counts and a sample of unexpected values: all a failure message names. SUMMARY (GX's default) adds the
# sample's value counts and row indices, and takes about 0.15 s more for the 25 rules of
# benchmarks/ingest.py at 1M rows (0.4 s instead of 0.25 s).
RESULT_FORMAT = "BASIC"
COLUMN_KWARGS = ("column", "column_A", "column_B")
DEFERRED = ("scipy.stats", "altair")  # imported by the validator process when first used

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class BackgroundValidator:
    """Validation in a forked process that imports Great Expectations (seconds) while the caller reads data.

    Fork before the caller starts pyarrow's thread pools. The data travels as a path: an
    Arrow IPC stream file (data small enough to validate whole, memory-mapped from /dev/shm)
    or the Parquet file the caller wrote (validated in column groups when large); the result
    comes back as JSON-able data.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True, name="lathe-validator")
        self._process.start()
        child.close()
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.scratch = scratch.directory("lathe-validate-", shm)  # where ``submit``'s data may go

    def submit(self, data: Path, rules: list[dict[str, Any]]) -> None:
        self._conn.send((str(data), rules))

    def result(self) -> dict[str, Any]:
        try:
            kind, payload = self._conn.recv()
        except EOFError as error:
            raise RuntimeError(f"validator process died with exit code {self._process.exitcode}") from error
        finally:
            self.close()
        if kind == "invalid":
            raise InvalidExpectation(payload)
        if kind == "error":
            raise RuntimeError(payload)
        return dict(payload)

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(5)
        shutil.rmtree(self.scratch, ignore_errors=True)


class _Deferred(types.ModuleType):
    """A module imported on its first attribute use, then the module itself in ``sys.modules``."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        # ``import name`` reads __spec__ from the module in sys.modules: set, it imports nothing yet.
        # (importlib.util.LazyLoader's modules import themselves on that read, so GX would still load them.)
        self.__spec__ = spec

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # for whoever kept this object
        return getattr(module, attribute)


def _defer(names: tuple[str, ...]) -> None:
    for name in names:
        spec = None if name in sys.modules else importlib.util.find_spec(name)
        if spec is not None:
            sys.modules[name] = _Deferred(name, spec)


def _serve(conn: Any) -> None:
    try:
        # The slow import, overlapped with the parent's work: 3.3 s of CPU, half of it scipy.stats
        # and altair, which only the KL divergence expectation, the KS-test metrics and GX's charts
        # use, inside their functions; this process imports them when one is used (``_Deferred``).
        # The import makes half a million objects and little garbage, so the collector's passes
        # over them are wasted: without them it takes 0.1 to 0.5 s less.
        _defer(DEFERRED)
        # malloc, not mimalloc, for this process's Arrow buffers: mimalloc's first large
        # allocations here cost more than the conversion itself (0.6 s against 0.2 s for
        # 1M x 20), and malloc hands a column group's buffers back to the system at once.
        pa.set_memory_pool(pa.system_memory_pool())
        gc.disable()
        try:
            import great_expectations  # noqa: F401
        finally:
            gc.enable()

        path, rules = conn.recv()
        if path.endswith(".parquet"):
            conn.send(("ok", validate_parquet(Path(path), rules)))
        else:
            with pa.memory_map(path) as source:
                frame = _frame(pa.ipc.open_stream(source).read_all())
            conn.send(("ok", validate(frame, rules)))
    except InvalidExpectation as error:
        conn.send(("invalid", str(error)))
    except BaseException as error:  # report, never hang the parent
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


def _describe(result: dict[str, Any]) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    detail = result.get("result") or {}
    if result.get("exception_info", {}).get("raised_exception"):
        why = result["exception_info"].get("exception_message", "raised an exception")
    elif "unexpected_count" in detail:
        sample = detail.get("partial_unexpected_list", [])[:5]
        why = f"{detail['unexpected_count']} unexpected value(s) ({detail.get('unexpected_percent', 0):.2f}%), e.g. {sample}"
    elif "observed_value" in detail:
        why = f"observed {detail['observed_value']}"
    else:
        why = "not met"
    return f"{config['type']}({args}): {why}"


def _frame(table: pa.Table) -> pd.DataFrame:
    """The frame GX validates: one block per column (no consolidating copy; pandas' copy-on-write keeps
    borrowed Arrow buffers safe), each Arrow column freed as it is converted."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _forget(batch_definition: Any) -> None:
    """Drop what GX's execution engine keeps after a validation: every metric it computed (for each column
    rule a row mask, 10 MB at 10M rows) and the batch's frame. No later group reuses them (each group is
    its own batch); kept, they grow with the number of groups. GX's engine has a ``caching`` switch, but
    a fluent data source offers no way to set it."""
    engine = batch_definition.data_asset.datasource.get_execution_engine()
    engine._metric_cache.clear()
    engine.batch_manager._batch_data_cache.clear()


def _columns(rule: dict[str, Any], names: list[str]) -> list[str] | None:
    """The columns a rule reads; [] for a table rule; None when it may read any column."""
    if rule.get("type", "").startswith("expect_table_"):
        return []
    kwargs = rule.get("kwargs") or {}
    named = [kwargs[k] for k in COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    if isinstance(kwargs.get("column_list"), list):
        named += [c for c in kwargs["column_list"] if isinstance(c, str)]
    return [n for n in names if n in named] if named else None


def _placeholders(names: list[str], rows: int) -> pd.DataFrame:
    """Every column name over ``rows`` rows in about ``rows`` bytes: one shared categorical array."""
    shared = pd.Categorical.from_codes(np.zeros(rows, dtype=np.int8), categories=[0])
    return pd.DataFrame(dict.fromkeys(names, shared), copy=False)


def validate_parquet(path: Path, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """``validate`` over a Parquet file without loading more than ``MEMORY`` of columns at a time."""
    file = pq.ParquetFile(path)
    names, rows = file.schema_arrow.names, file.metadata.num_rows
    sizes = dict.fromkeys(names, 0)
    for group in range(file.metadata.num_row_groups):
        row_group = file.metadata.row_group(group)
        for i, name in enumerate(names):
            sizes[name] += max(row_group.column(i).total_uncompressed_size, 8 * row_group.num_rows)

    def read(columns: list[str]) -> Callable[[], pd.DataFrame]:
        def load() -> pd.DataFrame:
            pa.default_memory_pool().release_unused()  # the last group's buffers, before this one's
            return _frame(pq.read_table(path, columns=columns))

        return load

    needs = [_columns(rule, names) for rule in rules]
    if sum(sizes.values()) <= MEMORY or any(n is None for n in needs):
        return validate_groups([(read(names), rules)])  # one frame: as before, and what a free-form rule needs
    groups: list[tuple[list[str], list[int]]] = []  # columns, and the indices of the rules that read them
    for index, need in enumerate(needs):
        if not need:
            continue
        columns = groups[-1][0] if groups else []
        merged = columns + [n for n in need if n not in columns]
        if groups and sum(sizes[n] for n in merged) <= MEMORY:
            groups[-1] = (merged, groups[-1][1] + [index])
        else:
            groups.append((list(need), [index]))
    loaders = [(read(columns), [rules[i] for i in indices]) for columns, indices in groups]
    order = [i for _, indices in groups for i in indices]
    table = [i for i, need in enumerate(needs) if need == []]
    if table:
        loaders.append(((lambda: _placeholders(names, rows)), [rules[i] for i in table]))
    return validate_groups(loaders, order + table)


def validate(frame: pd.DataFrame, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the rules on one frame; GX's full result JSON plus a ``lathe`` summary with plain-word failures."""
    return validate_groups([((lambda: frame), rules)])


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the groups' results, as one suite over the whole table would read."""
    merged = dict(results[0])
    merged["results"] = [r for result in results for r in result["results"]]
    evaluated = len(merged["results"])
    successful = sum(1 for r in merged["results"] if r["success"])
    merged["success"] = all(r["success"] for r in results)
    merged["statistics"] = {
        **results[0]["statistics"],
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": 100.0 * successful / evaluated if evaluated else None,
    }
    return merged


def validate_groups(
    groups: list[tuple[Callable[[], pd.DataFrame], list[dict[str, Any]]]], order: list[int] | None = None
) -> dict[str, Any]:
    """Each group's rules on its frame (loaded only when its turn comes), in one context, merged into one result.

    ``order``: each rule's place in the spec, so results (and the first failure) read in the spec's order."""
    import great_expectations as gx
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.execution_engine import pandas_execution_engine
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    # GX hashes every frame under 1 GB for its data docs' batch markers, a third of the time
    # of a simple suite; the version id already fingerprints the data, so skip it.
    pandas_execution_engine.HASH_THRESHOLD = 0

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    batch_definition = (
        context.data_sources.add_pandas("lathe")
        .add_dataframe_asset(name="data")
        .add_batch_definition_whole_dataframe("all")
    )
    suites = []
    for index, (_, rules) in enumerate(groups):
        suite = gx.ExpectationSuite(name="lathe" if index == 0 else f"lathe-{index}")
        for rule in rules:
            try:
                configuration = ExpectationConfiguration(type=rule["type"], kwargs=dict(rule.get("kwargs") or {}))
                suite.add_expectation_configuration(configuration)
            except (ExpectationNotFoundError, KeyError, TypeError, ValueError) as error:
                raise InvalidExpectation(f"{rule['type']}: {error}") from error
            except Exception as error:  # GX raises many kinds for bad kwargs
                raise InvalidExpectation(f"{rule['type']}({rule.get('kwargs')}): {error}") from error
        suites.append(context.suites.add(suite))
    results = []
    for (load, _), suite in zip(groups, suites):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": load()})
        results.append(batch.validate(suite, result_format=RESULT_FORMAT).to_json_dict())
        del batch  # the group's frame goes before the next one loads
        _forget(batch_definition)
    result = _merge(results) if len(results) > 1 else results[0]
    if order is not None and len(order) == len(result["results"]):
        result["results"] = [r for _, r in sorted(zip(order, result["results"]), key=lambda pair: pair[0])]
    stats = result["statistics"]
    failures = [_describe(r) for r in result["results"] if not r["success"]]
    result["lathe"] = {
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "failed": int(stats["unsuccessful_expectations"]),
        "failures": failures[:MAX_FAILURES],
    }
    return result
