"""``python -m lathe_serving``: Lathe's model server.

    python -m lathe_serving --model-dir DIR [--port 9000] [--workers 1] [--max-batch 64] [--max-wait-ms 0]
    python -m lathe_serving --config deployment.json     # several versions, traffic split, shadow (local mode)

``--workers N`` runs N processes on one port (SO_REUSEPORT; the kernel spreads
connections); the first process supervises them, forwards SIGHUP/SIGTERM, restarts one
that dies, and /metrics of any worker adds up all of them (prometheus-client's
multiprocess mode). Each worker runs uvloop where installed, loads its own models, and
freezes its start-up objects out of the garbage collector so collections stay short.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from .answers import ensure_key
from .supervisor import Supervisor


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lathe_serving", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="folder with model.onnx and model.json")
    source.add_argument("--config", type=Path, help="deployment file: versions, traffic, shadow, logging")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    parser.add_argument("--max-batch", type=int, default=64, help="most rows per onnxruntime call")
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="hold a lone request this long for company (0: batch only what arrived together)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime intra-op threads per call (1: batching gives the parallelism; 0 = all cores)",
    )
    parser.add_argument("--sample-rate", type=float, default=0.0, help="with --model-dir: fraction of requests logged")
    parser.add_argument(
        "--sha256", default="", help="with --model-dir: the checksum model.onnx must have (its TrainingRun's record)"
    )
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> None:
    """One worker: load, freeze, serve until SIGTERM."""
    import asyncio

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload asked for while loading: the server takes it later

    import numpy as np
    from aiohttp import web

    from .deployment import Deployment, Settings
    from .logsink import LogSink
    from .server import make_app

    if args.config:
        settings = Settings.read(args.config)
    else:
        settings = Settings.single(
            args.model_dir,
            os.environ.get("LATHE_NAMESPACE", ""),
            os.environ.get("SELDON_DEPLOYMENT_ID", ""),
            args.sample_rate,
            args.sha256,
        )
    deployment = Deployment(settings, threads=args.threads or None)
    sink = None
    if settings.sample_rate > 0:
        from .logsink import store_put

        sink = LogSink(store_put(), settings.namespace or "default", settings.deployment or deployment.name)
    np.seterr(all="ignore")
    loop: asyncio.AbstractEventLoop | None = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        pass
    app = make_app(deployment, args.max_batch, args.max_wait_ms / 1000, sink, args.config)
    gc.collect()
    gc.freeze()  # models, modules and the app never become garbage: keep them out of every collection
    gc.set_threshold(50_000, 20, 20)
    web.run_app(
        app, host=args.host, port=args.port, access_log=None, print=None, loop=loop, reuse_port=args.workers > 1
    )


def supervise(args: argparse.Namespace) -> None:
    """Fork the workers, pass signals on, restart any that dies, clean up the shared metrics folder."""
    exit_code = Supervisor(args.workers, lambda: serve(args)).run()
    if exit_code:
        sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ensure_key()  # feedback's signing key, made before workers fork where nothing configures one
    if args.workers > 1:
        supervise(args)
    else:
        serve(args)


if __name__ == "__main__":
    main(sys.argv[1:])
