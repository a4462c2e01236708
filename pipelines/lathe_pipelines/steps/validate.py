"""Validate a DataFrame with Great Expectations 1.x: an ephemeral context, a pandas source, one suite."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
from typing import Any

import pandas as pd
import pyarrow as pa

from .errors import InvalidExpectation

MAX_FAILURES = 10

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class BackgroundValidator:
    """Validation in a forked process that imports Great Expectations (seconds) while the caller reads data.

    Fork before the caller starts pyarrow's thread pools. The table travels as an Arrow IPC
    file in memory-backed /dev/shm where there is one; the result comes back as JSON-able data.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True, name="lathe-validator")
        self._process.start()
        child.close()
        self._dir = tempfile.mkdtemp(prefix="lathe-validate-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)

    def submit(self, table: pa.Table, rules: list[dict[str, Any]]) -> None:
        path = os.path.join(self._dir, "table.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._conn.send((path, rules))

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
        shutil.rmtree(self._dir, ignore_errors=True)


def _serve(conn: Any) -> None:
    try:
        import great_expectations  # noqa: F401  (the slow import, overlapped with the parent's work)

        path, rules = conn.recv()
        with pa.memory_map(path) as source:
            frame = pa.ipc.open_file(source).read_all().to_pandas()
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


def validate(frame: pd.DataFrame, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the rules; return GX's full result JSON plus a ``lathe`` summary with plain-word failures."""
    import great_expectations as gx
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    batch_definition = (
        context.data_sources.add_pandas("lathe")
        .add_dataframe_asset(name="data")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = gx.ExpectationSuite(name="lathe")
    for rule in rules:
        try:
            configuration = ExpectationConfiguration(type=rule["type"], kwargs=dict(rule.get("kwargs") or {}))
            suite.add_expectation_configuration(configuration)
        except (ExpectationNotFoundError, KeyError, TypeError, ValueError) as error:
            raise InvalidExpectation(f"{rule['type']}: {error}") from error
        except Exception as error:  # GX raises many kinds for bad kwargs
            raise InvalidExpectation(f"{rule['type']}({rule.get('kwargs')}): {error}") from error
    suite = context.suites.add(suite)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite).to_json_dict()
    stats = result["statistics"]
    failures = [_describe(r) for r in result["results"] if not r["success"]]
    result["lathe"] = {
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "failed": int(stats["unsuccessful_expectations"]),
        "failures": failures[:MAX_FAILURES],
    }
    return result
