"""``python -m lathe_serving.fetch``: a model server pod's first step, the model versions it serves.

    python -m lathe_serving.fetch --namespace NS --model NAME --versions 2,3 --to /models [--sha256 2=HEX,3=HEX]

Copies each version's model.onnx and model.json (the card last, so a folder with a card
is whole) from the store that ``LATHE_STORE_*`` names into ``<to>/<version>/``, and
refuses a model.onnx whose sha256 differs from its card's or from the one its TrainingRun
recorded (``--sha256``). The server then loads them (``--config``), and checks again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from lathe_core import layout
from lathe_core.store import ObjectStore
from lathe_core.stores import open_configured_store


def fetch(
    store: ObjectStore,
    namespace: str,
    model: str,
    versions: list[int],
    target: Path,
    recorded: dict[int, str] | None = None,
) -> None:
    for version in versions:
        folder = target / str(version)
        if (folder / layout.CARD).exists():
            continue  # versions are immutable: a restarted init step keeps what it has
        folder.mkdir(parents=True, exist_ok=True)
        onnx = store.get(layout.model_file(namespace, model, version, layout.ONNX))
        card = store.get(layout.model_file(namespace, model, version, layout.CARD))
        digest = hashlib.sha256(onnx).hexdigest()
        for expected, what in (
            ((recorded or {}).get(version), "its TrainingRun recorded"),
            (json.loads(card).get("sha256"), "in its card"),
        ):
            if expected and digest != expected:
                raise SystemExit(f"{model} version {version}: model.onnx does not match the sha256 {what}")
        (folder / layout.ONNX).write_bytes(onnx)
        (folder / layout.CARD).write_bytes(card)
        print(f"fetched {model} version {version} ({len(onnx)} bytes)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lathe_serving.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--versions", required=True, help="comma-separated version numbers")
    parser.add_argument("--to", type=Path, required=True)
    parser.add_argument("--sha256", default="", help="VERSION=HEX,...: checksums the TrainingRuns recorded")
    args = parser.parse_args(argv)
    versions = [int(v) for v in args.versions.split(",") if v]
    recorded = {int(v): h for v, _, h in (p.partition("=") for p in args.sha256.split(",") if p)}
    fetch(open_configured_store(), args.namespace, args.model, versions, args.to, recorded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
