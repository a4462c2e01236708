"""The validator process imports Great Expectations with scipy.stats and altair deferred to their first use.

Checked in a fresh interpreter: in this one, other tests may have imported both already."""

from __future__ import annotations

import json
import subprocess
import sys

from scipy import stats

SCRIPT = r"""
import json, sys
import pyarrow as pa
from lathe_pipelines.steps import validate

assert "scipy.stats" not in sys.modules and "great_expectations" not in sys.modules
validator = validate.BackgroundValidator()  # forked now: it defers scipy.stats, then imports GX
table = pa.table({"a": [0.0] * 30 + [1.0] * 70})
path = validator.scratch / "table.arrow"
with pa.ipc.new_stream(str(path), table.schema) as writer:
    writer.write_table(table)
rule = {
    "type": "expect_column_kl_divergence_to_be_less_than",  # computed with scipy.stats.entropy
    "kwargs": {"column": "a", "partition_object": {"values": [0.0, 1.0], "weights": [0.5, 0.5]}, "threshold": 0.1},
}
validator.submit(path, [rule])
result = validator.result()["results"][0]

validate._defer(("scipy.stats",))  # and here, in this process, the mechanism itself
deferred = isinstance(sys.modules["scipy.stats"], validate._Deferred)
from scipy import stats
entropy = stats.entropy([0.3, 0.7], [0.5, 0.5])
print(json.dumps({"result": result, "deferred": deferred, "loaded": type(sys.modules["scipy.stats"]).__name__,
                  "entropy": float(entropy)}))
"""


def test_an_expectation_that_uses_scipy_works_in_the_validator_process() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected = stats.entropy([0.3, 0.7], [0.5, 0.5])
    assert out["result"]["success"] is True and not out["result"]["exception_info"]["raised_exception"]
    assert out["result"]["result"]["observed_value"] == expected
    assert out["deferred"] and out["loaded"] == "module" and out["entropy"] == expected
