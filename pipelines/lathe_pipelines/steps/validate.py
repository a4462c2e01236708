"""Validate a DataFrame with Great Expectations 1.x: an ephemeral context, a pandas source, one suite."""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd

from .errors import InvalidExpectation

MAX_FAILURES = 10

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
        context.data_sources.add_pandas("lathe").add_dataframe_asset(name="data").add_batch_definition_whole_dataframe("all")
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
